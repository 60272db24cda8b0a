"""Label Studio exports built the way Label Studio writes them (see docs/importers.md), for the tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ALICE = {"id": 1, "email": "alice@example.com", "first_name": "Alice", "last_name": "Liddell"}
BOB = 2  # Label Studio also writes completed_by as a bare user id


def annotation(aid: int, who: Any, label: str, time: str, *, ground_truth: bool = False,
               cancelled: bool = False) -> dict[str, Any]:
    return {"id": aid, "completed_by": who, "was_cancelled": cancelled, "ground_truth": ground_truth,
            "lead_time": 4.25, "created_at": time, "updated_at": time,
            "result": [] if cancelled else [{"id": f"r{aid}", "from_name": "sign", "to_name": "image",
                                             "type": "choices", "value": {"choices": [label]}}]}


def task(tid: int, annotations: list[dict[str, Any]], prediction: str | None = None) -> dict[str, Any]:
    predictions = [] if prediction is None else [{
        "id": 900 + tid, "model_version": "resnet-3", "score": 0.875, "created_at": "2026-10-30T00:00:00Z",
        "result": [{"from_name": "sign", "to_name": "image", "type": "choices", "value": {"choices": [prediction]}}]}]
    return {"id": tid, "project": 7, "data": {"image": f"s3://signs/{tid}.jpg"}, "annotations": annotations,
            "predictions": predictions, "created_at": "2026-10-29T00:00:00Z"}


def export_v1() -> list[dict[str, Any]]:
    """Six tasks, two annotators each; task 5 has a ground truth overriding a tie; task 6 ties."""
    tasks = []
    for tid in range(1, 5):
        label = "stop" if tid % 2 else "yield"
        tasks.append(task(tid, [annotation(tid * 10, ALICE, label, "2026-11-01T10:00:00Z"),
                                annotation(tid * 10 + 1, BOB, label, "2026-11-01T11:00:00Z")], prediction=label))
    tasks.append(task(5, [annotation(50, ALICE, "stop", "2026-11-01T10:00:00Z", ground_truth=True),
                          annotation(51, BOB, "yield", "2026-11-01T11:00:00Z"),
                          annotation(52, BOB, "merge", "2026-11-01T12:00:00Z", cancelled=True)]))
    tasks.append(task(6, [annotation(60, ALICE, "stop", "2026-11-01T10:00:00Z"),
                          annotation(61, BOB, "yield", "2026-11-01T11:00:00Z")]))
    return tasks


def export_v2() -> list[dict[str, Any]]:
    """Task 1 and 3 relabeled stop -> yield by Bob (Alice's annotation on 3 deleted), task 4 removed,
    task 7 new."""
    tasks = export_v1()
    tasks[0]["annotations"] = [annotation(10, ALICE, "yield", "2026-11-20T10:00:00Z"),
                               annotation(11, BOB, "yield", "2026-11-20T11:00:00Z")]
    tasks[2]["annotations"] = [annotation(31, BOB, "yield", "2026-11-20T11:00:00Z")]
    del tasks[3]
    tasks.append(task(7, [annotation(70, ALICE, "merge", "2026-11-20T10:00:00Z")]))
    return tasks


def write(path: Path, tasks: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps(tasks))
    return path
