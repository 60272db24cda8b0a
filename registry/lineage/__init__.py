"""OpenLineage events, their outbox and the lineage graph (design invariant 9)."""
