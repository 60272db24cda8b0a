"""Row identity by key values (design invariant 11): 64-bit hashes find candidates, values decide.

A stored row's id is normally its 64-bit key hash. The hash is fast but not collision-proof (a printable
key colliding with another is found in a few hundred tries), so a commit never trusts a hash match: it
fetches the matched rows' key values and compares them. When two distinct keys share a key hash, the
later one takes an *alternate id*, the first free one of ``BLAKE2b(key values, probe)`` for probe 1, 2...
(open addressing, each probe confirmed by values the same way). A layer object that holds rows under
alternate ids names them in its Parquet key-value metadata (``registry.alt_ids``: file rows and their
ids), so its index is rebuilt from its bytes alone. Everything that works on stored ids (reads, hiding
rows of lower layers, diffs, compaction) then sees one id per key and never confuses two keys.

Change detection is by values too: rows whose hashes match are compared column by column before a
commit calls them unchanged.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from registry.arrays import arrow_array
from registry.errors import InvalidInput
from registry.snapshots.id_sort import argsort_ids
from registry.snapshots.layer_reader import Lookup, ManifestReader

__all__ = ["Identity", "Taken", "alt_id", "assign_ids", "assign_alternate_ids", "duplicates_message", "rows_equal",
           "settle_group"]

MAX_PROBES = 16


def _key_bytes(keys_table: pa.Table, row: int) -> bytes:
    values = [keys_table.column(i)[row].as_py() for i in range(keys_table.num_columns)]
    return json.dumps(values, default=repr, ensure_ascii=False, separators=(",", ":")).encode()


def alt_id(key_bytes: bytes, probe: int) -> np.uint64:
    """The alternate id of a key at ``probe`` (1, 2, ...): 64 bits of BLAKE2b of its canonical values."""
    digest = hashlib.blake2b(key_bytes, digest_size=8, salt=probe.to_bytes(8, "little"),
                             person=b"registry.altid").digest()
    return np.uint64(int.from_bytes(digest, "little"))


def _equal_mask(left: pa.ChunkedArray | pa.Array, right: pa.ChunkedArray | pa.Array
                ) -> pa.ChunkedArray | pa.Array | np.ndarray | None:
    """Per row: the two values are equal (nulls equal nulls, NaN equals NaN), as an Arrow boolean array without
    nulls (a numpy one for nested types); None when the types cannot be compared. The null and NaN rules cost
    nothing on columns without nulls or floats."""
    if left.type != right.type:
        try:
            right = right.cast(left.type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None
    try:
        same = pc.equal(left, right)
    except pa.ArrowNotImplementedError:  # nested types: compare as Python values
        return np.array([a == b for a, b in zip(left.to_pylist(), right.to_pylist(), strict=True)], bool)
    if left.null_count or right.null_count:
        same = pc.or_(pc.fill_null(same, False), pc.and_(pc.is_null(left), pc.is_null(right)))
    if pa.types.is_floating(left.type):
        same = pc.or_(same, pc.fill_null(pc.and_(pc.is_nan(left), pc.is_nan(right)), False))
    return same


def _as_numpy(mask: pa.ChunkedArray | pa.Array | np.ndarray) -> np.ndarray:
    return np.asarray(mask if isinstance(mask, np.ndarray) else mask.to_numpy(zero_copy_only=False), bool)


def rows_equal(left: pa.Table, right: pa.Table, columns: Sequence[str]) -> np.ndarray:
    """Per row: ``left`` and ``right`` hold equal values in every one of ``columns``."""
    same: pa.ChunkedArray | pa.Array | np.ndarray | None = None
    for name in columns:
        if name not in right.column_names:
            return np.zeros(left.num_rows, bool)
        column = _equal_mask(left.column(name), right.column(name))
        if column is None:
            return np.zeros(left.num_rows, bool)
        if same is None:
            same = column
        elif isinstance(same, np.ndarray) or isinstance(column, np.ndarray):
            same = _as_numpy(same) & _as_numpy(column)
        else:
            same = pc.and_(same, column)  # combined in Arrow: one conversion to numpy at the end
    return np.ones(left.num_rows, bool) if same is None else _as_numpy(same)


@dataclass
class Identity:
    """The ids of a commit's input rows, and where their keys already are in the parent."""

    ids: np.ndarray
    """Per input row (input order): its id, unique within the input."""
    found: Lookup
    """Per input row: the parent's row holding the same key values (absent: a new key)."""
    parent_rows: pa.Table | None
    """The parent's rows of the present input rows (in input order of ``found.present``), when fetched."""
    order: np.ndarray | None = None
    """The input rows sorted by id (stable), when known."""
    aligned: int = 0
    """When non-zero: the first ``aligned`` input rows are the parent's rows in read order, one for one,
    and ``parent_rows`` is the parent's whole read (the input came in the parent's order)."""
    looked_up: bool = False
    """``found`` is ``parent.lookup(ids)`` (layer numbers and file rows); a bulk match gives read-order
    positions instead."""


