"""Annotator identity: the tool's user id is who someone is; email and display name only describe them.

Records carry ``annotator_id`` (the labeling tool's user id), ``annotator_email`` and
``annotator_name``. Everything that groups by annotator (history, blame, label diff, agreement,
accuracy, the console) groups by :func:`identity_key` and shows :func:`identity_label`, so two people
with the same display name stay apart and one person whose export gave only an id is one person.
``--users users.json`` (Label Studio's ``GET /api/users/`` answer) fills email and name by id, or the
id by email, where an export leaves them out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from registry.errors import Hint, InvalidInput
from registry.snapshots.inputs import check_json_depth

__all__ = ["Person", "apply_users", "identity_key", "identity_label", "identity_labels", "person_of", "read_users"]

MAX_USERS_BYTES = 64 * 1024 * 1024
_USERS = Hint("option", "users")


@dataclass(frozen=True)
class Person:
    """One user of the labeling tool."""

    id: str
    email: str | None
    name: str | None


def identity_key(annotator_id: str | None, email: str | None, name: str | None) -> str | None:
    """The stable identity: the tool's id, else the email, else (last resort) the display name."""
    return annotator_id or email or name


def identity_label(annotator_id: str | None, email: str | None, name: str | None) -> str | None:
    """How an identity is shown: ``2 (alex@example.com)``; the key alone when nothing describes it."""
    key = identity_key(annotator_id, email, name)
    extra = email or name
    return key if extra is None or extra == key else f"{key} ({extra})"


def identity_labels(table: pa.Table, prefix: str = "annotator") -> pa.Array:
    """:func:`identity_label` of every row of a table with ``{prefix}_id/_email/_name`` columns."""
    ids, emails, names = (table.column(f"{prefix}_{part}").to_pylist() for part in ("id", "email", "name"))
    shown: dict[tuple[str | None, str | None, str | None], str | None] = {}  # annotators are few, rows many
    return pa.array([shown[who] if who in shown else shown.setdefault(who, identity_label(*who))
                     for who in zip(ids, emails, names, strict=True)], pa.string())


def _person(entry: Any, index: int, path: Path) -> Person:
    if not isinstance(entry, dict) or entry.get("id") is None:
        raise InvalidInput(f"{path}: user at position {index} is not an object with an 'id' (expected Label "
                           "Studio's /api/users/ answer)")
    return person_of(entry)


def person_of(user: dict[str, Any]) -> Person:
    """A :class:`Person` from one user object of Label Studio's ``/api/users/`` (it must have an ``id``)."""
    full = " ".join(str(user.get(k) or "").strip() for k in ("first_name", "last_name")).strip()
    return Person(str(user["id"]), user.get("email") or None, full or user.get("username") or None)


def read_users(path: Path) -> dict[str, Person]:
    """Users by id from a ``users.json`` (a list of user objects, or ``{"results": [...]}``).

    Raises:
        InvalidInput: missing, too large, not JSON, or not a list of user objects with ids.
    """
    if not path.is_file():
        raise InvalidInput(f"users file {path}: no such file", hint=_USERS)
    if path.stat().st_size > MAX_USERS_BYTES:
        raise InvalidInput(f"users file {path}: larger than {MAX_USERS_BYTES // 2**20} MiB", hint=_USERS)
    check_json_depth(path, per_line=False)
    try:
        doc = json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"users file {path}: not JSON ({exc})", hint=_USERS) from None
    if isinstance(doc, dict) and isinstance(doc.get("results"), list):
        doc = doc["results"]
    if not isinstance(doc, list):
        raise InvalidInput(f"users file {path}: expected a list of users (Label Studio's /api/users/ answer)",
                           hint=_USERS)
    people = [_person(entry, index, path) for index, entry in enumerate(doc)]
    return {p.id: p for p in people}


def apply_users(records: pa.Table, users: dict[str, Person]) -> pa.Table:
    """``records`` with email and name filled from ``users`` by id (and the id by email where only an
    email was given); what the export itself says is kept."""
    if not users or records.num_rows == 0:
        return records
    by_email = {p.email.lower(): p for p in users.values() if p.email}
    ids = records.column("annotator_id").to_pylist()
    emails = records.column("annotator_email").to_pylist()
    names = records.column("annotator_name").to_pylist()
    for row, (ident, email, name) in enumerate(zip(ids, emails, names, strict=True)):
        person = users.get(ident) if ident is not None else by_email.get(email.lower()) if email else None
        if person is not None:
            ids[row], emails[row], names[row] = ident or person.id, email or person.email, name or person.name
    for column, values in (("annotator_id", ids), ("annotator_email", emails), ("annotator_name", names)):
        records = records.set_column(records.schema.get_field_index(column), column, pa.array(values, pa.string()))
    return records
