"""`registry audit verify` detects every kind of alteration and names the first bad event.

Each test builds a real history, alters the stored record the way an attacker with write access to
the catalog or the object store would, and checks both the Python report and the CLI's exit 1.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlmodel import select

from registry import Registry
from registry.audit.models import AuditSegmentRow
from registry.db import transaction
from tests.conftest import Cli
from tests.support.audit_helpers import events, execute, forge_consistent_chain, insert_event, make_history, rehash


def _bad(reg: Registry, checkpoint: Path | None = None) -> tuple[int | None, str]:
    report = reg.verify_audit(checkpoint)
    assert not report.ok, "the alteration went unnoticed"
    return report.first_bad_seq, report.problem or ""


def test_untouched_history_verifies(reg: Registry, cli: Cli) -> None:
    make_history(reg)
    reg.seal_audit()
    reg.tag("labels@main", "after-seal")
    report = reg.verify_audit()
    assert report.ok and report.events == 8 and report.segments == 1 and report.head_seq == 8
    result = cli("audit", "verify")
    assert result.code == 0 and "ok: 8 event(s)" in result.stdout


def test_modified_event_is_named(reg: Registry, cli: Cli) -> None:
    make_history(reg)
    execute(reg.ctx.engine, "UPDATE audit_event SET actor = 'mallory' WHERE seq = 3")
    assert _bad(reg) == (3, "event 3 was modified (its content does not match its hash)")
    result = cli("audit", "verify")
    assert result.code == 1 and "event 3" in result.stderr


def test_modified_details_are_detected(reg: Registry) -> None:
    make_history(reg)
    execute(reg.ctx.engine, "UPDATE audit_event SET details = REPLACE(details, :old, :new) WHERE seq = 2",
            old='"added":50', new='"added":49')
    assert '"added":49' in events(reg.ctx.engine)[1]["details"]
    assert _bad(reg)[0] == 2


def test_deleted_event_is_named(reg: Registry) -> None:
    make_history(reg)
    execute(reg.ctx.engine, "DELETE FROM audit_event WHERE seq = 4")
    seq, problem = _bad(reg)
    assert seq == 4 and "event 4 is missing" in problem


def test_inserted_event_is_detected_even_when_well_formed(reg: Registry) -> None:
    """A forged event slipped in at 3 with a correct hash of its own; everything after it moves up one."""
    make_history(reg)
    rows = events(reg.ctx.engine)
    execute(reg.ctx.engine, "DELETE FROM audit_event")
    forged = dict(rows[1], seq=3, event_id="f" * 32, actor="mallory", prev_hash=rows[1]["hash"])
    forged["hash"] = rehash(forged, forged["prev_hash"])
    new_rows = [*rows[:2], forged, *({**r, "seq": r["seq"] + 1} for r in rows[2:])]
    for row in new_rows:
        insert_event(reg.ctx.engine, row)
    seq, problem = _bad(reg)
    assert seq == 4 and "does not chain to event 3" in problem


def test_reordered_events_are_detected(reg: Registry) -> None:
    """Events 3 and 4 trade places (renumbered, contents intact)."""
    make_history(reg)
    for old, new in ((3, 1000), (4, 3), (1000, 4)):
        execute(reg.ctx.engine, "UPDATE audit_event SET seq = :new WHERE seq = :old", old=old, new=new)
    assert [e["object_id"] for e in events(reg.ctx.engine)][2:4] == ["labels@t1", "labels@t0"]
    seq, problem = _bad(reg)
    assert seq == 3 and "does not chain to event 2" in problem


def test_truncated_tail_is_detected_against_the_catalog_head(reg: Registry) -> None:
    make_history(reg)
    execute(reg.ctx.engine, "DELETE FROM audit_event WHERE seq >= 5")
    seq, problem = _bad(reg)
    assert seq == 5 and "events 5..6 were removed (truncated tail)" in problem


def test_event_beyond_the_head_is_detected(reg: Registry) -> None:
    make_history(reg)
    last = events(reg.ctx.engine)[-1]
    extra = dict(last, seq=7, event_id="e" * 32, prev_hash=last["hash"])
    extra["hash"] = rehash(extra, extra["prev_hash"])
    insert_event(reg.ctx.engine, extra)
    seq, problem = _bad(reg)
    assert seq == 7 and "beyond the catalog's head" in problem


def _segment(reg: Registry) -> tuple[AuditSegmentRow, Path]:
    with transaction(reg.ctx.engine, readonly=True) as session:
        segment = session.exec(select(AuditSegmentRow)).one()
    return segment, reg.ctx.store.local_path(segment.sha256)


def _rewrite(path: Path, table: pa.Table) -> None:
    os.chmod(path, 0o644)
    pq.write_table(table, path)


def test_modified_segment_file_is_named(reg: Registry, cli: Cli) -> None:
    make_history(reg)
    reg.seal_audit()
    segment, path = _segment(reg)
    table = pq.read_table(path)
    seqs = table.column("seq").to_pylist()
    actors = table.column("actor").to_pylist()
    actors[seqs.index(3)] = "mallory"  # segments are stored sorted by actor
    _rewrite(path, table.set_column(table.schema.get_field_index("actor"), "actor", pa.array(actors)))
    seq, problem = _bad(reg)
    assert seq == 3 and f"segment {segment.sha256[:12]} (events 1..6) was modified" in problem
    result = cli("audit", "verify", "--json")
    assert result.code == 1 and json.loads(result.stdout)["first_bad_seq"] == 3


def test_segment_with_only_its_bytes_changed_is_detected(reg: Registry) -> None:
    """Same events, other bytes (rewritten with other Parquet settings): the SHA-256 no longer matches."""
    make_history(reg)
    reg.seal_audit()
    segment, path = _segment(reg)
    _rewrite(path, pq.read_table(path).replace_schema_metadata({"note": "rewritten"}))
    seq, problem = _bad(reg)
    assert seq == 1 and "no longer match its SHA-256" in problem


def test_event_deleted_from_a_segment_and_the_catalog_updated_is_named(reg: Registry) -> None:
    """The attacker rewrites the segment without event 2, renames it to its new hash and fixes the catalog."""
    make_history(reg)
    reg.seal_audit()
    segment, path = _segment(reg)
    table = pq.read_table(path)
    kept = table.filter(pa.array([s != 2 for s in table.column("seq").to_pylist()]))
    info = reg.ctx.store.put_bytes(_parquet_bytes(kept))
    execute(reg.ctx.engine, "UPDATE audit_segment SET sha256 = :new, events = 5 WHERE sha256 = :old", new=info.sha256,
            old=segment.sha256)
    seq, problem = _bad(reg)
    assert seq == 2 and "event 2 is missing" in problem


def test_missing_or_unreadable_segment_is_named(reg: Registry) -> None:
    make_history(reg)
    reg.seal_audit()
    segment, path = _segment(reg)
    os.chmod(path, 0o644)
    path.write_bytes(b"garbage")
    seq, problem = _bad(reg)
    assert seq == 1 and "no longer readable Parquet" in problem
    path.unlink()
    seq, problem = _bad(reg)
    assert seq == 1 and "missing from the object store" in problem


def test_sealed_event_put_back_into_the_catalog_is_detected(reg: Registry) -> None:
    make_history(reg)
    sealed = events(reg.ctx.engine)[0]
    reg.seal_audit()
    insert_event(reg.ctx.engine, sealed)
    seq, problem = _bad(reg)
    assert seq == 1 and "out of place" in problem


def test_consistent_rewrite_passes_alone_but_fails_against_a_checkpoint(reg: Registry, cli: Cli,
                                                                         tmp_path: Path) -> None:
    make_history(reg)
    checkpoint = tmp_path / "audit-checkpoint.json"
    assert cli("audit", "checkpoint", "--out", str(checkpoint)).code == 0
    assert json.loads(checkpoint.read_text())["seq"] == 6
    reg.tag("labels@main", "later")
    assert reg.verify_audit(checkpoint).ok

    forge_consistent_chain(reg.ctx.engine, 2, actor="mallory")
    assert reg.verify_audit().ok, "a full consistent rewrite cannot be caught without an outside checkpoint"
    seq, problem = _bad(reg, checkpoint)
    assert seq == 6 and "differs from the checkpoint" in problem
    result = cli("audit", "verify", "--checkpoint", str(checkpoint))
    assert result.code == 1 and "event 6" in result.stderr


def test_log_cut_before_the_checkpoint_is_detected(reg: Registry, tmp_path: Path) -> None:
    make_history(reg)
    checkpoint = tmp_path / "cp.json"
    reg.audit_checkpoint(checkpoint)
    execute(reg.ctx.engine, "DELETE FROM audit_event WHERE seq >= 5")
    execute(reg.ctx.engine, "UPDATE audit_head SET seq = 4, hash = (SELECT hash FROM audit_event WHERE seq = 4)")
    assert reg.verify_audit().ok
    seq, problem = _bad(reg, checkpoint)
    assert seq == 5 and "before the checkpoint's event 6" in problem


@pytest.mark.parametrize("content", ["not json", json.dumps({"seq": 1}), json.dumps({"format": "x"})])
def test_bad_checkpoint_file_is_exit_2(cli: Cli, tmp_path: Path, content: str) -> None:
    path = tmp_path / "cp.json"
    path.write_text(content)
    result = cli("audit", "verify", "--checkpoint", str(path))
    assert result.code == 2 and "checkpoint" in result.stderr
    missing = cli("audit", "verify", "--checkpoint", str(tmp_path / "nope.json"))
    assert missing.code == 2 and "does not exist" in missing.stderr


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return bytes(sink.getvalue().to_pybytes())