def duplicates_message(what: str, keys_table: pa.Table, rows: list[int]) -> str:
    shown = ", ".join(repr(keys_table.slice(r, 1).to_pylist()[0] if keys_table.num_columns > 1
                           else keys_table.column(0)[r].as_py()) for r in rows[:5])
    return f"{what}: {len(rows)} duplicate key(s), e.g. {shown}; keys must be unique"


BULK_FRACTION = 0.25
"""An input with at least this share of the parent's rows is matched against one sequential read of the
parent (and without any sort when it comes in the parent's order) instead of row-group fetches."""


def assign_ids(table: pa.Table, keys: Sequence[str], kh: np.ndarray, parent: ManifestReader | None,
               what: str = "input") -> Identity:
    """Give each row of ``table`` its id, deciding every hash match by the key values.

    ``parent_rows`` of the result holds the parent's key columns of present rows (every column when the
    input was matched in bulk), for the caller to compare values.

    Raises:
        InvalidInput: two rows of ``table`` have the same key values; or a key cannot be placed within
            ``MAX_PROBES`` alternate ids (never seen in practice).
    """
    keys_table = table.select(list(keys))
    n = table.num_rows
    ids = np.asarray(kh, np.uint64).copy()
    found = Lookup(np.full(n, -1, np.int64), np.zeros(n, np.int64), np.zeros(n, np.uint64))
    parent_rows: pa.Table | None = None
    pending: list[int] = []
    aligned = 0
    looked_up = False
    if parent is not None and n:
        bulk = n >= BULK_FRACTION * max(parent.manifest.rows, 1)
        looked_up = not bulk
        found, parent_rows, aligned = _match_in_bulk(parent, ids) if bulk else \
            (*_match_by_lookup(parent, ids, keys), 0)
        present = np.flatnonzero(found.present)
        if aligned:  # present == arange(aligned), and parent_rows row i is input row i's match
            same_key = rows_equal(keys_table.slice(0, aligned), parent_rows, keys)
        elif present.size:
            same_key = rows_equal(keys_table.take(arrow_array(present)), parent_rows, keys)
        if present.size and not same_key.all():  # a hash collision with another key: it probes for its id
            aligned = 0
            wrong = present[~same_key]
            found.layer[wrong] = -1
            pending += wrong.tolist()
            assert parent_rows is not None
            parent_rows = parent_rows.filter(arrow_array(same_key))
        if parent.has_alt_ids():
            # A key stored under an alternate id keeps it: look for every new key there too.
            pending += np.flatnonzero(~found.present).tolist()
    order = argsort_ids(ids)
    pending = sorted(set(pending) | set(_colliding_in_input(ids, order, keys_table, found, what)))
    if pending:
        before = found.present.copy()
        _probe(ids, keys_table, found, pending, parent, what)
        moved = np.flatnonzero(found.present & ~before)
        if moved.size and parent is not None:  # keys found under alternate ids join the fetched rows
            extra = parent.fetch(ids[moved], columns=None if parent_rows is None else parent_rows.column_names,
                                 found=found.take(moved))
            order = np.argsort(np.concatenate([np.flatnonzero(before & found.present), moved]), kind="stable")
            joined = pa.concat_tables([parent_rows.cast(extra.schema), extra]) if parent_rows is not None \
                else extra
            parent_rows = joined.take(arrow_array(order))
    if pending:
        order = argsort_ids(ids)
    return Identity(ids, found, parent_rows, order, aligned if not pending else 0, looked_up)


def _match_by_lookup(parent: ManifestReader, ids: np.ndarray, keys: Sequence[str]
                     ) -> tuple[Lookup, pa.Table | None]:
    """Few rows: look each id up in the parent's indexes and fetch the key columns of the matches."""
    found = parent.lookup(ids)
    present = np.flatnonzero(found.present)
    if not present.size:
        return found, None
    return found, parent.fetch_keys(ids[present], found=found.take(present))


def _match_in_bulk(parent: ManifestReader, ids: np.ndarray) -> tuple[Lookup, pa.Table | None, int]:
    """Many rows: read the parent once, in order, and align it with the input by id. Returns the matches,
    the parent's rows of the present input rows and how many leading input rows are the parent's rows in
    order (then the rows returned are the parent's whole read)."""
    parent_ids, parent_rh = parent.read_order_index()
    n, m = len(ids), len(parent_ids)
    found = Lookup(np.full(n, -1, np.int64), np.zeros(n, np.int64), np.zeros(n, np.uint64))
    if not m:
        return found, None, 0
    rows = parent.read()
    if n >= m and np.array_equal(parent_ids, ids[:m]):  # the parent's rows in order, new ones after
        found.layer[:m] = 0
        found.position[:m] = np.arange(m)
        found.rh[:m] = parent_rh
        return found, rows, m
    order = argsort_ids(parent_ids)
    sorted_ids = parent_ids[order]
    at = np.minimum(np.searchsorted(sorted_ids, ids), len(sorted_ids) - 1)
    hit = sorted_ids[at] == ids
    positions = order[at[hit]]
    found.layer[hit] = 0
    found.position[hit] = positions
    found.rh[hit] = parent_rh[positions]
    return found, rows.take(arrow_array(positions)), 0


