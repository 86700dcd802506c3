"""Scanning an NPZ cache: reading each file's labels, incremental records, parts from scanning
machines, and assembling them into a manifest and a snapshot."""
