"""Migration scripts, one per catalog schema revision."""
