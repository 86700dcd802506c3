"""ASGI middleware: request tracing, HEAD on GET routes, security headers, body deadlines."""
