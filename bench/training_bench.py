"""Training reads: SnapshotDataset epoch throughput against a DataLoader over one local Parquet file,
and Ray Data reads of a snapshot with 2 workers against 1.

    python bench/training_bench.py                      # 10,000,000 rows (a few minutes, ~3 GiB RAM)
    python bench/training_bench.py --rows 500000        # quick run while developing

The snapshot is core_bench's labels table (v1, then v2 = 2,000 relabeled + 3,000 new rows as an
upsert layer, so the plan hides rows). The baseline is the same rows as one zstd Parquet file
(1M-row groups, as the registry writes them) read by a plain ``IterableDataset`` that splits the row
groups across DataLoader workers and batches with pyarrow's ``iter_batches``; both sides use the same
DataLoader (2 workers, ``batch_size=None``), batch size and transform. Goals: SnapshotDataset
>= 0.8x the baseline's rows/s; Ray Data with 2 workers >= 1.5x 1 worker. Needs the [torch] and
[ray] extras (``bash scripts/setup_training.sh``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from core_bench import ADDED, RELABELED, generate, relabel  # noqa: E402 - the bench folder, added above

BATCH = 8192
ROW_GROUP = 1024 * 1024


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def tensors_only(batch: pa.RecordBatch) -> dict[str, Any]:
    """The transform both sides use: numeric columns as tensors, labels as their class numbers (what a
    training loop feeds a model), the string key left out."""
    import torch

    labels = batch.column("label").dictionary_encode().indices
    return {"confidence": torch.from_numpy(batch.column("confidence").to_numpy(zero_copy_only=False, writable=True)),
            "label": torch.from_numpy(labels.to_numpy(zero_copy_only=False).astype(np.int64))}


class ParquetFileDataset:
    """The baseline: one Parquet file's row groups split across DataLoader workers."""

    def __new__(cls, path: str, columns: list[str], transform: Callable[[pa.RecordBatch], Any]) -> Any:
        import torch.utils.data

        class _Dataset(torch.utils.data.IterableDataset):  # type: ignore[type-arg]
            def __iter__(self) -> Iterator[Any]:
                info = torch.utils.data.get_worker_info()
                worker, workers = (info.id, info.num_workers) if info else (0, 1)
                parquet = pq.ParquetFile(path)
                groups = list(range(parquet.metadata.num_row_groups))[worker::workers]
                for batch in parquet.iter_batches(batch_size=BATCH, row_groups=groups, columns=columns):
                    yield transform(batch)

        return _Dataset()


def epoch(loader: Any) -> tuple[float, int]:
    start = time.perf_counter()
    rows = sum(len(batch["confidence"]) for batch in loader)
    return time.perf_counter() - start, rows


def interleaved(reps: int, runs: dict[str, Callable[[], tuple[float, int]]]) -> dict[str, dict[str, Any]]:
    """Median seconds of each run, alternating their order every round, after one warm-up each."""
    for fn in runs.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in runs}
    rows: dict[str, int] = {}
    for round_no in range(reps):
        for name in (list(runs) if round_no % 2 == 0 else list(reversed(runs))):
            seconds, count = runs[name]()
            times[name].append(seconds)
            rows[name] = count
            log(f"  {name}: {seconds:.2f} s, {count:,} rows")
    return {name: {"median_s": statistics.median(t), "runs_s": t, "rows": rows[name]} for name, t in times.items()}


def torch_part(reg: Any, baseline: Path, reps: int) -> dict[str, Any]:
    import torch.utils.data

    from registry.training.torch import SnapshotDataset

    columns = ["confidence", "label"]
    ours = SnapshotDataset("labels", columns=columns, batch_size=BATCH, shuffle=False, transform=tensors_only,
                           registry=reg, job="bench")
    shuffled = SnapshotDataset("labels", columns=columns, batch_size=BATCH, shuffle=True, seed=1,
                               transform=tensors_only, registry=reg, job="bench")
    base = ParquetFileDataset(str(baseline), columns, tensors_only)

    def loader(ds: Any) -> Any:
        return torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2)

    return interleaved(reps, {"baseline": lambda: epoch(loader(base)),
                              "snapshot_dataset": lambda: epoch(loader(ours)),
                              "snapshot_dataset_shuffled": lambda: epoch(loader(shuffled))})


RAY_DRIVER = """
import json, sys, time
import ray
from registry import Registry
from registry.training.ray import read_snapshot
home, cpus, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ray.init(num_cpus=cpus, include_dashboard=False, object_store_memory=1 << 30, log_to_driver=False)
times = []
with Registry.open(home) as reg:
    for n in range(reps + 1):
        ds = read_snapshot("labels", ["confidence", "label"], registry=reg, override_num_blocks=8)
        start = time.perf_counter()
        rows = ds.map_batches(lambda b: {"n": [b.num_rows]}, batch_format="pyarrow").sum("n")
        if n:
            times.append(time.perf_counter() - start)
print(json.dumps({"runs_s": times, "rows": rows}))
ray.shutdown()
"""


