"""Where the checkout, the test fixtures and the shared folder beside the checkout are."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
"""The checkout's root (the folder holding pyproject.toml)."""
FIXTURES = ROOT / "tests" / "fixtures"
SHARED = ROOT.parent / "shared"
"""``../shared`` beside the checkout: DESIGN.md, the OpenLineage JSON Schemas."""
