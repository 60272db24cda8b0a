#!/usr/bin/env python
"""Side-by-side benchmark of the registry against Delta Lake, DVC, Oxen and DuckDB + Parquet files.

Run ``python bench/peers/run.py [--rows 10000000] [--versions 100] [--reps 3] [--out bench/results/peers.md]``
in a venv with ``pip install -e . -r bench/peers/requirements.txt``; see ``bench/peers/README.md``.

The data is generated once (bench/core_bench.py's labels table), then every tool runs the same steps
on it, one tool after the other, each step in a fresh child process (this script with ``--child``):
init (v1), commit of v2 (the relabel round), diff v1 -> v2, read of v1 after v2 exists, and a chain
of ``--versions`` commits each relabeling 0.1% of the rows, after which the bytes on disk are counted.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness import Inputs, StepFailed, Tool, core_bench, dir_bytes, generate_inputs, measure, run_step

# name -> (module, class, the PyPI package it needs, the import that proves it is installed)
TOOLS: dict[str, tuple[str, str, str, str]] = {
    "registry": ("tool_registry", "RegistryTool", "dataset-ledger", "registry"),
    "registry-nofull": ("tool_registry", "RegistryNoFullCompactionTool", "dataset-ledger", "registry"),
    "delta": ("tool_delta", "DeltaTool", "deltalake", "deltalake"),
    "dvc": ("tool_dvc", "DvcTool", "dvc", "dvc"),
    "oxen": ("tool_oxen", "OxenTool", "oxenai", "oxen"),
    "duckdb": ("tool_duckdb", "DuckDBTool", "duckdb", "duckdb"),
    "lance": ("tool_lance", "LanceTool", "pylance", "lance"),
}
log = core_bench.log


def make_tool(name: str, workdir: Path, inputs: Inputs) -> Tool:
    module, cls, _, _ = TOOLS[name]
    tool: Tool = getattr(importlib.import_module(module), cls)(workdir, inputs)
    return tool


def child_main(spec: dict[str, Any]) -> None:
    """One step of one tool: untimed preparation, then the measured closure; prints one JSON line."""
    tool = make_tool(spec["tool"], Path(spec["dir"]), Inputs.from_dict(spec["inputs"]))
    work = getattr(tool, spec["step"])()
    before = dir_bytes(tool.dir) if tool.dir.exists() else 0
    result = measure(work)
    result["bytes_written"] = dir_bytes(tool.dir) - before
    print(json.dumps(result, default=str))


def package_version(tool: str) -> str | None:
    """The installed version of the tool's package, or None when it is not importable."""
    from importlib import metadata

    _, _, dist, module = TOOLS[tool]
    try:
        importlib.import_module(module)
        return metadata.version(dist)
    except Exception as exc:  # noqa: BLE001 - reported as the reason the tool did not run
        return None if isinstance(exc, ImportError) else f"import failed: {type(exc).__name__}: {exc}"


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    seconds = [r["seconds"] for r in runs]
    return {"median_s": statistics.median(seconds), "runs_s": seconds,
            "peak_rss_max": max(r["peak_rss"] for r in runs),
            "bytes_written_median": statistics.median(r["bytes_written"] for r in runs),
            "out": runs[0]["out"], "runs": runs}


