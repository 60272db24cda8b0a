#!/usr/bin/env python
"""CLI start-up benchmark: every read-only ``registry`` command on a small registry, as whole processes.

Run ``python bench/cli_bench.py [--reps 5] [--out bench/results/cli.md]``. It builds a small registry
in a temporary folder with the CLI itself (a 200-row labels dataset with three snapshots and a tag, two
Label Studio imports, a QA policy and a gate result), then runs each read-only command ``--reps``
times, interleaved with the baseline ``python -c pass`` (the same interpreter), and reports the
median wall time of each, the baseline's, and the median of the run-by-run ratios to the baseline.

Then it does the same with a preloaded process (``registry preload start``, its socket in the temporary
folder) and checks that process's count: every timed run went through it.

Goal (issue 21): every read-only command on a small registry <= 0.3 s wall.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL_SECONDS = 0.3
ROOT = Path(__file__).resolve().parent.parent
READ_ONLY = [
    ["log", "signs"], ["log", "signs", "-n", "1", "--oneline"], ["show", "signs@v1"], ["schema", "signs"],
    ["diff", "signs@v1", "main"], ["diff", "signs@v1", "main", "--quiet"], ["dataset", "list"],
    ["export", "signs@v1", "-", "--format", "csv"], ["gate", "check", "signs"], ["policy", "show", "signs"],
    ["history", "review", "s3://signs/1.jpg"], ["blame", "review"], ["diff", "review@v1", "main", "--labels"],
    ["audit", "log"], ["audit", "verify"], ["lineage", "signs@main"], ["query", "SELECT count(*) FROM snapshots"],
    ["verify"], ["token", "list"], ["lineage", "status"], ["storage", "info"],
]


def _registry(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "registry.cli.main", *args], cwd=cwd, env=env,
                          capture_output=True, timeout=600)


def build(folder: Path, env: dict[str, str]) -> None:
    """The small registry: signs (3 snapshots, tag v1) and review (two Label Studio imports, tag v1)."""
    sys.path.insert(0, str(ROOT))
    from tests.support import provenance_fixtures as lsx

    rows = "\n".join(f"s{i:04d},{['stop', 'yield', 'merge'][i % 3]}" for i in range(200))
    (folder / "v1.csv").write_text("sample_id,label\n" + rows + "\n")
    (folder / "v2.csv").write_text("sample_id,label\n" + "\n".join(f"s{i:04d},stop" for i in range(0, 200, 7)) + "\n")
    (folder / "policy.yaml").write_text("checks:\n  - check: row_count\n    min: 10\n")
    first, second = lsx.write(folder / "ls1.json", lsx.export_v1()), lsx.write(folder / "ls2.json", lsx.export_v2())
    steps = [["init"], ["dataset", "create", "signs", "--key", "sample_id"], ["commit", "signs", "v1.csv", "-m", "v1"],
             ["tag", "signs@main", "v1"], ["commit", "signs", "v2.csv", "--mode", "upsert", "-m", "relabel"],
             ["policy", "set", "signs", "policy.yaml"], ["qa", "run", "signs"],
             ["import", "label-studio", "review", str(first), "--key", "image"],
             ["tag", "review@main", "v1"],
             ["import", "label-studio", "review", str(second), "--key", "image"]]
    for step in steps:
        done = _registry(step, env, folder)
        if done.returncode != 0:
            sys.exit(f"set-up step {' '.join(step)} failed: {done.stderr.decode()}")


def _wall(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (user + system, the kernel's account of the finished child) and exit code."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    # A blocking wait: subprocess's wait with a timeout polls with sleeps growing to 50 ms, which quantised
    # every earlier figure of this benchmark to a multiple of about 50 ms.
    done = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    done.wait()
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return wall, cpu, done.returncode


def measure(reps: int, folder: Path, env: dict[str, str]) -> list[dict[str, object]]:
    """Each command as users run it (the ``registry`` entry point), ``reps`` times, paired with the baseline."""
    baseline_argv = [sys.executable, "-c", "pass"]
    results = []
    for args in READ_ONLY:
        argv = [sys.executable, "-m", "registry.cli.launch", *args]
        _wall(argv, env, folder)  # warm-up: page cache, derived caches
        runs, bases, cpus, base_cpus, codes = [], [], [], [], set()
        for _ in range(reps):
            base, base_cpu, _ = _wall(baseline_argv, env, folder)
            wall, cpu, code = _wall(argv, env, folder)
            bases.append(base)
            base_cpus.append(base_cpu)
            runs.append(wall)
            cpus.append(cpu)
            codes.add(code)
        median = statistics.median(runs)
        results.append({"command": "registry " + " ".join(args), "median_s": round(median, 3),
                        "min_s": round(min(runs), 3), "max_s": round(max(runs), 3),
                        "baseline_median_s": round(statistics.median(bases), 3),
                        "cpu_median_s": round(statistics.median(cpus), 3),
                        "baseline_cpu_median_s": round(statistics.median(base_cpus), 3),
                        "ratio": round(statistics.median(r / b for r, b in zip(runs, bases, strict=True)), 1),
                        "exit_codes": sorted(codes),
                        "meets_goal": median <= GOAL_SECONDS})
        print(f"{results[-1]['command']:<58} {median:6.3f} s  ({results[-1]['ratio']}x python -c pass), "
              f"cpu {results[-1]['cpu_median_s']:.3f} s", flush=True)
    return results


def _preload(action: str, env: dict[str, str], folder: Path) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-m", "registry.cli.main", "preload", action, "--json"], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=120)
    if action != "status" and done.returncode != 0:
        sys.exit(f"registry preload {action} failed: {done.stderr}")
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def measure_preloaded(reps: int, folder: Path,
                      env: dict[str, str]) -> tuple[list[dict[str, object]], dict[str, object]]:
    """The same commands handed to a preloaded process (``registry preload start``), and that process's status
    (its count proves every run went through it; its resident memory is the price)."""
    env = {**env, "REGISTRY_PRELOAD_SOCKET": str(folder / "preload.sock")}
    env.pop("REGISTRY_PRELOAD", None)
    _preload("start", env, folder)
    try:
        results = measure(reps, folder, env)
        status = _preload("status", env, folder)
    finally:
        _preload("stop", env, folder)
    expected = len(READ_ONLY) * (reps + 1)
    if status["commands_served"] != expected:
        sys.exit(f"the preloaded process served {status['commands_served']} commands, not {expected}: some ran alone")
    return results, status


def _table(results: list[dict[str, object]]) -> list[str]:
    lines = ["| command | median s | min s | max s | `python -c pass` median s | x baseline | median cpu s | "
             "`python -c pass` cpu s | meets goal |",
             "|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| `{r['command']}` | {r['median_s']} | {r['min_s']} | {r['max_s']} | {r['baseline_median_s']} | "
              f"{r['ratio']} | {r['cpu_median_s']} | {r['baseline_cpu_median_s']} | "
              f"{'yes' if r['meets_goal'] else 'no'} |" for r in results]
    met = sum(bool(r["meets_goal"]) for r in results)
    return [*lines, "", f"{met} of {len(results)} commands meet the goal."]


def report(alone: list[dict[str, object]], preloaded: list[dict[str, object]], status: dict[str, object], reps: int,
           out: Path) -> None:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [f"# CLI start-up: read-only commands on a small registry ({reps} runs each, median wall)", "",
             f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, load average "
             f"at the end {load} (a busy shared machine inflates every figure; the ratio to the baseline, "
             "measured run by run (median of the pairs), is the steadier one). "
             f"Goal: <= {GOAL_SECONDS} s wall. Baseline: `python -c pass`, interleaved run by run. Each command runs "
             "as users run it, through the `registry` entry point (`python -m registry.cli.launch`).", "",
             _bytecode_note(), "",
             "The CPU columns (user + system seconds of the finished process) move much less with the load; with "
             "a preloaded process they count only the client, not the forked child that does the work.", "",
             "## Preloaded (started by the first command at a terminal, or `registry preload start`)", "",
             f"The preloaded process held {int(status['rss_bytes']) >> 20} MiB resident after serving "
             f"{status['commands_served']} commands (every run below went through it: the benchmark checks its count).",
             "", *_table(preloaded), "",
             "## Each command in its own process (the default, `REGISTRY_PRELOAD=off` here)", "", *_table(alone)]
    out.write_text("\n".join(lines) + "\n")
    out.with_suffix(".json").write_text(json.dumps({"alone": alone, "preloaded": preloaded, "preload_status": status},
                                                   indent=2) + "\n")


def _bytecode_note() -> str:
    """Whether each process compiled the registry's modules from source (this environment writes no ``.pyc``)."""
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        return ("Bytecode: `PYTHONDONTWRITEBYTECODE` is set here, and the package is an editable install without "
                "`.pyc` files, so every process compiles each `registry` module it imports from source; an "
                "installed wheel (or `python -m compileall registry`) would not pay that.")
    return "Bytecode: `.pyc` files are written and reused, as an installed package's are."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "cli.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cli-bench-") as tmp:
        folder = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
        env.update({"REGISTRY_HOME": str(folder / ".registry"), "REGISTRY_ACTOR": "bench",
                    "OPENLINEAGE_DISABLED": "true"})
        build(folder, env)
        print("each command in its own process:", flush=True)
        alone = measure(args.reps, folder, {**env, "REGISTRY_PRELOAD": "off"})
        print("preloaded:", flush=True)
        preloaded, status = measure_preloaded(args.reps, folder, env)
    report(alone, preloaded, status, args.reps, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