def ray_part(home: Path, reps: int) -> dict[str, Any]:
    """Each worker count in its own Ray runtime (a fresh process: Ray keeps one runtime per process)."""
    import subprocess

    out: dict[str, Any] = {}
    for cpus in (1, 2):
        proc = subprocess.run([sys.executable, "-c", RAY_DRIVER, str(home), str(cpus), str(reps)],
                              capture_output=True, text=True, timeout=1800)
        if proc.returncode:
            raise RuntimeError(f"ray driver ({cpus} workers) failed: {proc.stderr[-2000:]}")
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        out[f"workers_{cpus}"] = {"median_s": statistics.median(result["runs_s"]), **result}
        log(f"  ray {cpus} worker(s): {result['runs_s']}")
    return out


def report(raw: dict[str, Any]) -> str:
    t = raw["torch"]
    base_rate = t["baseline"]["rows"] / t["baseline"]["median_s"]
    lines = ["# Training-read benchmark", "",
             f"{raw['rows']:,}-row labels snapshot (base layer + an upsert layer of {RELABELED:,} relabeled and "
             f"{ADDED:,} new rows); DataLoader with 2 workers, batch {BATCH}, the same transform on both sides "
             "(confidence and label class numbers as tensors); medians of "
             f"{raw['reps']}, interleaved, after a warm-up.", "",
             "| what | median s | rows/s | vs baseline | best s | best vs best | goal (median) | |",
             "|---|---|---|---|---|---|---|---|"]
    base_best = min(t["baseline"]["runs_s"])
    for name in ("baseline", "snapshot_dataset", "snapshot_dataset_shuffled"):
        rate = t[name]["rows"] / t[name]["median_s"]
        ratio = rate / base_rate
        best = min(t[name]["runs_s"])
        goal = ">= 0.8x" if name == "snapshot_dataset" else ""
        verdict = ("PASS" if ratio >= 0.8 else "FAIL") if goal else ""
        lines.append(f"| {name} | {t[name]['median_s']:.2f} | {rate:,.0f} | {ratio:.2f}x | {best:.2f} | "
                     f"{base_best / best:.2f}x | {goal} | {verdict} |")
    if "ray" in raw:
        r = raw["ray"]
        speedup = r["workers_1"]["median_s"] / r["workers_2"]["median_s"]
        best = min(r["workers_1"]["runs_s"]) / min(r["workers_2"]["runs_s"])
        lines += ["", "Ray Data `read_snapshot` (columns confidence and label, 8 read tasks for either worker "
                  "count, rows summed in the workers), each worker count in its own local runtime:", "",
                  "| workers | median s | speed-up | best s | best speed-up | goal (median) | |",
                  "|---|---|---|---|---|---|---|",
                  f"| 1 | {r['workers_1']['median_s']:.2f} | 1.00x | {min(r['workers_1']['runs_s']):.2f} | 1.00x | | |",
                  f"| 2 | {r['workers_2']['median_s']:.2f} | {speedup:.2f}x | {min(r['workers_2']['runs_s']):.2f} | "
                  f"{best:.2f}x | >= 1.5x | {'PASS' if speedup >= 1.5 else 'FAIL'} |"]
    lines += ["", f"Machine: {os.cpu_count()} CPUs; load average {raw['load_start']:.2f} at start, "
              f"{os.getloadavg()[0]:.2f} at end (other work shares the machine: a load well above the CPU count "
              "makes every figure, and parallel speed-ups most, unreliable; 'best' is the least disturbed run). "
              "Raw figures: the `.json` next to this file."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("bench/results/training.md"))
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray part")
    parser.add_argument("--seed", type=int, default=20240601)
    args = parser.parse_args()
    os.environ.setdefault("OPENLINEAGE_DISABLED", "true")

    from registry import Registry

    raw: dict[str, Any] = {"rows": args.rows, "reps": args.reps, "load_start": os.getloadavg()[0]}
    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory(prefix="training_bench_") as scratch:
        log(f"generating {args.rows:,} rows")
        data, labels = generate(args.rows, rng)
        v1 = data.table(np.arange(args.rows), labels)
        relabeled = np.sort(rng.choice(args.rows, RELABELED, replace=False))
        relabel(labels, relabeled, rng)
        changed = np.concatenate([relabeled, np.arange(args.rows, args.rows + ADDED)])
        reg = Registry.init(Path(scratch) / "home")
        reg.create_dataset("labels", "sample_id")
        reg.commit("labels", v1, message="v1")
        reg.commit("labels", data.table(changed, labels), mode="upsert", message="v2")
        reg.set_policy("labels", "checks:\n  - check: row_count\n    min: 1\n")
        reg.qa_run("labels")
        baseline = Path(scratch) / "v2.parquet"
        pq.write_table(reg.read("labels"), baseline, compression="zstd", row_group_size=ROW_GROUP)
        del v1
        log("torch: baseline vs SnapshotDataset")
        raw["torch"] = torch_part(reg, baseline, args.reps)
        if not args.no_ray:
            log("ray: 1 vs 2 workers")
            raw["ray"] = ray_part(reg.home, args.reps)
        reg.close()
    text = report(raw)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    args.out.with_suffix(".json").write_text(json.dumps(raw, indent=2))
    print(text)


if __name__ == "__main__":
    main()
