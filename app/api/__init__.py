"""HTTP routers. Thin: parse the request, call the core, shape the answer."""
