#!/usr/bin/env python
"""Import benchmark: a Label Studio export of 100,000 tasks x 3 annotations read by ``read_label_studio``,
and imported end to end by ``registry import`` (read, then commit rows and records to a new home).

Run ``python bench/import_bench.py [--tasks 100000] [--annotations 3] [--reps 3] [--out bench/results/import.md]``.
Each measurement runs in a fresh child process (so its peak RSS is its own) and is repeated ``--reps``
times; the median wall time and the largest peak RSS are reported. Baselines from the same run:

- ``json.load`` of the same export plus a walk over every annotation (the obvious non-streaming
  reader: parses everything, builds nothing);
- ``pyarrow.json.read_json`` of an equivalent flat JSON-lines file, one line per annotation with the
  fields the registry extracts (the fastest way to get those fields into Arrow when someone has
  already flattened them).

Targets (issue 3): the registry read <= 30 s and peak RSS <= 1 GiB.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

LABELS = ["cat", "dog", "fox", "owl", "bee"]
TARGET_SECONDS = 30.0
TARGET_RSS_MIB = 1024.0


def _annotation(rng: random.Random, task_id: int, ann_id: int, label: str) -> dict[str, Any]:
    user = rng.randrange(1, 200)
    completed_by: Any = user if ann_id % 2 else {"id": user, "email": f"user{user}@example.org",
                                                 "first_name": "User", "last_name": str(user)}
    return {
        "id": ann_id, "completed_by": completed_by,
        "result": [{"value": {"choices": [label]}, "id": f"r{ann_id}", "from_name": "animal", "to_name": "img",
                    "type": "choices", "origin": "manual"}],
        "was_cancelled": False, "ground_truth": ann_id % 97 == 0, "created_at": "2024-05-01T10:00:00.123456Z",
        "updated_at": "2024-05-01T10:00:05.654321Z", "draft_created_at": None, "lead_time": rng.uniform(1, 60),
        "prediction": {}, "result_count": 0, "unique_id": f"u-{ann_id}", "import_id": None, "last_action": None,
        "task": task_id, "project": 7, "updated_by": user, "parent_prediction": None, "parent_annotation": None,
        "last_created_by": None,
    }


def generate(path: Path, tasks: int, annotations: int, seed: int) -> dict[str, int]:
    """Write a Label Studio JSON export and the equivalent flat JSONL; return their sizes."""
    rng = random.Random(seed)
    flat = path.with_suffix(".jsonl")
    ann_id = 0
    with path.open("w", encoding="utf-8") as out, flat.open("w", encoding="utf-8") as lines:
        out.write("[")
        for task_id in range(1, tasks + 1):
            truth = rng.choice(LABELS)
            anns = []
            for _ in range(annotations):
                ann_id += 1
                label = truth if rng.random() < 0.8 else rng.choice(LABELS)
                anns.append(_annotation(rng, task_id, ann_id, label))
                lines.write(json.dumps({"sample_key": f"images/{task_id:07d}.jpg", "annotation_id": ann_id,
                                        "annotator_id": anns[-1]["updated_by"], "value": label,
                                        "created_at": anns[-1]["created_at"], "lead_time": anns[-1]["lead_time"],
                                        "ground_truth": anns[-1]["ground_truth"], "task_id": task_id}) + "\n")
            task = {"id": task_id, "annotations": anns, "file_upload": "tasks.json", "drafts": [], "predictions": [],
                    "data": {"image": f"images/{task_id:07d}.jpg", "site": rng.choice(["north", "south"])},
                    "meta": {}, "created_at": "2024-04-30T09:00:00.000000Z",
                    "updated_at": "2024-05-01T10:00:05.654321Z", "inner_id": task_id, "total_annotations": annotations,
                    "cancelled_annotations": 0, "total_predictions": 0, "comment_count": 0,
                    "unresolved_comment_count": 0, "last_comment_updated_at": None, "project": 7, "updated_by": 1,
                    "comment_authors": []}
            out.write(("" if task_id == 1 else ",\n") + json.dumps(task))
        out.write("]\n")
    return {"export_bytes": path.stat().st_size, "jsonl_bytes": flat.stat().st_size}


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def child(mode: str, path: Path) -> dict[str, Any]:
    """Run one measurement in this (fresh) process."""
    import pyarrow.json as pajson

    from registry.provenance.importers import read_label_studio

    if mode == "import":  # a new, empty home; creating it (migrations) is not part of the import
        from registry import Registry

        home = Path(tempfile.mkdtemp(prefix="home-", dir=path.parent))
        reg = Registry.init(home / ".registry")
    before = _peak_rss_mib()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_before = usage.ru_utime + usage.ru_stime
    start = time.perf_counter()
    if mode == "registry":
        batch = read_label_studio(path, key="image", batch_id="bench", guideline_version="g1")
        counts = {"rows": batch.rows.num_rows, "records": batch.records.num_rows,
                  "disputed": sum(batch.rows.column("disputed").to_pylist())}
    elif mode == "import":  # the whole `registry import`: read, commit rows and records, audit, lineage
        result = reg.import_annotations("label-studio", "bench", path, key="image", guideline_version="g1")
        reg.close()
        counts = {"rows": result.samples, "records": result.records, "disputed": 0}
        shutil.rmtree(home, ignore_errors=True)
    elif mode == "json-load":
        with path.open("rb") as fh:
            tasks = json.load(fh)
        counts = {"rows": len(tasks), "records": sum(len(t["annotations"]) for t in tasks)}
    else:
        table = pajson.read_json(path.with_suffix(".jsonl"))
        counts = {"rows": table.num_rows, "records": table.num_rows}
    seconds = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"mode": mode, "seconds": seconds, "cpu_s": usage.ru_utime + usage.ru_stime - cpu_before,
            "peak_rss_mib": _peak_rss_mib(), "rss_before_mib": before} | counts


def measure(mode: str, path: Path, reps: int) -> dict[str, Any]:
    runs = []
    for _ in range(reps):
        proc = subprocess.run([sys.executable, __file__, "--child", mode, str(path)], capture_output=True, text=True,
                              check=True)
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        last = runs[-1]
        print(f"  {mode}: {last['seconds']:.2f} s (CPU {last['cpu_s']:.2f} s), peak RSS {last['peak_rss_mib']:.0f} MiB",
              flush=True)
    return {"median_s": statistics.median(r["seconds"] for r in runs),
            "median_cpu_s": statistics.median(r["cpu_s"] for r in runs),
            "peak_rss_mib": max(r["peak_rss_mib"] for r in runs),
            "rss_before_mib": max(r["rss_before_mib"] for r in runs), "runs": runs}


def _env() -> dict[str, Any]:
    import pyarrow

    import registry

    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                          cwd=Path(registry.__file__).parent).stdout.strip()
    import ijson

    return {"python": platform.python_version(), "pyarrow": pyarrow.__version__, "ijson": ijson.__version__,
            "ijson_backend": ijson.backend, "cpus": os.cpu_count(), "platform": platform.platform(),
            "loadavg_at_start": list(os.getloadavg()), "registry_module": registry.__file__,
            "git_head": os.environ.get("BENCH_CODE_REV", head)}


def report(result: dict[str, Any]) -> str:
    env, p, reg, imp = result["env"], result["params"], result["registry"], result["import"]
    load, base = result["json_load"], result["arrow_jsonl"]
    mib = 1024 * 1024
    ok_time = "PASS" if reg["median_s"] <= TARGET_SECONDS else "FAIL"
    ok_rss = "PASS" if reg["peak_rss_mib"] <= TARGET_RSS_MIB else "FAIL"
    return "\n".join([
        f"# Import benchmark: Label Studio export, {p['tasks']:,} tasks x {p['annotations']} annotations",
        "",
        f"- When: {result['when']}",
        f"- Code: `{env['registry_module']}` at `{env['git_head']}`",
        f"- Machine: {env['cpus']} CPUs, {env['platform']}; load average {env['loadavg_at_start'][0]:.2f} at start",
        f"- Python {env['python']}, pyarrow {env['pyarrow']}, ijson {env['ijson']} ({env['ijson_backend']} backend)",
        f"- Input: export {result['inputs']['export_bytes'] / mib:.1f} MiB "
        f"({p['tasks'] * p['annotations']:,} annotations, choices, `--key image`); flat JSONL "
        f"{result['inputs']['jsonl_bytes'] / mib:.1f} MiB; median of {p['reps']} runs, each in a fresh process",
        "",
        "| Measurement | Wall time | CPU time | Peak RSS | Target | Result |",
        "|---|---|---|---|---|---|",
        f"| `read_label_studio` (streamed with ijson; rows, records, resolution) | {reg['median_s']:.2f} s | "
        f"{reg['median_cpu_s']:.2f} s | "
        f"{reg['peak_rss_mib']:.0f} MiB | <= {TARGET_SECONDS:.0f} s, <= {TARGET_RSS_MIB:.0f} MiB | "
        f"{ok_time} / {ok_rss} |",
        f"| `registry import` end to end (read, then commit rows and records into a new home) | "
        f"{imp['median_s']:.2f} s | {imp['median_cpu_s']:.2f} s | {imp['peak_rss_mib']:.0f} MiB | "
        f"<= {TARGET_SECONDS:.0f} s, <= {TARGET_RSS_MIB:.0f} MiB | "
        f"{'PASS' if imp['median_s'] <= TARGET_SECONDS else 'FAIL'} / "
        f"{'PASS' if imp['peak_rss_mib'] <= TARGET_RSS_MIB else 'FAIL'} |",
        f"| baseline: `json.load` of the same export + walk (info) | {load['median_s']:.2f} s | "
        f"{load['median_cpu_s']:.2f} s | "
        f"{load['peak_rss_mib']:.0f} MiB | - | info: registry {reg['median_s'] / load['median_s']:.2f}x time, "
        f"{reg['peak_rss_mib'] / load['peak_rss_mib']:.2f}x RSS |",
        f"| baseline: `pyarrow.json.read_json` of the flat JSONL (info) | {base['median_s']:.2f} s | "
        f"{base['median_cpu_s']:.2f} s | "
        f"{base['peak_rss_mib']:.0f} MiB | - | info: registry {reg['median_s'] / base['median_s']:.1f}x time |",
        "",
        f"Wall time includes waiting for a CPU on a shared machine (load average {env['loadavg_at_start'][0]:.1f} "
        f"on {env['cpus']} CPUs at start); CPU time is the process's own user + system time. "
        f"Peak RSS includes the interpreter and imports (about {reg['rss_before_mib']:.0f} MiB before the read). "
        f"Registry output: {reg['runs'][0]['rows']:,} rows, {reg['runs'][0]['records']:,} records, "
        f"{reg['runs'][0]['disputed']:,} disputed samples.",
        "",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--annotations", type=int, default=3)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "import.md")
    parser.add_argument("--tmp", type=Path, default=None)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], Path(args.child[1]))))
        return
    scratch = Path(tempfile.mkdtemp(prefix="import_bench_", dir=args.tmp))
    try:
        path = scratch / "export.json"
        start = time.perf_counter()
        inputs = generate(path, args.tasks, args.annotations, args.seed)
        print(f"generated {inputs['export_bytes'] / 2**20:.1f} MiB in {time.perf_counter() - start:.1f} s", flush=True)
        result = {"when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "env": _env(),
                  "params": {"tasks": args.tasks, "annotations": args.annotations, "reps": args.reps,
                             "seed": args.seed},
                  "inputs": inputs,
                  "registry": measure("registry", path, args.reps),
                  "import": measure("import", path, args.reps),
                  "json_load": measure("json-load", path, args.reps),
                  "arrow_jsonl": measure("arrow-jsonl", path, args.reps)}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report(result), encoding="utf-8")
        args.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(report(result))
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
