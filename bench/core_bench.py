#!/usr/bin/env python
"""Core benchmark of the dataset registry against plain pyarrow / DuckDB baselines.

Run ``python bench/core_bench.py [--rows 10000000] [--out bench/results/core.md]``; see
``bench/README.md`` for what is measured, the targets and how to read the results.

Everything runs in one invocation so that the baselines and the registry see the same machine
state (same page cache, same CPU load). Commits that the targets judge run in a fresh child
process (this same script with ``--child``) so that their wall time and peak RSS are those of a
cold process, as with the CLI; diffs and reads use a freshly opened ``Registry`` per repetition
(no in-process index memo) with a warm OS page cache, like the baselines.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

MiB = 1024 * 1024
N_CLASSES = 20
N_ANNOTATORS = 200
RELABELED = 2_000
ADDED = 3_000
INCREMENTAL_COMMITS = 50
INCREMENTAL_RELABEL = 1_000
INCREMENTAL_ADD = 20
DATASET = "labels"
KEY = "sample_id"

LABELS = pa.array([f"class_{i:02d}" for i in range(N_CLASSES)], pa.string())
ANNOTATORS = pa.array([f"annotator_{i:03d}" for i in range(N_ANNOTATORS)], pa.string())


# --------------------------------------------------------------------------------------------
# Data generation (vectorised; no per-row Python)
# --------------------------------------------------------------------------------------------


def make_ids(idx: np.ndarray) -> pa.Array:
    """``f"s{i:09d}"`` for every ``i`` in ``idx``, built as one Arrow string array from numpy bytes."""
    n = len(idx)
    if n and int(idx.max()) >= 10**9:
        raise ValueError("ids only go to s999999999")
    width = 10
    buf = np.empty((n, width), np.uint8)
    buf[:, 0] = ord("s")
    v = idx.astype(np.int64, copy=True)
    for pos in range(width - 1, 0, -1):
        buf[:, pos] = (v % 10 + 48).astype(np.uint8)
        v //= 10
    if (n + 1) * width >= 2**31:
        raise ValueError("too many rows for 32-bit string offsets")
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(buf.reshape(-1)))


@dataclass
class Data:
    """Column values for every row id that any version uses; labels differ per version."""

    annotator: np.ndarray
    confidence: np.ndarray
    created_at: np.ndarray

    def table(self, rows: np.ndarray, labels: np.ndarray) -> pa.Table:
        return pa.table({
            "sample_id": make_ids(rows),
            "label": LABELS.take(pa.array(labels[rows])),
            "annotator_id": ANNOTATORS.take(pa.array(self.annotator[rows])),
            "confidence": pa.array(self.confidence[rows], pa.float32()),
            "created_at": pa.array(self.created_at[rows], pa.timestamp("us")),
        })


def generate(n: int, rng: np.random.Generator) -> tuple[Data, np.ndarray]:
    total = n + ADDED + INCREMENTAL_COMMITS * INCREMENTAL_ADD
    start = np.datetime64("2024-01-01T00:00:00", "us").astype(np.int64)
    data = Data(
        annotator=rng.integers(0, N_ANNOTATORS, total, dtype=np.int16),
        confidence=rng.random(total, dtype=np.float32),
        created_at=start + rng.integers(0, 365 * 86_400 * 1_000_000, total, dtype=np.int64),
    )
    labels = rng.integers(0, N_CLASSES, total, dtype=np.int8)
    return data, labels


def relabel(labels: np.ndarray, idx: np.ndarray, rng: np.random.Generator) -> None:
    """Give each row in ``idx`` a label different from its current one."""
    labels[idx] = ((labels[idx].astype(np.int16) + rng.integers(1, N_CLASSES, len(idx))) % N_CLASSES).astype(np.int8)


# --------------------------------------------------------------------------------------------
# Measurement helpers
# --------------------------------------------------------------------------------------------


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def median_of(reps: int, fn: Callable[[], Any], check: Callable[[Any], None] | None = None) -> dict[str, Any]:
    times = []
    for _ in range(reps):
        seconds, out = timed(fn)
        if check is not None:
            check(out)
        del out
        times.append(seconds)
    return {"median_s": statistics.median(times), "runs_s": times}


class RssSampler:
    """Samples this process's RSS every ``interval`` seconds while running (a cross-check of ru_maxrss)."""

    def __init__(self, interval: float = 0.002) -> None:
        import psutil

        self.proc = psutil.Process()
        self.interval = interval
        self.peak = self.proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)


def run_profiled(fn: Callable[[], Any], profiler: str, out_base: Path) -> Any:
    """Run ``fn`` under cProfile or pyinstrument and save the profile next to ``out_base``."""
    out_base.parent.mkdir(parents=True, exist_ok=True)
    if profiler == "pyinstrument":
        from pyinstrument import Profiler

        prof = Profiler(interval=0.001)
        prof.start()
        try:
            return fn()
        finally:
            prof.stop()
            out_base.with_suffix(".pyinstrument.txt").write_text(
                prof.output_text(unicode=False, color=False, show_all=False))
    import cProfile
    import io
    import pstats

    prof = cProfile.Profile()
    prof.enable()
    try:
        return fn()
    finally:
        prof.disable()
        prof.dump_stats(str(out_base.with_suffix(".pstats")))
        text = io.StringIO()
        stats = pstats.Stats(prof, stream=text)
        stats.sort_stats("cumulative").print_stats(40)
        stats.sort_stats("tottime").print_stats(25)
        out_base.with_suffix(".cprofile.txt").write_text(text.getvalue())


