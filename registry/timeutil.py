"""UTC timestamps as the fixed-width ISO strings the catalog stores."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from registry.errors import Hint, InvalidInput

__all__ = ["parse_expiry", "parse_utc", "utc_now"]

_RELATIVE = re.compile(r"(\d+)\s*([mhdw])")
_LATEST = datetime(9000, 12, 31, 23, 59, 59, tzinfo=UTC)
"""No expiry later than this: beyond it date arithmetic overflows (year 9999), and no token lives that long."""
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_EXPIRES = Hint("option", "expires")


def utc_now() -> str:
    """Now, as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_utc(text: str) -> datetime:
    """The aware datetime of a stored timestamp."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_expiry(text: str, now: datetime | None = None) -> str:
    """An expiry time from ISO-8601 (``2026-12-31``, ``2026-12-31T12:00:00Z``) or a duration from now
    (``30m``, ``12h``, ``7d``, ``2w``), as the catalog's UTC text.

    Raises:
        InvalidInput: neither form, or a time in the past.
    """
    now = now or datetime.now(UTC)
    relative = _RELATIVE.fullmatch(text.strip())
    try:
        if relative:
            moment = now + timedelta(**{_UNITS[relative[2]]: int(relative[1])})
        else:
            moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
        if moment.astimezone(UTC) > _LATEST:
            raise OverflowError
    except OverflowError as exc:
        raise InvalidInput(f"expiry {text!r} is out of range; give a time between now and "
                           f"{_LATEST.date()}", hint=_EXPIRES) from exc
    except ValueError as exc:
        raise InvalidInput(f"expiry {text!r}: give an ISO-8601 time (2026-12-31T12:00:00Z) or a duration "
                           "such as 12h, 7d or 2w", hint=_EXPIRES) from exc
    if moment <= now:
        raise InvalidInput(f"expiry {text!r} is in the past", hint=_EXPIRES)
    return _utc_text(moment)
