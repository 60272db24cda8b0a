"""Training reads: SnapshotDataset epoch throughput against a DataLoader over one local Parquet file,
and Ray Data reads of a snapshot with 2 workers against 1.

    python bench/training_bench.py                      # 10,000,000 rows (a few minutes, ~3 GiB RAM)
    python bench/training_bench.py --rows 500000        # quick run while developing

The snapshot is core_bench's labels table (v1, then v2 = 2,000 relabeled + 3,000 new rows as an
upsert layer, so the plan hides rows). The baseline is the same rows as one zstd Parquet file
(1M-row groups, as the registry writes them) read with pyarrow by a plain ``IterableDataset``. Both
sides run in the same DataLoader (2 workers, ``batch_size=None``) with the same batch size, the same
two columns and the same transform (so the training loop receives the same tensors), and they split
the work the same way: whole row groups per worker. Unshuffled, the baseline streams its worker's row
groups with ``iter_batches``; shuffled, it does what SnapshotDataset does (row groups in a per-epoch
permuted order dealt to the workers, each row group's rows permuted), so the shuffle granularity is
the same. What SnapshotDataset does on top: admission (gate, audit, lineage; once, before the
epochs, not timed), the scan plan (hidden rows cut out of the base layer, a second object), and a
stat of each object against its verified marker before reading it (the hash itself was done once,
at admission). Goals: SnapshotDataset >= 0.8x the baseline's rows/s; Ray Data with 2 workers >= 1.5x
1 worker. Besides wall time, each epoch's CPU time (this process and its DataLoader workers) is
recorded: on a shared machine it says what each side costs when wall time says how busy the machine
was. Needs the [torch] and [ray] extras (``bash scripts/setup_training.sh``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
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
    """The baseline: one Parquet file's row groups split across DataLoader workers; ``shuffle``: the
    row groups in a permuted order from ``(seed, epoch)``, dealt to the workers, and each row group's
    rows permuted from ``(seed, epoch, row group)`` (SnapshotDataset's granularity)."""

    def __new__(cls, path: str, columns: list[str], transform: Callable[[pa.RecordBatch], Any],
                shuffle: bool = False, seed: int = 0) -> Any:
        import torch.utils.data

        class _Dataset(torch.utils.data.IterableDataset):  # type: ignore[type-arg]
            epoch = 0

            def __iter__(self) -> Iterator[Any]:
                info = torch.utils.data.get_worker_info()
                worker, workers = (info.id, info.num_workers) if info else (0, 1)
                parquet = pq.ParquetFile(path)
                count = parquet.metadata.num_row_groups
                if not shuffle:
                    groups = list(range(count))[worker::workers]
                    for batch in parquet.iter_batches(batch_size=BATCH, row_groups=groups, columns=columns):
                        yield transform(batch)
                    return
                for group in np.random.default_rng([seed, self.epoch]).permutation(count)[worker::workers]:
                    rows = parquet.read_row_group(int(group), columns=columns)
                    order = np.random.default_rng([seed, self.epoch, int(group)]).permutation(rows.num_rows)
                    for batch in rows.take(pa.array(order)).to_batches(max_chunksize=BATCH):
                        yield transform(batch)

        return _Dataset()


def _cpu_seconds() -> float:
    """CPU time of this process and its reaped children (the DataLoader workers of finished epochs)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def epoch(loader: Any) -> tuple[float, int, float]:
    cpu = _cpu_seconds()
    start = time.perf_counter()
    rows = sum(len(batch["confidence"]) for batch in loader)
    seconds = time.perf_counter() - start
    del loader  # its workers are joined once the epoch ends; count their CPU time
    return seconds, rows, _cpu_seconds() - cpu


def interleaved(reps: int, runs: dict[str, Callable[[], tuple[float, int, float]]]) -> dict[str, dict[str, Any]]:
    """Median seconds of each run, alternating their order every round, after one warm-up each."""
    for fn in runs.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in runs}
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    rows: dict[str, int] = {}
    loads: list[float] = []
    for round_no in range(reps):
        loads.append(os.getloadavg()[0])
        for name in (list(runs) if round_no % 2 == 0 else list(reversed(runs))):
            seconds, count, cpu_s = runs[name]()
            times[name].append(seconds)
            cpu[name].append(cpu_s)
            rows[name] = count
            log(f"  {name}: {seconds:.2f} s, {cpu_s:.2f} CPU s, {count:,} rows")
    return {name: {"median_s": statistics.median(t), "runs_s": t, "cpu_s": cpu[name],
                   "median_cpu_s": statistics.median(cpu[name]), "rows": rows[name], "load_per_round": loads}
            for name, t in times.items()}


def torch_part(reg: Any, baseline: Path, reps: int) -> dict[str, Any]:
    import torch.utils.data

    from registry.training.torch import SnapshotDataset

    columns = ["confidence", "label"]
    ours = SnapshotDataset("labels", columns=columns, batch_size=BATCH, shuffle=False, transform=tensors_only,
                           registry=reg, job="bench")
    shuffled = SnapshotDataset("labels", columns=columns, batch_size=BATCH, shuffle=True, seed=1,
                               transform=tensors_only, registry=reg, job="bench")
    base = ParquetFileDataset(str(baseline), columns, tensors_only)
    base_shuffled = ParquetFileDataset(str(baseline), columns, tensors_only, shuffle=True, seed=1)
    epochs = iter(range(1 << 30))

    def loader(ds: Any) -> Any:
        return torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2)

    def shuffled_epoch(ds: Any) -> tuple[float, int, float]:
        number = next(epochs)  # a new shuffle every epoch, on both sides
        if hasattr(ds, "set_epoch"):
            ds.set_epoch(number)
        else:
            ds.epoch = number
        return epoch(loader(ds))

    return interleaved(reps, {"baseline": lambda: epoch(loader(base)),
                              "snapshot_dataset": lambda: epoch(loader(ours)),
                              "baseline_shuffled": lambda: shuffled_epoch(base_shuffled),
                              "snapshot_dataset_shuffled": lambda: shuffled_epoch(shuffled)})


RAY_DRIVER = """
import json, os, re, sys, time
import ray
import ray.data
from registry import Registry
from registry.training.ray import read_snapshot
home, cpus, reps, blocks, reserve = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
ray.init(num_cpus=cpus, include_dashboard=False, object_store_memory=1 << 30, log_to_driver=False)
context = ray.data.DataContext.get_current()
context.enable_progress_bars = False

def busy():
    fields = [int(v) for v in open("/proc/stat").readline().split()[1:]]
    return sum(fields) - fields[3] - fields[4], sum(fields)

def count(block):
    return {"n": [block.num_rows], "pid": [os.getpid()], "at": [time.time()]}

runs = []
with Registry.open(home) as reg:
    for n in range(reps + 1):
        ds = read_snapshot("labels", registry=reg, override_num_blocks=blocks, reserve_op_resources=reserve == "on")
        counted = ds.map_batches(count, batch_format="pyarrow", batch_size=None)
        used, total = busy()
        wall, start, driver = time.time(), time.perf_counter(), time.process_time()
        out = counted.take_all()
        seconds = time.perf_counter() - start
        driver = time.process_time() - driver
        used, total = busy()[0] - used, busy()[1] - total
        stats = counted.stats()
        cpu = re.search(r"Remote cpu time: .*?, ([0-9.]+)(us|ms|s) total", stats)
        tasks = re.search(r"(\\d+) tasks executed", stats)
        task_cpu = float(cpu.group(1)) / {"us": 1e6, "ms": 1e3, "s": 1}[cpu.group(2)] if cpu else None
        first = {}
        for row in out:
            first[row["pid"]] = min(first.get(row["pid"], 1e18), row["at"] - wall)
        if n:
            runs.append({"s": seconds, "rows": sum(row["n"] for row in out), "task_cpu_s": task_cpu,
                         "driver_cpu_s": driver, "tasks": int(tasks.group(1)) if tasks else None,
                         "worker_processes": len(first), "first_block_per_worker_s": sorted(first.values()),
                         "machine_busy": used / total if total else None, "load": os.getloadavg()[0]})
print(json.dumps(runs))
ray.shutdown()
"""
RAY_BLOCKS = 8
RAY_MODES = {"defaults": "off", "ray_reservation": "on"}
"""``read_snapshot`` as it comes (Ray Data's per-operator resource reservation off for its dataset), and
with ``reserve_op_resources=True`` (Ray's own default: it holds a single-operator read to one task at a
time for about its first second)."""


def ray_part(home: Path, reps: int) -> dict[str, Any]:
    """Each worker count in its own Ray runtime (a fresh process: Ray keeps one runtime per process),
    two runtimes per count and mode, alternating, ``(reps + 1) // 2`` timed reads (after a warm-up) each."""
    import subprocess

    out: dict[str, Any] = {}
    for mode, reserve in RAY_MODES.items():
        part: dict[str, Any] = {"workers_1": {"runs": []}, "workers_2": {"runs": []}}
        for cpus in (1, 2, 2, 1):
            proc = subprocess.run([sys.executable, "-c", RAY_DRIVER, str(home), str(cpus), str((reps + 1) // 2),
                                   str(RAY_BLOCKS), reserve], capture_output=True, text=True, timeout=1800)
            if proc.returncode:
                raise RuntimeError(f"ray driver ({cpus} workers) failed: {proc.stderr[-2000:]}")
            runs = json.loads(proc.stdout.strip().splitlines()[-1])
            part[f"workers_{cpus}"]["runs"] += runs
            log(f"  ray {mode}, {cpus} worker(s): " + ", ".join(
                f"{r['s']:.2f} s ({r['task_cpu_s']:.2f} task CPU s, {r['worker_processes']} processes, first "
                f"blocks {[round(v, 2) for v in r['first_block_per_worker_s']]}, "
                f"machine {100 * (r['machine_busy'] or 0):.0f}% busy)"
                for r in runs))
        for side in part.values():
            side["runs_s"] = [r["s"] for r in side["runs"]]
            side["median_s"] = statistics.median(side["runs_s"])
            side["median_task_cpu_s"] = statistics.median(r["task_cpu_s"] or 0 for r in side["runs"])
            side["median_machine_busy"] = statistics.median(r["machine_busy"] or 0 for r in side["runs"])
            side["rows"] = side["runs"][-1]["rows"]
        out[mode] = part
    return out


def _cpus_got(side: dict[str, Any]) -> float:
    """How many CPUs the read tasks had on average while the read ran (median over the runs)."""
    return statistics.median((r["task_cpu_s"] or 0) / r["s"] for r in side["runs"])


def torch_table(t: dict[str, Any]) -> list[str]:
    """The DataLoader epochs' table, each side against its own baseline."""
    lines = ["| what | median s | rows/s | vs its baseline | best s | best vs best | median CPU s "
             "| CPU vs its baseline | goal (median) | |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, against in (("baseline", "baseline"), ("snapshot_dataset", "baseline"),
                          ("baseline_shuffled", "baseline_shuffled"),
                          ("snapshot_dataset_shuffled", "baseline_shuffled")):
        if name not in t:
            continue
        rate = t[name]["rows"] / t[name]["median_s"]
        ratio = rate / (t[against]["rows"] / t[against]["median_s"])
        best = min(t[name]["runs_s"])
        cpu_ratio = t[against]["median_cpu_s"] / t[name]["median_cpu_s"] if t[name]["median_cpu_s"] else 0.0
        goal = ">= 0.8x" if name == "snapshot_dataset" else ""
        verdict = ("PASS" if ratio >= 0.8 else "FAIL") if goal else ""
        lines.append(f"| {name} | {t[name]['median_s']:.2f} | {rate:,.0f} | {ratio:.2f}x | {best:.2f} | "
                     f"{min(t[against]['runs_s']) / best:.2f}x | {t[name]['median_cpu_s']:.2f} | {cpu_ratio:.2f}x | "
                     f"{goal} | {verdict} |")
    loads = t["baseline"].get("load_per_round", [])
    if loads:
        lines += ["", f"Load average (1 min) at the start of each round: {', '.join(f'{v:.1f}' for v in loads)}."]
    return lines


def report(raw: dict[str, Any], more: list[dict[str, Any]] | None = None) -> str:
    t = raw["torch"]
    lines = ["# Training-read benchmark", "",
             f"{raw['rows']:,}-row labels snapshot (base layer + an upsert layer of {RELABELED:,} relabeled and "
             f"{ADDED:,} new rows, so the plan cuts {RELABELED:,} hidden rows out of the base layer). Both sides "
             f"run in a DataLoader with 2 workers (`batch_size=None`), batch {BATCH}, columns confidence and "
             "label, the same transform (confidence and label class numbers as tensors: the loop receives the "
             "same tensors), whole row groups per worker. **baseline**: the same rows as one local zstd "
             "Parquet file (1M-row groups), read with pyarrow by a plain `IterableDataset` (`iter_batches` "
             "over its worker's row groups). **baseline_shuffled**: row groups in a permuted order per "
             "epoch, dealt to the workers, each read whole and its rows permuted (`take`), the same "
             "granularity as **snapshot_dataset_shuffled**. **snapshot_dataset**: `SnapshotDataset` "
             "(gate, audit and lineage once, objects hashed once at admission with a verified marker, "
             "then per worker: its share of the scan plan, a stat of each object against its marker, "
             "streamed decode with hidden rows cut out, exact-size batches). Medians of "
             f"{raw['reps']} epochs, the runs interleaved, after a warm-up; CPU s is this process and its "
             "DataLoader workers.", "",
             ""] + torch_table(t)
    for extra in more or []:
        lines += ["", f"Another run of the DataLoader part on the same tree ({extra['rows']:,} rows, medians of "
                  f"{extra['reps']} epochs; load average {extra['load_start']:.2f} at start):", ""]
        lines += torch_table(extra["torch"])
    if "ray" in raw:
        lines += ["", f"Ray Data `read_snapshot` (every column, {RAY_BLOCKS} read tasks for either worker count, each "
                  "verifying its objects against the verified marker and counting its rows in the task, so only one "
                  "number per task reaches the driver), each worker count in its own local runtime (`num_cpus` 1 or "
                  "2), two runtimes per count, alternating, a warm-up read in each. Task CPU s: the read tasks' CPU "
                  "time (Ray's stats); machine busy: all CPUs, from /proc/stat, during the read. *defaults*: "
                  "`read_snapshot` as it comes, which turns Ray Data's per-operator resource reservation off for the "
                  "dataset it returns (its own copy of the `DataContext`); *ray_reservation*: "
                  "`reserve_op_resources=True`, Ray Data's own default (with it, Ray Data 2.60 runs this one-operator "
                  "read one task at a time for about its first second; see the first block per worker in the "
                  "`.json`).", "",
                  "| Ray Data | workers | median s | speed-up | best s | best speed-up | median task CPU s | "
                  "CPUs the tasks got (task CPU s / s) | median machine busy | goal (median) | |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for mode, r in raw["ray"].items():
            one, two = r["workers_1"], r["workers_2"]
            speedup = one["median_s"] / two["median_s"]
            best = min(one["runs_s"]) / min(two["runs_s"])
            lines += [f"| {mode} | 1 | {one['median_s']:.2f} | 1.00x | {min(one['runs_s']):.2f} | 1.00x | "
                      f"{one['median_task_cpu_s']:.2f} | {_cpus_got(one):.2f} | "
                      f"{100 * one['median_machine_busy']:.0f}% | | |",
                      f"| {mode} | 2 | {two['median_s']:.2f} | {speedup:.2f}x | {min(two['runs_s']):.2f} | "
                      f"{best:.2f}x | {two['median_task_cpu_s']:.2f} | {_cpus_got(two):.2f} | "
                      f"{100 * two['median_machine_busy']:.0f}% | >= 1.5x | {'PASS' if speedup >= 1.5 else 'FAIL'} |"]
    lines += ["", f"Machine: {os.cpu_count()} CPUs; load average {raw['load_start']:.2f} at start, "
              f"{raw.get('load_end', os.getloadavg()[0]):.2f} at end (other work shares the machine: a load well "
              "above the CPU count makes every figure, and parallel speed-ups most, unreliable; 'best' is the least "
              "disturbed run). Raw figures: the `.json` next to this file."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("bench/results/training.md"))
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray part")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--from-json", type=Path, help="write the report of an earlier run's raw figures, run nothing")
    parser.add_argument("--more", type=Path, action="append", default=[],
                        help="with --from-json: another run's raw figures, whose DataLoader table is added")
    args = parser.parse_args()
    if args.from_json:
        text = report(json.loads(args.from_json.read_text()), [json.loads(p.read_text()) for p in args.more])
        args.out.write_text(text)
        print(text)
        return
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
    raw["load_end"] = os.getloadavg()[0]
    text = report(raw)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    args.out.with_suffix(".json").write_text(json.dumps(raw, indent=2))
    print(text)


if __name__ == "__main__":
    main()
