"""The thin HTTP edge (FastAPI): parse, authorise, call one service function, map errors (invariant 10)."""
