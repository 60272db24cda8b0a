"""The tamper-evident audit log (design invariant 6): hash-chained events, Parquet segments, verify."""
