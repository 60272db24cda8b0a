"""Shared pieces of the peer benchmark: the inputs every tool gets, and one measured step in a child.

The data generator, the relabel rule, RSS sampling and the peak-RSS reset come from
``bench/core_bench.py`` (imported, not copied), so this benchmark's table is the core benchmark's.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

BENCH_DIR = Path(__file__).resolve().parents[1]
if str(BENCH_DIR) not in sys.path:
    sys.path.append(str(BENCH_DIR))  # appended: an exported registry copy on PYTHONPATH still wins

import core_bench  # noqa: E402  (bench/core_bench.py: generator, relabel, RSS helpers, formatting)

KEY = core_bench.KEY
LABELS = core_bench.LABELS
RUN_PY = Path(__file__).resolve().parent / "run.py"

Work = Callable[[], dict[str, Any]]


@dataclass(frozen=True)
class Inputs:
    """Paths of the generated data (written once per run) and the counts every diff must report."""

    scratch: str
    rows: int
    versions: int
    v1: str  # full v1 table, zstd Parquet
    v2: str  # full v2 table (v1 + 2,000 relabels + 3,000 new rows)
    changes_v2: str  # the 5,000 changed rows
    chain_dir: str  # changes_001.parquet ... : the rows relabeled by each later version
    expected_v2: dict[str, int]  # added / removed / changed from v1 to v2

    def chain_changes(self) -> list[Path]:
        return [Path(self.chain_dir) / f"changes_{k:03d}.parquet" for k in range(1, self.versions + 1)]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Inputs:
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def generate_inputs(scratch: Path, rows: int, versions: int, seed: int) -> tuple[Inputs, dict[str, Any]]:
    """Write v1, v2, the v2 change set and ``versions`` change sets each relabeling 0.1% of the rows."""
    rng = np.random.default_rng(seed)
    data, labels = core_bench.generate(rows, rng)
    labels_v1 = labels.copy()
    relabeled = np.sort(rng.choice(rows, core_bench.RELABELED, replace=False))
    core_bench.relabel(labels, relabeled, rng)
    n2 = rows + core_bench.ADDED
    paths = {name: scratch / f"{name}.parquet" for name in ("v1", "v2", "changes_v2")}
    pq.write_table(data.table(np.arange(rows), labels_v1), paths["v1"], compression="zstd")
    pq.write_table(data.table(np.arange(n2), labels), paths["v2"], compression="zstd")
    changed_idx = np.concatenate([relabeled, np.arange(rows, n2)])
    pq.write_table(data.table(changed_idx, labels), paths["changes_v2"], compression="zstd")
    chain_dir = scratch / "chain"
    chain_dir.mkdir()
    per_version = max(1, rows // 1000)  # 0.1% of the rows
    for k in range(1, versions + 1):
        idx = np.sort(rng.choice(n2, per_version, replace=False))
        core_bench.relabel(labels, idx, rng)
        pq.write_table(data.table(idx, labels), chain_dir / f"changes_{k:03d}.parquet", compression="zstd")
    inputs = Inputs(str(scratch), rows, versions, str(paths["v1"]), str(paths["v2"]), str(paths["changes_v2"]),
                    str(chain_dir), {"added": core_bench.ADDED, "removed": 0, "changed": core_bench.RELABELED})
    info = {"v1_bytes": paths["v1"].stat().st_size, "v2_bytes": paths["v2"].stat().st_size,
            "rows_relabeled_per_version": per_version, "final_labels_sha": _labels_digest(labels[:n2])}
    return inputs, info


def _labels_digest(labels: np.ndarray) -> str:
    import hashlib

    return hashlib.sha256(labels.tobytes()).hexdigest()[:16]


def head_digest(table: pa.Table) -> str:
    """Digest of the label of every row, by row id: equal to the generator's ``final_labels_sha`` when
    a tool's head after the chain holds exactly the intended labels (row order does not matter)."""
    pos = pc.cast(pc.utf8_slice_codeunits(table.column(KEY), 1), pa.int64()).to_numpy()
    codes = np.full(int(pos.max()) + 1, -1, np.int8)
    codes[pos] = pc.index_in(table.column("label"), value_set=LABELS).to_numpy(zero_copy_only=False)
    return _labels_digest(codes)


