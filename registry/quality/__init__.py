"""QA policies, checks, gate results, waivers and pins (design invariants 7 and 8)."""