# --------------------------------------------------------------------------------------------
# Child process: one commit in a fresh interpreter (wall time, bytes, peak RSS)
# --------------------------------------------------------------------------------------------


def _reset_peak_rss() -> bool:
    """Reset this process's peak-RSS mark (Linux >= 4.0: write 5 to /proc/self/clear_refs)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _vm_hwm() -> int | None:
    """Peak RSS of this process's address space since exec (or since the last reset), in bytes."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def warm_up(registry: Any, rows: pa.Table, mode: str) -> float:
    """Two commits of ``rows`` (a first one, then one in ``mode``) into a scratch home, so that the timed
    commit runs in a process that has imported and compiled its code path, like the baseline's write (the
    registry loads its commit modules lazily: 30-80 ms in a fresh process, more where Python may not
    write bytecode). Returns the warm-up's seconds, reported beside the commit."""
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="warm_up_") as scratch, registry.init(Path(scratch)) as reg:
        reg.create_dataset(DATASET, KEY)
        reg.commit(DATASET, rows.slice(0, rows.num_rows // 2), mode="replace")
        reg.commit(DATASET, rows, mode=mode)  # adds the other half: a commit onto a parent, in ``mode``
    return time.perf_counter() - t0


def child_main(spec: dict[str, Any]) -> None:
    import psutil

    from registry.arrow_setup import hide_pandas

    hide_pandas()  # as the `registry` command does: pyarrow would import pandas (0.4 s, 100 MiB) for nothing
    from registry import Registry

    reg = Registry.open(spec["home"])
    # An upsert is given its rows as an in-memory table; a replace gets the file path.
    source: Any = pq.read_table(spec["source"]) if spec.get("load_table") else Path(spec["source"])
    # Ten rows, not the whole file: the allocator would keep a whole read's pages, counted in the commit's peak.
    first_rows = pa.Table.from_batches([next(pq.ParquetFile(spec["source"]).iter_batches(batch_size=10))])
    warm_up_s = warm_up(Registry, first_rows, spec["mode"])
    gc.collect()
    # ru_maxrss is useless here: Linux carries it across fork+exec, so it starts at the parent's RSS.
    # VmHWM belongs to the new address space; resetting it makes it the peak of the commit alone.
    reset = _reset_peak_rss()
    rss_before = psutil.Process().memory_info().rss

    def work() -> Any:
        return reg.commit(spec["dataset"], source, mode=spec["mode"], message=spec.get("message", ""))

    cpu0 = time.process_time()
    with RssSampler() as sampler:
        t0 = time.perf_counter()
        if spec.get("profile"):
            result = run_profiled(work, spec.get("profiler", "cprofile"), Path(spec["profile"]))
        else:
            result = work()
        seconds = time.perf_counter() - t0
    cpu_seconds = time.process_time() - cpu0
    hwm = _vm_hwm()
    peak = max(hwm, sampler.peak) if hwm is not None else sampler.peak
    ru_maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    reg.close()
    print(json.dumps({
        "seconds": seconds,
        "warm_up_s": warm_up_s,
        "cpu_seconds": cpu_seconds,
        "rss_before": rss_before,
        "peak_rss": peak,
        "vm_hwm": hwm,
        "vm_hwm_reset_before_commit": reset,
        "sampled_peak_rss": sampler.peak,
        "ru_maxrss_inherited": ru_maxrss,
        "result": result.to_dict(),
    }))


def run_child(spec: dict[str, Any]) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)],
                          capture_output=True, text=True, env=os.environ.copy())
    if proc.returncode != 0:
        raise RuntimeError(f"child failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------------------------
# The benchmark
# --------------------------------------------------------------------------------------------


@dataclass
class Row:
    name: str
    registry: str
    baseline: str = ""
    ratio: str = ""
    target: str = ""
    result: str = ""


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, row: Row) -> None:
        self.rows.append(row)
        print(f"  {row.name}: {row.registry}  {row.baseline}  {row.ratio}  {row.target}  {row.result}", flush=True)


def fmt_s(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def fmt_b(n: float) -> str:
    if n >= MiB:
        return f"{n / MiB:.1f} MiB"
    if n >= 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{int(n)} B"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def code_version() -> dict[str, Any]:
    import registry

    root = Path(registry.__file__).resolve().parent.parent
    info: dict[str, Any] = {"registry_module": str(Path(registry.__file__).resolve())}
    try:
        info["git_head"] = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                                          text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "registry"], capture_output=True,
                               text=True).stdout.strip()
        info["registry_dirty"] = bool(dirty)
    except (OSError, subprocess.CalledProcessError):
        info["git_head"] = None
    if os.environ.get("BENCH_CODE_REV"):  # e.g. when benchmarking an exported copy put on PYTHONPATH
        info["git_head"] = os.environ["BENCH_CODE_REV"]
        info["registry_dirty"] = False
    return info


