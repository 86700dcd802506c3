"""Database infrastructure beside the engine and the tables: schema migrations, and a cheap
cross-process signal that something was committed."""
