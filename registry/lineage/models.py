"""Catalog tables of the lineage package (outbox, edges)."""