def environment() -> dict[str, Any]:
    import duckdb
    import psutil

    return {
        "python": platform.python_version(),
        "pyarrow": pa.__version__,
        "numpy": np.__version__,
        "duckdb": duckdb.__version__,
        "cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "loadavg_at_start": os.getloadavg(),
        **code_version(),
    }


def duckdb_diff(a: Path, b: Path) -> tuple[int, int, int]:
    import duckdb

    con = duckdb.connect()
    try:
        cols = ["label", "annotator_id", "confidence", "created_at"]
        differs = " OR ".join(f"a.{c} IS DISTINCT FROM b.{c}" for c in cols)
        row = con.execute(f"""
            SELECT count(*) FILTER (WHERE a.{KEY} IS NULL)                              AS added,
                   count(*) FILTER (WHERE b.{KEY} IS NULL)                              AS removed,
                   count(*) FILTER (WHERE a.{KEY} IS NOT NULL AND b.{KEY} IS NOT NULL
                                    AND ({differs}))                                    AS changed
            FROM read_parquet('{a}') a FULL OUTER JOIN read_parquet('{b}') b ON a.{KEY} = b.{KEY}
        """).fetchone()
        assert row is not None
        return int(row[0]), int(row[1]), int(row[2])
    finally:
        con.close()


@dataclass
class SelfTimed:
    """A result that carries its own wall time (so that setup such as opening the home is not timed)."""

    seconds: float
    value: Any


