"""Annotator provenance: annotation records, importers from labeling tools, label history and diffs."""
