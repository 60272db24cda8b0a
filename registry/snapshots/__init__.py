"""Snapshots: commit, read, diff, refs, schema versions, verification, compaction."""
