"""Getting manifests in: parsing, presence checks, storing snapshots."""