class ToolRun:
    """Drives one tool through every step, recording figures and the first failure."""

    def __init__(self, name: str, root: Path, inputs: Inputs, reps: int, timeout: float | None,
                 warm_up: bool = True) -> None:
        self.name, self.root, self.inputs, self.reps, self.timeout = name, root, inputs, reps, timeout
        self.warm_up = warm_up
        self.base = root / "base"
        self.expected_head = ""
        self.figures: dict[str, Any] = {"errors": {}}

    def step(self, step: str, workdir: Path) -> dict[str, Any]:
        return run_step(self.name, step, workdir, self.inputs, self.timeout)

    def record_error(self, what: str, exc: Exception) -> None:
        self.figures["errors"][what] = str(exc)[:2000]
        log(f"  {self.name} {what} FAILED: {str(exc)[:400]}")

    def run(self) -> dict[str, Any]:
        fig = self.figures
        fig["loadavg_at_start"] = os.getloadavg()
        try:
            self.root.mkdir(parents=True)
            log(f"{self.name}: init v1")
            fig["init_v1"] = self.step("init_v1", self.base)
            self.commit_reps()
        except StepFailed as exc:
            self.record_error("init/commit", exc)
            return fig
        for what, step in (("diff", "diff_v1_v2"), ("label_diff", "label_diff_v1_v2"), ("read", "read_v1")):
            try:
                log(f"{self.name}: {step} x {self.reps}" + (" (+1 warm-up)" if self.warm_up else ""))
                warm = self.step(step, self.base) if self.warm_up else None
                fig[what] = summarize([self.step(step, self.base) for _ in range(self.reps)])
                fig[what]["warm_up"] = warm
            except StepFailed as exc:
                self.record_error(what, exc)
        if self.inputs.versions:
            try:
                log(f"{self.name}: chain of {self.inputs.versions} versions")
                fig["chain"] = self.step("chain", self.base)
                fig["head"] = self.step("head", self.base)["out"]
                fig["head"]["matches"] = fig["head"]["labels_sha"] == self.expected_head
            except StepFailed as exc:
                self.record_error("chain", exc)
        fig["disk"] = make_tool(self.name, self.base, self.inputs).disk()
        fig["loadavg_at_end"] = os.getloadavg()
        return fig

    def commit_reps(self) -> None:
        """Commit v2 ``reps`` times: on the base, then on copies of v1's state taken beforehand."""
        copies = [self.root / f"copy{r}" for r in range(1, self.reps)]
        for copy in copies:
            shutil.copytree(self.base, copy, symlinks=True)
        runs = []
        for target in [self.base, *copies]:
            os.sync()  # the commit's own fsyncs should not wait for the copies' writeback
            log(f"{self.name}: commit v2 on {target.name}")
            runs.append(self.step("commit_v2", target))
            log(f"  {core_bench.fmt_s(runs[-1]['seconds'])}, {core_bench.fmt_b(runs[-1]['bytes_written'])} written")
        for copy in copies:
            shutil.rmtree(copy)
        self.figures["commit"] = summarize(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows in v1 (default 10,000,000)")
    parser.add_argument("--versions", type=int, default=100, help="versions in the chain after v2 (default 100)")
    parser.add_argument("--reps", type=int, default=3, help="runs of commit / diff / read (median; default 3)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/peers.md"),
                        help="Markdown report; .json and .png are written next to it")
    parser.add_argument("--tools", default=",".join(TOOLS), help=f"comma-separated subset of {','.join(TOOLS)}")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--tmp", type=Path, default=None, help="parent folder for the scratch dir")
    parser.add_argument("--keep", action="store_true", help="keep the scratch dir")
    parser.add_argument("--step-timeout", type=float, default=None, help="seconds before a step is given up")
    parser.add_argument("--no-warm-up", action="store_true",
                        help="skip the untimed warm-up run before each diff / read series (smoke tests)")
    parser.add_argument("--render", type=Path, default=None,
                        help="measure nothing: rewrite --out (.md, .png) from this run's saved .json")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(json.loads(args.child))
        return
    from peers_report import write_outputs

    if args.render:
        write_outputs(json.loads(args.render.read_text()), args.out, final=True)
        return
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    unknown = [t for t in tools if t not in TOOLS]
    if unknown or not any(t.startswith("registry") for t in tools):
        parser.error(f"--tools: unknown {unknown}" if unknown else "--tools must include registry or registry-nofull")
    scratch = Path(tempfile.mkdtemp(prefix="peers_bench_", dir=args.tmp))
    raw: dict[str, Any] = {"env": core_bench.environment(), "tools": {}, "versions_installed": {},
                           "params": {"rows": args.rows, "versions": args.versions, "reps": args.reps,
                                      "seed": args.seed, "scratch": str(scratch), "tools": tools,
                                      "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])}}
    try:
        log(f"generating {args.rows:,} rows and {args.versions} chain versions in {scratch}")
        t0 = time.perf_counter()
        inputs, raw["inputs"] = generate_inputs(scratch, args.rows, args.versions, args.seed)
        raw["inputs"]["generate_s"] = time.perf_counter() - t0
        raw["expected_v2"] = inputs.expected_v2
        for name in tools:
            version = raw["versions_installed"][name] = package_version(name)
            if version is None or version.startswith("import failed"):
                reason = version or f"not installed (pip install {TOOLS[name][2]})"
                raw["tools"][name] = {"skipped": reason}
                log(f"{name}: skipped: {reason}")
                continue
            root = scratch / name
            run = ToolRun(name, root, inputs, args.reps, args.step_timeout, warm_up=not args.no_warm_up)
            run.expected_head = raw["inputs"]["final_labels_sha"]
            raw["tools"][name] = run.run()
            if not args.keep:
                shutil.rmtree(root, ignore_errors=True)
            write_outputs(raw, args.out)  # after every tool, so a long run leaves what it measured
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    raw["loadavg_at_end"] = os.getloadavg()
    raw["finished_at"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    write_outputs(raw, args.out, final=True)


if __name__ == "__main__":
    main()
