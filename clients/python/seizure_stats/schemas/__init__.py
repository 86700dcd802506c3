"""Wire models of the HTTP API, by resource. Only pydantic and the standard library: the client
imports these."""
