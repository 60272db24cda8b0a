"""The one-line change summary of a snapshot, computed at commit time and shown by ``registry log``."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from registry.provenance.store import RecordDelta

__all__ = ["describe_change"]


def describe_change(added: int, changed: int, removed: int, relabeled: int | None = None,
                    records: RecordDelta | None = None) -> str:
    """The one-line summary ``registry log`` shows, e.g. ``+3,000 new, 2,000 relabeled, 12 removed``."""
    parts = [f"+{added:,} new"]
    if relabeled is None:
        parts.append(f"{changed:,} changed")
    else:
        parts.append(f"{relabeled:,} relabeled")
        if changed > relabeled:
            parts.append(f"{changed - relabeled:,} otherwise changed")
    parts.append(f"{removed:,} removed")
    text = ", ".join(parts)
    if records is not None and not records.empty:
        text += f"; annotations +{records.added:,} ~{records.updated:,} -{records.removed:,}"
    return text