def paired(reps: int, base_fn: Callable[[], Any], reg_fn: Callable[[], Any],
           check: Callable[[Any], None] | None = None) -> dict[str, Any]:
    """Interleave baseline and registry runs (alternating which goes first) so both see the same load.

    One untimed warm-up of each comes first. A registry run that raises is recorded and another is
    tried (at most ``2 * reps`` rounds). Medians are ``None`` when nothing succeeded.
    """
    errors: list[str] = []

    def attempt() -> float | None:
        try:
            seconds, out = timed(reg_fn)
            if isinstance(out, SelfTimed):  # the operation timed itself (setup excluded)
                seconds, out = out.seconds, out.value
            if check is not None:
                check(out)
            del out
            return seconds
        except Exception as exc:  # noqa: BLE001 - recorded and reported
            errors.append(f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}")
            log(f"  registry run raised {errors[-1]}")
            return None

    base_fn()
    attempt()  # warm-up (its error, if any, is counted too)
    base_runs: list[float] = []
    reg_runs: list[float] = []
    rounds = 0
    while len(reg_runs) < reps and rounds < 2 * reps:
        for which in (("base", "reg") if rounds % 2 == 0 else ("reg", "base")):
            if which == "base":
                base_runs.append(timed(base_fn)[0])
            else:
                got = attempt()
                if got is not None:
                    reg_runs.append(got)
        rounds += 1
    return {"registry_s": statistics.median(reg_runs) if reg_runs else None, "registry_runs_s": reg_runs,
            "baseline_s": statistics.median(base_runs), "baseline_runs_s": base_runs, "errors": errors,
            "attempts": rounds + 1}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows in v1 (default 10,000,000)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/core.md"), help="Markdown report path")
    parser.add_argument("--reps", type=int, default=3,
                        help="repetitions of every measurement (median; commits on copies of the home)")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--tmp", type=Path, default=None, help="parent folder for the scratch dir")
    parser.add_argument("--keep", action="store_true", help="keep the scratch dir (inputs and homes)")
    parser.add_argument("--profile", type=Path, default=None,
                        help="also profile each registry operation (untimed extra run) into this folder")
    parser.add_argument("--profiler", choices=["cprofile", "pyinstrument"], default="cprofile")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(json.loads(args.child))
        return

    import registry.snapshots.diff as diff_module
    from registry import Registry

    n = args.rows
    reps = args.reps
    rng = np.random.default_rng(args.seed)
    scratch = Path(tempfile.mkdtemp(prefix="core_bench_", dir=args.tmp))
    report = Report()
    report.raw["env"] = environment()
    report.raw["params"] = {"rows": n, "reps": reps, "seed": args.seed, "relabeled": RELABELED, "added": ADDED,
                            "incremental_commits": INCREMENTAL_COMMITS, "incremental_relabel": INCREMENTAL_RELABEL,
                            "incremental_add": INCREMENTAL_ADD, "scratch": str(scratch)}
    raw = report.raw
    run_errors: list[str] = []
    log(f"scratch dir {scratch}; registry code {raw['env']['registry_module']} @ {raw['env'].get('git_head')}")

    def profile_target(name: str) -> Path | None:
        return (args.profile / name) if args.profile else None

    def profiled_extra(name: str, fn: Callable[[], Any]) -> None:
        base = profile_target(name)
        if base is not None:
            log(f"profiling {name}")
            gc.collect()
            try:
                run_profiled(fn, args.profiler, base)
            except Exception as exc:  # noqa: BLE001 - profiling is best effort
                log(f"  profiled run raised {type(exc).__name__}: {exc}")

    try:
        # ---------------- data ----------------
        log(f"generating {n:,} rows")
        t_gen = time.perf_counter()
        data, labels_v1 = generate(n, rng)
        labels_v2 = labels_v1.copy()
        relabeled_idx = np.sort(rng.choice(n, RELABELED, replace=False))
        relabel(labels_v2, relabeled_idx, rng)
        v1 = data.table(np.arange(n), labels_v1)
        v2 = data.table(np.arange(n + ADDED), labels_v2)
        changes = data.table(np.concatenate([relabeled_idx, np.arange(n, n + ADDED)]), labels_v2)
        v1_path, v2_path, changes_path = scratch / "v1.parquet", scratch / "v2.parquet", scratch / "changes.parquet"
        pq.write_table(v1, v1_path, compression="zstd")
        pq.write_table(v2, v2_path, compression="zstd")
        pq.write_table(changes, changes_path, compression="zstd")
        raw["generate_s"] = time.perf_counter() - t_gen
        raw["inputs"] = {"v1_bytes": v1_path.stat().st_size, "v2_bytes": v2_path.stat().st_size,
                         "v1_in_memory_bytes": v1.nbytes}
        log(f"data ready in {raw['generate_s']:.1f}s (v1.parquet {fmt_b(raw['inputs']['v1_bytes'])}, "
            f"Arrow {fmt_b(v1.nbytes)})")
        del v2

        # ---------------- baselines (standalone medians, for the record) ----------------
        full_path = scratch / "baseline_full_v1.parquet"
        fsync_times: list[float] = []

        def write_full() -> None:
            full_path.unlink(missing_ok=True)
            pq.write_table(v1, full_path, compression="zstd")

        def fsync_full() -> None:
            t0 = time.perf_counter()
            fd = os.open(full_path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            fsync_times.append(time.perf_counter() - t0)

        log("baseline (a): pyarrow full write of v1 (zstd)")
        write_full()
        write_times = []
        for _ in range(reps):
            write_times.append(timed(write_full)[0])
            fsync_full()
        base_bytes = full_path.stat().st_size
        raw["baseline_write"] = {"median_s": statistics.median(write_times), "runs_s": write_times,
                                 "bytes": base_bytes, "fsync_after_s": fsync_times}
        log(f"  write {fmt_s(statistics.median(write_times))}, {fmt_b(base_bytes)} "
            f"(fsync after: {fmt_s(statistics.median(fsync_times))})")

        log("baseline (b): DuckDB FULL OUTER JOIN diff v1.parquet vs v2.parquet")
        duck_counts = duckdb_diff(v1_path, v2_path)  # warm-up, and check the answer
        assert duck_counts == (ADDED, 0, RELABELED), duck_counts
        duck = median_of(reps, lambda: duckdb_diff(v1_path, v2_path))
        raw["baseline_duckdb_diff"] = {**duck, "added_removed_changed": duck_counts}
        log(f"  duckdb diff {fmt_s(duck['median_s'])} -> {duck_counts}")

        log("baseline (c): pyarrow read of v2.parquet into Arrow")
        pq.read_table(v2_path)  # warm-up
        rd = median_of(reps, lambda: pq.read_table(v2_path))
        raw["baseline_read"] = rd
        log(f"  read {fmt_s(rd['median_s'])}")

        # ---------------- registry: setup ----------------
        home1, home2 = scratch / "home1", scratch / "home2"
        for home in (home1, home2):
            with Registry.init(home) as reg:
                reg.create_dataset(DATASET, KEY)

        def commit_runs(key: str, home: Path, spec: dict[str, Any]) -> tuple[dict[str, Any], float]:
            """Run one commit ``reps`` times in fresh processes: on ``home``, then on copies of it taken
            before; each run is preceded by a baseline full write. Returns the figures and the
            baseline median."""
            copies = [scratch / f"{home.name}_copy{r}" for r in range(1, reps)]
            profile_copy = scratch / f"{home.name}_profile_copy" if args.profile else None
            for copy in [*copies, *([profile_copy] if profile_copy else [])]:
                shutil.copytree(home, copy)
            runs, base_runs = [], []
            for target in [home, *copies]:
                base_runs.append(timed(write_full)[0])
                fsync_full()
                # Flush every dirty page (copies, inputs) so that the commit's own fsyncs do not wait
                # for unrelated writeback.
                os.sync()
                runs.append(run_child({**spec, "home": str(target)}))
                log(f"  run on {target.name}: {fmt_s(runs[-1]['seconds'])} "
                    f"(baseline write just before: {fmt_s(base_runs[-1])})")
            for copy in copies:
                shutil.rmtree(copy)
            if profile_copy is not None:
                log(f"profiling {key} (on another copy of {home.name})")
                run_child({**spec, "home": str(profile_copy), "profile": str(profile_target(key)),
                           "profiler": args.profiler})
                shutil.rmtree(profile_copy)
            seconds = [r["seconds"] for r in runs]
            figures = {"median_s": statistics.median(seconds), "runs_s": seconds, "runs": runs,
                       "peak_rss_max": max(r["peak_rss"] for r in runs),
                       "rss_growth_max": max(r["peak_rss"] - r["rss_before"] for r in runs),
                       "baseline_write_runs_s": base_runs, "baseline_write_s": statistics.median(base_runs)}
            raw[key] = figures
            return figures, figures["baseline_write_s"]

        log(f"registry: first commit of v1 (replace, path; {reps} fresh processes) in home1 and copies of it")
        first, base_first = commit_runs("first_commit", home1, {
            "dataset": DATASET, "source": str(v1_path), "mode": "replace", "message": "v1"})
        c_v1 = first["runs"][0]  # the run on home1 itself
        v1_id = c_v1["result"]["snapshot_id"]
        t_first = first["median_s"]
        report.add(Row(f"first commit of v1: a {n:,}-row zstd Parquet file into an empty dataset (its bytes are "
                       "stored as they are)", fmt_s(t_first), f"full write {fmt_s(base_first)}",
                       f"{t_first / base_first:.2f}x", "<= 2x", verdict(t_first <= 2 * base_first)))
        report.add(Row("first commit: peak RSS of the committing process (info)", fmt_b(first["peak_rss_max"]), "",
                       "", "-", "info"))

        log("registry: first commit of a snappy copy of v1 (the rows object is encoded anew; info)")
        snappy_path, home_snappy = scratch / "v1.snappy.parquet", scratch / "home_snappy"
        pq.write_table(v1, snappy_path, compression="snappy")
        with Registry.init(home_snappy) as reg:
            reg.create_dataset(DATASET, KEY)
        encoded, base_encoded = commit_runs("first_commit_snappy", home_snappy, {
            "dataset": DATASET, "source": str(snappy_path), "mode": "replace", "message": "v1"})
        shutil.rmtree(home_snappy)
        snappy_path.unlink()
        t_encoded = encoded["median_s"]
        report.add(Row("first commit of the same rows from a snappy file (the rows object is encoded anew as zstd; "
                       "info)", fmt_s(t_encoded), f"full write {fmt_s(base_encoded)}",
                       f"{t_encoded / base_encoded:.2f}x", "-", "info"))

        # ---------------- (1) upsert commit ----------------
        log(f"registry (1): upsert commit of the 5,000 changed rows ({reps} fresh processes)")
        up, base_write = commit_runs("upsert_commit", home1, {
            "dataset": DATASET, "source": str(changes_path), "load_table": True, "mode": "upsert",
            "message": "v2 (upsert)"})
        res = up["runs"][0]["result"]
        assert all((r["result"]["added"], r["result"]["changed"], r["result"]["removed"]) == (ADDED, RELABELED, 0)
                   for r in up["runs"]), up["runs"]
        v2_id = res["snapshot_id"]
        t_up, b_up = up["median_s"], res["bytes_written"]
        report.add(Row("(1) upsert commit 5k rows: wall time", fmt_s(t_up), f"full write {fmt_s(base_write)}",
                       f"{100 * t_up / base_write:.2f}%", "<= 2%", verdict(t_up <= 0.02 * base_write)))
        report.add(Row("(1) upsert commit: bytes written", fmt_b(b_up), f"full file {fmt_b(base_bytes)}",
                       f"{100 * b_up / base_bytes:.3f}%", "<= 1%", verdict(b_up <= 0.01 * base_bytes)))
        report.add(Row("(1) upsert commit: peak RSS of the committing process", fmt_b(up["peak_rss_max"]), "",
                       "", "<= 500 MiB", verdict(up["peak_rss_max"] <= 500 * MiB)))
        report.add(Row("(1) upsert commit: RSS growth during the commit (info)", fmt_b(up["rss_growth_max"]),
                       f"RSS before {fmt_b(up['runs'][0]['rss_before'])}", "", "-", "info"))
        report.add(Row("(1) upsert commit: the child's warm-up before it (info: imports, two 10-row commits)",
                       fmt_s(statistics.median(r["warm_up_s"] for r in up["runs"])), "", "", "-", "info"))

        # ---------------- (2) replace commit ----------------
        log("registry (2): home2: commit v1, then replace-mode commit of v2.parquet (fresh processes)")
        c_v1b = run_child({"home": str(home2), "dataset": DATASET, "source": str(v1_path), "mode": "replace",
                           "message": "v1"})
        raw["commit_v1_home2"] = c_v1b
        v1b_id = c_v1b["result"]["snapshot_id"]
        rep, base_write2 = commit_runs("replace_commit", home2, {
            "dataset": DATASET, "source": str(v2_path), "mode": "replace", "message": "v2 (replace)"})
        assert all((r["result"]["added"], r["result"]["changed"], r["result"]["removed"]) == (ADDED, RELABELED, 0)
                   for r in rep["runs"]), rep["runs"]
        v2b_id = rep["runs"][0]["result"]["snapshot_id"]
        t_rep = rep["median_s"]
        report.add(Row("(2) replace commit of v2.parquet: wall time", fmt_s(t_rep),
                       f"full write {fmt_s(base_write2)}", f"{t_rep / base_write2:.2f}x", "<= 1.5x",
                       verdict(t_rep <= 1.5 * base_write2)))
        report.add(Row("(2) replace commit: bytes written; peak RSS (info)",
                       fmt_b(rep["runs"][0]["result"]["bytes_written"]), f"peak RSS {fmt_b(rep['peak_rss_max'])}",
                       "", "-", "info"))

        # ---------------- (3) diffs, paired with DuckDB ----------------
        def registry_diff(home: Path, a: str, b: str) -> SelfTimed:
            with Registry.open(home) as reg:  # fresh context: no in-process index memo; opening is not timed
                t0 = time.perf_counter()
                result = reg.diff(f"{DATASET}@{a}", f"{DATASET}@{b}")
                return SelfTimed(time.perf_counter() - t0, result)

        def diff_case(key: str, label: str, home: Path, a: str, b: str, expect: tuple[int, int, int],
                      target_fraction: float, target_text: str) -> None:
            log(f"registry (3): diff {label} (interleaved with the DuckDB diff)")

            def check(d: Any) -> None:
                got = (d.added, d.removed, d.changed)
                assert got == expect, (label, got, expect)

            m = paired(reps, lambda: duckdb_diff(v1_path, v2_path), lambda: registry_diff(home, a, b), check)
            raw[key] = {**m, "added_removed_changed": expect}
            run_errors.extend(f"diff {label}: {e}" for e in m["errors"])
            t, base = m["registry_s"], m["baseline_s"]
            if t is None:
                report.add(Row(f"(3) diff {label}", "ERROR", f"DuckDB {fmt_s(base)}", "", target_text, "FAIL"))
                return
            report.add(Row(f"(3) diff {label}", fmt_s(t), f"DuckDB {fmt_s(base)}",
                           f"{100 * t / base:.2f}%" if target_fraction < 1 else f"{t / base:.2f}x",
                           target_text, verdict(t <= target_fraction * base)))
            profiled_extra(key, lambda: registry_diff(home, a, b))

        def forced_index_path(fn: Callable[[], None], whole: bool = False) -> None:
            """Run ``fn`` with the history walk off (as for two branches); ``whole``: the shared-base path off
            too, so both whole indexes are compared (as for snapshots on different bases)."""
            needed = ["PATH_LIMIT_FRACTION"] + (["_above_shared_base"] if whole else [])
            if not all(hasattr(diff_module, name) for name in needed):
                report.notes.append(f"registry.snapshots.diff lacks {needed}; the forced-path diffs were skipped.")
                return
            saved = {name: getattr(diff_module, name) for name in needed}
            diff_module.PATH_LIMIT_FRACTION = 0.0
            if whole:
                diff_module._above_shared_base = lambda *_readers: None
            try:
                fn()
            finally:
                for name, value in saved.items():
                    setattr(diff_module, name, value)

        diff_case("diff_v1_v2", "v1 -> v2 (upsert history)", home1, v1_id, v2_id, (ADDED, 0, RELABELED),
                  0.02, "<= 2% of DuckDB")
        diff_case("diff_v1_v2_replace", "v1 -> v2 (replace-mode v2, home2)", home2, v1b_id, v2b_id,
                  (ADDED, 0, RELABELED), 1.2, "<= 1.2x DuckDB")
        diff_case("diff_v2_v1", "v2 -> v1 (reverse direction)", home1, v2_id, v1_id, (0, ADDED, RELABELED),
                  1.2, "<= 1.2x DuckDB")
        forced_index_path(lambda: diff_case(
            "diff_v1_v2_above_base", "v1 -> v2 as branches (no history walk: the upper layers above the shared "
            "base)", home1, v1_id, v2_id, (ADDED, 0, RELABELED), 1.2, "<= 1.2x DuckDB"))
        forced_index_path(lambda: diff_case(
            "diff_v1_v2_index_path", "v1 -> v2 via whole-index compare (no history walk, no shared base)", home1,
            v1_id, v2_id, (ADDED, 0, RELABELED), 1.2, "<= 1.2x DuckDB"), whole=True)

        # ---------------- (4) reads, paired with pyarrow ----------------
        def registry_read(home: Path, ref: str) -> SelfTimed:
            with Registry.open(home) as reg:
                t0 = time.perf_counter()
                table = reg.read(f"{DATASET}@{ref}")
                return SelfTimed(time.perf_counter() - t0, table)

        def read_case(key: str, label: str, home: Path, ref: str, rows: int, hist: np.ndarray, info: bool) -> None:
            log(f"registry: read {label} (interleaved with the pyarrow read)")

            def check(t: pa.Table) -> None:
                assert t.num_rows == rows, (label, t.num_rows, rows)
                got = np.zeros(N_CLASSES, np.int64)
                for item in pc.value_counts(t.column("label")).to_pylist():
                    got[int(item["values"].split("_")[1])] = item["counts"]
                assert np.array_equal(got, hist), (label, got, hist)

            m = paired(reps, lambda: pq.read_table(v2_path), lambda: registry_read(home, ref), check)
            raw[key] = m
            run_errors.extend(f"read {label}: {e}" for e in m["errors"])
            t, base = m["registry_s"], m["baseline_s"]
            prefix = "info: " if info else ""
            if t is None:
                report.add(Row(f"read {label}", "ERROR", f"pyarrow read {fmt_s(base)}", "", ">= 0.7x speed",
                               prefix + "FAIL"))
                return
            report.add(Row(f"read {label}", fmt_s(t), f"pyarrow read {fmt_s(base)}", f"{base / t:.2f}x speed",
                           ">= 0.7x speed", prefix + verdict(t <= base / 0.7)))
            profiled_extra(key, lambda: registry_read(home, ref))

        read_case("read_v1", "v1 (single layer)", home1, v1_id, n,
                  np.bincount(labels_v1[:n], minlength=N_CLASSES), info=True)
        read_case("read_v2", "(4) v2 (base + 1 upsert layer)", home1, v2_id, n + ADDED,
                  np.bincount(labels_v2[:n + ADDED], minlength=N_CLASSES), info=False)

        # ---------------- (5) 50 incremental commits ----------------
        log(f"registry (5): {INCREMENTAL_COMMITS} incremental upsert commits of {INCREMENTAL_RELABEL:,} relabels "
            f"+ {INCREMENTAL_ADD} new rows (in-process, one Registry)")
        current = labels_v2.copy()
        n_cur = n + ADDED
        snapshots = [v2_id]
        inc: list[dict[str, Any]] = []
        failures: list[str] = []
        # Untimed, as before every other timed commit here: the commit path's modules load lazily (30-80 ms
        # once per process), which is a process's start-up, not a spike of the chain.
        raw["incremental_warm_up_s"] = warm_up(Registry, data.table(np.arange(10), current), "upsert")
        with Registry.open(home1) as reg:
            max_layers = reg.ctx.settings.compaction.max_layers
            for j in range(INCREMENTAL_COMMITS):
                idx = np.sort(rng.choice(n_cur, INCREMENTAL_RELABEL, replace=False))
                relabel(current, idx, rng)
                new = np.arange(n_cur, n_cur + INCREMENTAL_ADD)
                n_cur += INCREMENTAL_ADD
                table = data.table(np.concatenate([idx, new]), current)
                entry: dict[str, Any] = {"commit": j + 1}
                gc.collect()
                t0 = time.perf_counter()
                try:
                    result = reg.commit(DATASET, table, mode="upsert", message=f"inc {j}")
                except Exception as exc:  # noqa: BLE001 - recorded and reported
                    entry["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
                    failures.append(f"incremental commit {j + 1} raised {entry['error']}")
                    inc.append(entry)
                    break
                entry["seconds"] = time.perf_counter() - t0
                assert (result.added, result.changed) == (INCREMENTAL_ADD, INCREMENTAL_RELABEL)
                snapshots.append(result.snapshot_id)
                entry["bytes_written"] = result.bytes_written
                # Compaction runs outside the commit, as the serve worker or `registry compact --auto` would.
                seconds, done = timed(lambda: reg.compact_auto([DATASET]))
                entry["compaction_s"] = seconds
                entry["compacted"] = [r.to_dict() for r in done]
                inc.append(entry)
        head_id = snapshots[-1]
        ok_times = [c["seconds"] for c in inc if "error" not in c]
        raw["incremental_commits"] = inc
        compactions = [c["compaction_s"] for c in inc if c.get("compacted")]
        median_commit = statistics.median(ok_times)
        report.add(Row(f"(5) {INCREMENTAL_COMMITS} incremental upserts (info)",
                       f"median {fmt_s(median_commit)}, max {fmt_s(max(ok_times))}",
                       f"full write {fmt_s(raw['baseline_write']['median_s'])}",
                       f"median {100 * median_commit / raw['baseline_write']['median_s']:.2f}%",
                       "-", "info"))
        report.add(Row("(5) no commit spikes: slowest commit / median commit", f"{fmt_s(max(ok_times))}",
                       f"median {fmt_s(median_commit)}", f"{max(ok_times) / median_commit:.2f}x", "<= 3x",
                       verdict(max(ok_times) <= 3 * median_commit)))
        report.add(Row("(5) out-of-band compactions (compact_auto after each commit; info)",
                       f"{len(compactions)} ran" + (f", median {fmt_s(statistics.median(compactions))}, max "
                                                    f"{fmt_s(max(compactions))}" if compactions else ""),
                       "", "", "-", "info"))
        errors = [c for c in inc if "error" in c]
        report.add(Row(f"(5) {INCREMENTAL_COMMITS} incremental upserts complete without error",
                       f"{len(errors)} raised" + (f" (commit {', '.join(str(c['commit']) for c in errors)}: "
                                                  f"{errors[0]['error'][:120]})" if errors else ""),
                       "", "", "no errors", verdict(not errors)))
        report.notes.extend(failures)
        report.notes.append(f"The {INCREMENTAL_COMMITS} incremental commits run in one process with one open "
                            "Registry (index memo warm), after two untimed 10-row commits in a scratch home that load "
                            "the commit path's modules (as before every other timed commit; the first commit still "
                            "compiles the catalog's statements for this home). Commits never compact; after each one "
                            "the benchmark runs "
                            f"the compaction policy (Registry.compact_auto, REGISTRY_MAX_LAYERS={max_layers}) as "
                            "the serve worker or cron would, timed separately.")

        read_case("read_head", f"(5) head after {INCREMENTAL_COMMITS} incremental commits", home1, head_id, n_cur,
                  np.bincount(current[:n_cur], minlength=N_CLASSES), info=False)

        far_v2 = (INCREMENTAL_COMMITS * INCREMENTAL_ADD, 0, int((current[:n + ADDED] != labels_v2[:n + ADDED]).sum()))
        far_v1 = (ADDED + INCREMENTAL_COMMITS * INCREMENTAL_ADD, 0, int((current[:n] != labels_v1[:n]).sum()))
        diff_case("diff_v2_head", f"v2 -> head ({INCREMENTAL_COMMITS} commits apart)", home1, v2_id, head_id, far_v2,
                  1.2, "<= 1.2x DuckDB")
        diff_case("diff_v1_head", f"v1 -> head ({INCREMENTAL_COMMITS + 1} commits apart)", home1, v1_id, head_id,
                  far_v1, 1.2, "<= 1.2x DuckDB")
        forced_index_path(lambda: diff_case(
            "diff_v2_head_above_base", "v2 -> head as branches (no history walk)", home1, v2_id, head_id,
            far_v2, 1.2, "<= 1.2x DuckDB"))
        forced_index_path(lambda: diff_case(
            "diff_v2_head_index_path", "v2 -> head via whole-index compare (no history walk, no shared base)",
            home1, v2_id, head_id, far_v2, 1.2, "<= 1.2x DuckDB"), whole=True)

        report.add(Row("diffs and reads complete without error", f"{len(run_errors)} raised"
                       + (f" (e.g. {run_errors[0][:160]})" if run_errors else ""), "", "", "no errors",
                       verdict(not run_errors)))
        raw["run_errors"] = run_errors

        report.notes.append("'as branches' forces the path that non-ancestor and large-change pairs take "
                            "(registry.snapshots.diff.PATH_LIMIT_FRACTION set to 0 inside the benchmark process "
                            "only): two snapshots on one base layer are compared by the ids their upper layers "
                            "hold. 'via whole-index compare' also turns that off "
                            "(registry.snapshots.diff._above_shared_base), the path of snapshots on different "
                            "bases (after a base rewrite, or a schema change).")
        report.notes.append(f"Each registry figure is a median of {reps} runs and is compared with a baseline "
                            "measured interleaved with it (diffs and reads alternate with the DuckDB diff / "
                            "pyarrow read; each commit run follows a fresh full write), so both see the same "
                            "machine load. Commits run in fresh processes (which hide pandas from pyarrow as "
                            "the `registry` command does: registry.arrow_setup; each first makes two 10-row commits "
                            "in a scratch home, untimed, so the commit's lazily imported modules are loaded), the "
                            "first on the real home and the "
                            "others on copies of it taken beforehand; diffs and reads open a fresh Registry per "
                            "run (no in-process index memo; opening it is not timed, only reg.diff / reg.read). "
                            "Standalone baseline medians: write "
                            f"{fmt_s(raw['baseline_write']['median_s'])}, DuckDB diff "
                            f"{fmt_s(raw['baseline_duckdb_diff']['median_s'])}, read "
                            f"{fmt_s(raw['baseline_read']['median_s'])}.")
        report.notes.append("Every timed operation sees a warm OS page cache (inputs and objects were just "
                            "written or copied; an untimed warm-up precedes every interleaved series).")
        report.notes.append("Baseline write time is pq.write_table alone (no fsync); registry commits fsync "
                            "their objects. fsync of the baseline file after writing took "
                            f"{fmt_s(statistics.median(fsync_times))} (median).")
        report.notes.append("Peak RSS is the high-water RSS (VmHWM, reset just before the commit call; "
                            "cross-checked by 2 ms psutil sampling) of the fresh child process that ran the "
                            "commit, the largest over the runs, so it includes what that process already held "
                            "(imports, open home, the 5,000-row input); growth is that peak minus RSS just "
                            "before the commit call. ru_maxrss is not used: Linux carries it over from the "
                            "forking parent.")
    finally:
        if args.keep:
            log(f"kept scratch dir {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)

    report.raw["loadavg_at_end"] = os.getloadavg()
    write_report(report, args.out, n)


def write_report(report: Report, out: Path, n: int) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    env = report.raw["env"]
    lines = [
        f"# Registry core benchmark: {n:,} rows",
        "",
        f"- When: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}",
        f"- Code: `{env['registry_module']}` at `{env.get('git_head')}`"
        + (" (registry/ had uncommitted changes)" if env.get("registry_dirty") else ""),
        f"- Machine: {env['cpus']} CPUs, {env['memory_gib']} GiB, {env['platform']}; load average "
        f"{env['loadavg_at_start'][0]:.2f} at start, {report.raw['loadavg_at_end'][0]:.2f} at end",
        f"- Python {env['python']}, pyarrow {env['pyarrow']}, numpy {env['numpy']}, duckdb {env['duckdb']}",
        f"- Inputs: v1.parquet {fmt_b(report.raw['inputs']['v1_bytes'])}, "
        f"v2.parquet {fmt_b(report.raw['inputs']['v2_bytes'])} (zstd)",
        "",
        "| Measurement | Registry | Baseline | Ratio | Target | Result |",
        "|---|---|---|---|---|---|",
    ]
    lines += [f"| {r.name} | {r.registry} | {r.baseline} | {r.ratio} | {r.target} | {r.result} |" for r in report.rows]
    judged = [r for r in report.rows if r.result in ("PASS", "FAIL")]
    failed = [r for r in judged if r.result == "FAIL"]
    lines += ["", f"**{len(judged) - len(failed)} of {len(judged)} targets met.**", "", "Notes:", ""]
    lines += [f"- {note}" for note in report.notes]
    out.write_text("\n".join(lines) + "\n")
    json_path = out.with_suffix(".json")
    report.raw["table"] = [r.__dict__ for r in report.rows]
    json_path.write_text(json.dumps(report.raw, indent=2, default=str) + "\n")
    print("\n" + "\n".join(lines))
    print(f"\nwrote {out} and {json_path}")


if __name__ == "__main__":
    main()