def full_versions(inputs: Inputs) -> Iterator[tuple[int, pa.Table]]:
    """The full table of each chain version (3, 4, ...), built from v2 by applying each change set.

    Rows are kept in v2's order (row ``sX`` sits at position X), as a user rewriting the file would.
    """
    table = pq.read_table(inputs.v2)
    codes = pc.index_in(table.column("label"), value_set=LABELS).to_numpy(zero_copy_only=False).astype(np.int8)
    for k, path in enumerate(inputs.chain_changes(), start=3):
        ch = pq.read_table(path)
        pos = pc.cast(pc.utf8_slice_codeunits(ch.column(KEY), 1), pa.int64()).to_numpy()
        codes[pos] = pc.index_in(ch.column("label"), value_set=LABELS).to_numpy(zero_copy_only=False)
        table = table.set_column(table.schema.get_field_index("label"), "label", LABELS.take(pa.array(codes)))
        yield k, table


def dir_bytes(path: Path, exclude: tuple[str, ...] = ()) -> int:
    """Disk space allocated to the regular files under ``path``, as ``du`` counts it (sparse files by
    their blocks, hard links once), minus the ``exclude``d top-level names."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for root, dirs, files in os.walk(path):
        if Path(root) == path:
            dirs[:] = [d for d in dirs if d not in exclude]
            files = [f for f in files if f not in exclude]
        for name in files:
            st = os.lstat(os.path.join(root, name))
            if (st.st_dev, st.st_ino) in seen or not os.path.isfile(os.path.join(root, name)):
                continue
            seen.add((st.st_dev, st.st_ino))
            total += st.st_blocks * 512
    return total


def measure(work: Work) -> dict[str, Any]:
    """Run ``work`` once: wall time, CPU time, peak RSS of this process and of any program it ran.

    Peak RSS is VmHWM reset right before the call (cross-checked by 2 ms psutil sampling); a
    subprocess the step runs (git, a CLI) is covered by RUSAGE_CHILDREN's largest ``ru_maxrss``.
    """
    import resource

    import psutil

    gc.collect()
    reset = core_bench._reset_peak_rss()
    rss_before = psutil.Process().memory_info().rss
    cpu0 = time.process_time()
    with core_bench.RssSampler() as sampler:
        t0 = time.perf_counter()
        out = work()
        seconds = time.perf_counter() - t0
    hwm = core_bench._vm_hwm()
    peak = max(hwm, sampler.peak) if hwm is not None else sampler.peak
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    return {"seconds": seconds, "cpu_seconds": time.process_time() - cpu0, "rss_before": rss_before,
            "peak_rss": max(peak, children), "peak_rss_self": peak, "peak_rss_children": children,
            "vm_hwm_reset": reset, "out": out}


def run_step(tool: str, step: str, workdir: Path, inputs: Inputs, timeout: float | None = None) -> dict[str, Any]:
    """Run ``tool``'s ``step`` in a fresh interpreter (``run.py --child``) and return its measurement."""
    spec = {"tool": tool, "step": step, "dir": str(workdir), "inputs": inputs.to_dict()}
    try:
        proc = subprocess.run([sys.executable, str(RUN_PY), "--child", json.dumps(spec)], capture_output=True,
                              text=True, env=os.environ.copy(), timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise StepFailed(f"{tool} {step}: no answer within {timeout:.0f} s") from exc
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines() or ["(no output)"]
        raise StepFailed(f"{tool} {step} exited {proc.returncode}: {lines[-1]} (traceback tail: "
                         + " | ".join(line.strip() for line in lines[-8:-1]) + ")")
    return json.loads(proc.stdout.strip().splitlines()[-1])


class StepFailed(RuntimeError):
    """A tool's step failed or timed out in its child process; the report says so and goes on."""


class Tool:
    """One versioning tool driven through the benchmark's steps.

    Each step method runs in its own child process: it does its untimed preparation (opening the
    repository, loading the input, staging a file) and returns the ``Work`` closure that is timed.
    """

    name = ""
    label = ""
    diff_level = "row"  # "row": added / removed / changed rows; "file": which files changed

    def __init__(self, workdir: Path, inputs: Inputs) -> None:
        self.dir = workdir
        self.inputs = inputs

    def init_v1(self) -> Work:
        """Create the repository and commit v1 (timed for information)."""
        raise NotImplementedError

    def commit_v2(self) -> Work:
        """Commit the relabel round (2,000 relabels + 3,000 new rows) on top of v1."""
        raise NotImplementedError

    def diff_v1_v2(self) -> Work:
        """Diff v1 -> v2; the closure returns ``added``, ``removed``, ``changed`` (rows or files)."""
        raise NotImplementedError

    def label_diff_v1_v2(self) -> Work:
        """Which labels changed from v1 to v2, by key (issue 19 compares the registry's label diff with Delta
        Lake's change data feed). A peer's row diff already reads the key and label columns, so it is its
        label diff too; the registry answers with ``Registry.label_diff``."""
        return self.diff_v1_v2()

    def read_v1(self) -> Work:
        """Read v1 into Arrow after v2 exists; the closure returns ``rows``."""
        raise NotImplementedError

    def chain(self) -> Work:
        """Commit every chain version in one process; the closure returns ``per_version_s``."""
        raise NotImplementedError

    def head_table(self) -> pa.Table:
        """The newest version, read back after the chain (a correctness check, not timed)."""
        raise NotImplementedError

    def head(self) -> Work:
        def work() -> dict[str, Any]:
            table = self.head_table()
            return {"rows": table.num_rows, "labels_sha": head_digest(table)}

        return work

    def disk(self) -> dict[str, Any]:
        """Bytes on disk: ``total`` (everything under the tool's folder) and ``store`` (without a
        working copy or a derivable cache), with ``store_what`` saying what ``store`` leaves out."""
        total = dir_bytes(self.dir)
        return {"total": total, "store": total, "store_what": "everything"}


class MergeTool(Tool):
    """A table format whose commit is a keyed merge of the changed rows (Delta Lake, Lance): subclasses
    give ``_write`` (create the table from v1) and ``_merge`` (upsert the changes)."""

    def _write(self, table: pa.Table) -> None:
        raise NotImplementedError

    def _merge(self, changes: pa.Table) -> dict[str, Any]:
        raise NotImplementedError

    def init_v1(self) -> Work:
        table = pq.read_table(self.inputs.v1)

        def work() -> dict[str, Any]:
            self._write(table)
            return {}

        return work

    library = ""
    """The peer's Python module, imported before the clock starts (as the registry's commit path is)."""

    def commit_v2(self) -> Work:
        changes = pq.read_table(self.inputs.changes_v2)
        if self.library:
            importlib.import_module(self.library)
        return lambda: self._merge(changes)

    def chain(self) -> Work:
        def steps() -> Any:
            for path in self.inputs.chain_changes():
                changes = pq.read_table(path)
                yield lambda changes=changes: self._merge(changes)

        return lambda: timed_loop(steps(), self.dir)


def timed_loop(steps: Iterator[Callable[[], Any]], folder: Path) -> dict[str, Any]:
    """Run each chain step, timing each one alone; between steps (untimed) count ``folder``'s bytes,
    so the growth per version is on record."""
    per_version: list[float] = []
    disk_after: list[int] = []
    for step in steps:
        t0 = time.perf_counter()
        step()
        per_version.append(time.perf_counter() - t0)
        disk_after.append(dir_bytes(folder))
    return {"versions": len(per_version), "per_version_s": per_version, "sum_s": sum(per_version),
            "disk_after": disk_after}