def _colliding_in_input(ids: np.ndarray, order: np.ndarray, keys_table: pa.Table, found: Lookup, what: str
                        ) -> list[int]:
    """Rows that share an id with another input row but hold other key values (all but one per group:
    the one present in the parent, else the first by value). Equal key values are an error. ``order``
    sorts ``ids``."""
    sorted_ids = ids[order]
    starts = np.flatnonzero(sorted_ids[1:] == sorted_ids[:-1])
    if not starts.size:
        return []
    groups: dict[int, list[int]] = {}
    for s in starts.tolist():
        groups.setdefault(int(sorted_ids[s]), []).extend([int(order[s]), int(order[s + 1])])
    movers: list[int] = []
    duplicates: list[int] = []
    for members in groups.values():
        moved, repeated = settle_group(sorted(set(members)), keys_table, found.present)
        duplicates += repeated
        if not duplicates:
            movers += moved
    if duplicates:
        raise InvalidInput(duplicates_message(what, keys_table, duplicates))
    return movers


def settle_group(rows: list[int], keys_table: pa.Table, present: np.ndarray | None = None
                 ) -> tuple[list[int], list[int]]:
    """Rows of one input that share an id (``rows`` ascending): ``(movers, duplicates)``. Duplicates are
    rows whose key values an earlier row of the group already has (an error for the caller to raise);
    movers are the rows with other key values that must take alternate ids: all but one, the keeper (the
    row ``present`` in the parent, else the smallest key by value)."""
    by_value: dict[bytes, int] = {}
    duplicates: list[int] = []
    for r in rows:
        value = _key_bytes(keys_table, r)
        if value in by_value:
            duplicates.append(r)
        else:
            by_value[value] = r
    if duplicates:
        return [], duplicates
    keeper = next((r for r in rows if present is not None and present[r]),
                  min(rows, key=lambda r: _key_bytes(keys_table, r)))
    return [r for r in rows if r != keeper], []


class Taken(Protocol):
    """The ids no new alternate id may take: ``in`` and ``add`` (a ``set``, or a view of sorted ids)."""

    def __contains__(self, value: object) -> bool: ...

    def add(self, value: int) -> None: ...


def _probe(ids: np.ndarray, keys_table: pa.Table, found: Lookup, pending: list[int],
           parent: ManifestReader | None, what: str, taken: Taken | None = None) -> None:
    """Settle each pending row on the alternate id that holds its key in the parent, or else on the first
    one free in the parent and in the input (``taken``: the input's other ids, by default read from ``ids``).
    Probes are looked up a level at a time for every pending row. When the parent stores no row under an
    alternate id, the first free probe ends the search."""
    rows = np.asarray(pending, np.int64)
    values = [_key_bytes(keys_table, int(r)) for r in rows]
    if taken is None:
        taken = set(np.delete(ids, rows).tolist())
    home = np.zeros(len(rows), np.uint64)
    homed = np.zeros(len(rows), bool)
    present = np.zeros(len(rows), bool)
    exhaustive = parent is not None and parent.has_alt_ids()
    names = list(keys_table.column_names)
    for probe in range(1, MAX_PROBES + 1):
        active = np.flatnonzero(~present & (~homed | exhaustive))
        if not active.size:
            break
        candidates = np.array([alt_id(values[i], probe) for i in active], np.uint64)
        hit = np.zeros(len(active), bool)
        if parent is not None:
            at = parent.lookup(candidates)
            hit = at.present.copy()
            if hit.any():
                stored = parent.fetch_keys(candidates[hit], found=at.take(hit))
                same = rows_equal(keys_table.take(arrow_array(rows[active[hit]])), stored, names)
                for j, ok in zip(np.flatnonzero(hit).tolist(), same.tolist(), strict=True):
                    if ok:
                        i, row = int(active[j]), int(rows[active[j]])
                        present[i], home[i], homed[i] = True, candidates[j], True
                        found.layer[row], found.position[row], found.rh[row] = at.layer[j], at.position[j], at.rh[j]
        for j, i in enumerate(active.tolist()):
            if not hit[j] and not homed[i] and int(candidates[j]) not in taken:
                home[i], homed[i] = candidates[j], True
                taken.add(int(candidates[j]))
    if not homed.all():
        stuck = values[int(np.flatnonzero(~homed)[0])].decode()
        raise InvalidInput(f"{what}: key {stuck} collides with {MAX_PROBES} other keys' ids")
    ids[rows] = home


def assign_alternate_ids(keys_table: pa.Table, ids: np.ndarray, taken: Taken, what: str = "input") -> np.ndarray:
    """The alternate ids of rows with no parent to look in (``keys_table``: their key values, ascending by
    input row; ``ids``: the id each shares with a keeper), as :func:`assign_ids` would give them, ``taken``
    holding every other id of the input.

    Raises:
        InvalidInput: a key cannot be placed within ``MAX_PROBES`` alternate ids.
    """
    n = keys_table.num_rows
    out = np.asarray(ids, np.uint64).copy()
    found = Lookup(np.full(n, -1, np.int64), np.zeros(n, np.int64), np.zeros(n, np.uint64))
    _probe(out, keys_table, found, list(range(n)), None, what, taken)
    return out
