"""Arrow tables of the quality catalog for the SQL query layer (DuckDB views)."""

from __future__ import annotations

import json

import pyarrow as pa
from sqlmodel import select

from registry.context import Context
from registry.db import transaction
from registry.models import DatasetRow
from registry.quality.models import GateResultRow, PinRow, PolicyRow, WaiverRow

__all__ = ["query_views"]


def _json(value: object) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True)


def query_views(ctx: Context) -> dict[str, pa.Table]:
    """``gate_results`` (one row per check per gate result), ``qa_policies``, ``gate_waivers`` and ``pins``."""
    with transaction(ctx.engine, readonly=True) as session:
        names = {d.id: d.name for d in session.exec(select(DatasetRow)).all()}
        results = session.exec(select(GateResultRow)).all()
        policies = session.exec(select(PolicyRow)).all()
        waivers = session.exec(select(WaiverRow)).all()
        pins = session.exec(select(PinRow)).all()
    checks = []
    for result in results:
        for check in json.loads(result.checks):
            metric = check["metric"]
            checks.append({
                "gate_result_id": result.id, "dataset": names.get(result.dataset_id), "snapshot_id": result.snapshot_id,
                "policy_version": result.policy_version, "policy_hash": result.policy_hash, "status": result.status,
                "evaluated_at": result.created_at, "evaluated_by": result.created_by, "check_name": check["name"],
                "check_type": check["check"], "severity": check["severity"], "passed": check["passed"],
                "metric": None if metric is None else float(metric), "threshold": check["threshold"],
                "details": _json(check["details"])})
    schema = pa.schema([("gate_result_id", pa.string()), ("dataset", pa.string()), ("snapshot_id", pa.string()),
                        ("policy_version", pa.int64()), ("policy_hash", pa.string()), ("status", pa.string()),
                        ("evaluated_at", pa.string()), ("evaluated_by", pa.string()), ("check_name", pa.string()),
                        ("check_type", pa.string()), ("severity", pa.string()), ("passed", pa.bool_()),
                        ("metric", pa.float64()), ("threshold", pa.string()), ("details", pa.string())])
    return {
        "gate_results": pa.Table.from_pylist(checks, schema=schema),
        "qa_policies": pa.Table.from_pylist(
            [{"dataset": names.get(p.dataset_id), "version": p.version, "policy_hash": p.policy_hash,
              "maintainers": p.maintainers, "checks": p.checks, "created_at": p.created_at,
              "created_by": p.created_by} for p in policies],
            schema=pa.schema([("dataset", pa.string()), ("version", pa.int64()), ("policy_hash", pa.string()),
                              ("maintainers", pa.string()), ("checks", pa.string()), ("created_at", pa.string()),
                              ("created_by", pa.string())])),
        "gate_waivers": pa.Table.from_pylist(
            [{"id": w.id, "dataset": names.get(w.dataset_id), "snapshot_id": w.snapshot_id, "checks": w.checks,
              "reason": w.reason, "expires_at": w.expires_at, "created_at": w.created_at, "created_by": w.created_by}
             for w in waivers],
            schema=pa.schema([(n, pa.string()) for n in ("id", "dataset", "snapshot_id", "checks", "reason",
                                                         "expires_at", "created_at", "created_by")])),
        "pins": pa.Table.from_pylist(
            [{"id": p.id, "dataset": names.get(p.dataset_id), "snapshot_id": p.snapshot_id, "ref": p.requested_ref,
              "job": p.job, "content_hash": p.content_hash, "gate_result_id": p.gate_result_id,
              "waiver_id": p.waiver_id, "lockfile": p.lockfile, "pinned_at": p.pinned_at, "pinned_by": p.pinned_by}
             for p in pins],
            schema=pa.schema([(n, pa.string()) for n in ("id", "dataset", "snapshot_id", "ref", "job", "content_hash",
                                                         "gate_result_id", "waiver_id", "lockfile", "pinned_at",
                                                         "pinned_by")])),
    }
