"""The read core: every question about a snapshot's windows, answered exactly in the database."""
