"""What one check found: a metric against a threshold, and details for people."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["CheckOutcome", "Measure", "at_least", "at_most", "share"]


@dataclass(frozen=True)
class Measure:
    """A check's figure: whether it meets the threshold, the metric, the threshold as text, details."""

    passed: bool
    metric: float | int | None
    threshold: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckOutcome:
    """One check of a gate result, as stored."""

    name: str
    check: str
    severity: str
    passed: bool
    metric: float | int | None
    threshold: str
    details: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _finite(value: float | int) -> float | int | None:
    """JSON has no NaN: an undefined metric is stored as null (and never passes)."""
    return value if isinstance(value, int) or math.isfinite(value) else None


def at_least(metric: float | int, minimum: float, details: dict[str, Any] | None = None) -> Measure:
    """Passes when ``metric >= minimum`` (NaN never passes)."""
    return Measure(bool(metric >= minimum), _finite(metric), f">= {minimum:g}", details or {})


def at_most(metric: float | int, maximum: float, details: dict[str, Any] | None = None) -> Measure:
    """Passes when ``metric <= maximum`` (NaN never passes)."""
    return Measure(bool(metric <= maximum), _finite(metric), f"<= {maximum:g}", details or {})


def share(part: int, whole: int) -> float:
    """``part / whole`` as a float, NaN for an empty whole."""
    return part / whole if whole else float("nan")
