"""UTC timestamps as the fixed-width ISO strings the catalog stores."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["parse_utc", "utc_now"]


def utc_now() -> str:
    """Now, as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_utc(text: str) -> datetime:
    """The aware datetime of a stored timestamp."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
