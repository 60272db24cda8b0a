"""The peer benchmark's outputs: a Markdown table with each peer's ratio to the registry, the raw
figures as JSON, and a PNG chart (matplotlib, Agg backend; skipped with a note when not installed)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness import core_bench

fmt_s, fmt_b = core_bench.fmt_s, core_bench.fmt_b

LABELS = {"registry": "registry", "registry-nofull": "registry, COMPACT_BASE_FRACTION=0", "delta": "Delta Lake",
          "dvc": "DVC", "oxen": "Oxen", "duckdb": "DuckDB + Parquet", "lance": "Lance"}
SHORT = {"registry": "registry", "registry-nofull": "registry\nno full\ncompaction", "delta": "Delta",
         "dvc": "DVC", "oxen": "Oxen", "duckdb": "DuckDB\n+ Parquet", "lance": "Lance"}
FILE_LEVEL = {"dvc"}  # tools whose diff names changed files, not rows

Getter = Callable[[dict[str, Any]], float | None]


def _get(*path: str) -> Getter:
    def get(fig: dict[str, Any]) -> float | None:
        cur: Any = fig
        for key in path:
            if not isinstance(cur, dict) or key not in cur:
                return None
            cur = cur[key]
        return float(cur) if isinstance(cur, (int, float)) else None

    return get


def chain_sum(fig: dict[str, Any]) -> float | None:
    chain = fig.get("chain")
    return float(chain["out"]["sum_s"]) if chain else None


# (row label, getter, formatter, whether a ratio to the registry is printed)
MEASURES: list[tuple[str, Getter, Callable[[float], str], bool]] = [
    ("init: commit of v1 (info)", _get("init_v1", "seconds"), fmt_s, True),
    ("commit v2 (relabel round): wall time", _get("commit", "median_s"), fmt_s, True),
    ("commit v2: bytes written", _get("commit", "bytes_written_median"), fmt_b, True),
    ("commit v2: peak RSS", _get("commit", "peak_rss_max"), fmt_b, True),
    ("diff v1 -> v2: wall time", _get("diff", "median_s"), fmt_s, True),
    ("diff v1 -> v2: peak RSS", _get("diff", "peak_rss_max"), fmt_b, True),
    ("label diff v1 -> v2: wall time (a peer: its diff)", _get("label_diff", "median_s"), fmt_s, True),
    ("read v1 after v2 exists: wall time", _get("read", "median_s"), fmt_s, True),
    ("read v1: peak RSS", _get("read", "peak_rss_max"), fmt_b, True),
    ("chain: sum of the version commits (once, info)", chain_sum, fmt_s, True),
    ("chain: peak RSS", _get("chain", "peak_rss"), fmt_b, True),
    ("bytes on disk after the chain: everything", _get("disk", "total"), fmt_b, True),
    ("bytes on disk after the chain: the store", _get("disk", "store"), fmt_b, True),
]


def cell(value: float | None, reg: float | None, fmt: Callable[[float], str], ratio: bool) -> str:
    if value is None:
        return "-"
    text = fmt(value)
    if ratio and reg:
        text += f" ({value / reg:.2f}x)" if value / reg < 10 else f" ({value / reg:.0f}x)"
    return text


def tool_figs(raw: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: fig for name, fig in raw["tools"].items() if "skipped" not in fig}


def goals(raw: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Each goal of issue 9 as (goal, what was measured, MET / NOT MET / n/a)."""
    figs = tool_figs(raw)
    reg = figs.get("registry", {})
    peers = {n: f for n, f in figs.items() if not n.startswith("registry")}
    out: list[tuple[str, str, str]] = []

    def faster(label: str, get: Getter, only_rows: bool) -> None:
        r = get(reg)
        ratios = {n: get(f) / r for n, f in peers.items()
                  if r and get(f) is not None and not (only_rows and n in FILE_LEVEL)}
        if not ratios:
            out.append((label, "no peer measured", "n/a"))
            return
        slowest_margin = min(ratios, key=lambda n: ratios[n])
        text = ", ".join(f"{LABELS[n]} {v:.1f}x" for n, v in ratios.items())
        out.append((label, f"peer time / registry time: {text}; closest: {LABELS[slowest_margin]}",
                    "MET" if min(ratios.values()) >= 10 else "NOT MET"))

    faster("registry >= 10x faster than every peer on the commit of the relabel round",
           _get("commit", "median_s"), False)
    faster("registry >= 10x faster than every peer on the label diff (row-level diffs; DVC has none)",
           _get("diff", "median_s"), True)
    label_diff = _get("label_diff", "median_s")
    if label_diff(reg) is not None and "delta" in peers and label_diff(peers["delta"]) is not None:
        ours, cdf = label_diff(reg), label_diff(peers["delta"])
        assert ours is not None and cdf is not None
        out.append(("registry label diff v1 -> v2 no slower than Delta Lake's change data feed (issue 19)",
                    f"registry {fmt_s(ours)}; Delta Lake {fmt_s(cdf)} ({ours / cdf:.2f}x)",
                    "MET" if ours <= cdf else "NOT MET"))
    r = _get("read", "median_s")(reg)
    reads = {n: _get("read", "median_s")(f) for n, f in [("registry", reg), *peers.items()]}
    reads = {n: v for n, v in reads.items() if v is not None}
    if r and reads:
        fastest = min(reads, key=lambda n: reads[n])
        out.append(("registry read of v1 within 1.2x of the fastest",
                    f"registry {fmt_s(r)}; fastest {LABELS[fastest]} {fmt_s(reads[fastest])} "
                    f"({r / reads[fastest]:.2f}x)", "MET" if r <= 1.2 * reads[fastest] else "NOT MET"))
    full = raw["inputs"]["v1_bytes"]
    versions = raw["params"]["versions"]
    for name in (n for n in figs if n.startswith("registry")):
        for key, what in (("store", "objects + catalog"), ("total", "including the key-hash index cache")):
            b = _get("disk", key)(figs[name])
            if b is None:
                continue
            measured = f"{fmt_b(b)} = {b / full:.2f}x v1.parquet ({fmt_b(full)})"
            verdict = "MET" if b <= 1.5 * full else "NOT MET"
            guess = extrapolate_100(figs[name], b) if key == "total" else None
            if guess is not None:
                measured += f"; a straight line through the chain's growth gives {guess / full:.2f}x at 100 versions"
            if versions < 100:
                verdict += f" (at {versions} versions)"
            out.append((f"{LABELS[name]} keeps the {versions} versions in <= 1.5x one full copy ({what})",
                        measured, verdict))
    return out


def extrapolate_100(fig: dict[str, Any], measured: float) -> float | None:
    """When the chain had fewer than 100 versions: ``measured`` plus the mean growth per version (over
    the whole chain) times the versions missing. An estimate, labelled as one in the report; only for
    the whole folder, since the chain records the whole folder's bytes after each version."""
    chain = (fig.get("chain") or {}).get("out") or {}
    after = chain.get("disk_after") or []
    if not after or len(after) >= 100:
        return None
    growth = (after[-1] - after[0]) / (len(after) - 1) if len(after) > 1 else 0.0
    return measured + growth * (100 - len(after))


def markdown(raw: dict[str, Any], final: bool) -> str:
    env, params, inputs = raw["env"], raw["params"], raw["inputs"]
    figs = tool_figs(raw)
    names = list(figs)
    reg = figs.get("registry", {})
    load_end = raw.get("loadavg_at_end")
    lines = [
        f"# Registry vs peers: {params['rows']:,} rows, {params['versions']} chain versions"
        + ("" if final else " (PARTIAL: the run is still going or stopped early)"),
        "",
        f"- When: {raw.get('finished_at') or time.strftime('%Y-%m-%d %H:%M:%S %Z')}; "
        f"command: `python {params['command']}`",
        f"- Code: registry `{env.get('git_head')}`" + (" (registry/ had uncommitted changes)"
                                                       if env.get("registry_dirty") else ""),
        f"- Machine: {env['cpus']} CPUs, {env['memory_gib']} GiB, {env['platform']}; load average "
        f"{env['loadavg_at_start'][0]:.2f} at start" + (f", {load_end[0]:.2f} at end" if load_end else ""),
        f"- Python {env['python']}, pyarrow {env['pyarrow']}; "
        + ", ".join(f"{LABELS[n]} {v}" for n, v in raw["versions_installed"].items() if n != "registry"),
        f"- Data: v1.parquet {fmt_b(inputs['v1_bytes'])} (zstd, one full copy); v2 = 2,000 relabels + 3,000 new "
        f"rows; then {params['versions']} versions each relabeling {inputs['rows_relabeled_per_version']:,} rows "
        "(0.1%)",
        f"- Commit, diff and read: median of {params['reps']} runs, each in a fresh process (commits on copies of "
        "the v1 state); the chain ran once per tool. Peak RSS: the largest over the runs. "
        "In brackets: the tool's figure / the registry's.",
        "",
        "| Measurement | " + " | ".join(LABELS[n] for n in names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for label, get, fmt, ratio in MEASURES:
        lines.append(f"| {label} | " + " | ".join(cell(get(figs[n]), get(reg), fmt, ratio and n != "registry")
                                                   for n in names) + " |")
    lines.append("| diff level (counts: added / removed / changed) | " + " | ".join(
        diff_level(n, figs[n], raw) for n in names) + " |")
    lines.append("| head after the chain holds exactly the intended labels | " + " | ".join(
        head_check(figs[n]) for n in names) + " |")
    lines += ["", "## Goals (issue 9)", "", "| Goal | Measured | Result |", "|---|---|---|"]
    lines += [f"| {g} | {m} | {v} |" for g, m, v in goals(raw)]
    lines += ["", "## Notes", ""]
    for name, fig in raw["tools"].items():
        if "skipped" in fig:
            lines.append(f"- {LABELS[name]} did not run: {fig['skipped']}")
        for what, err in fig.get("errors", {}).items():
            lines.append(f"- {LABELS[name]}: {what} failed: `{err[:500]}`")
        for note in tool_notes(name, fig, raw):
            lines.append(f"- {LABELS[name]}: {note}")
    lines += [f"- {note}" for note in GENERAL_NOTES]
    return "\n".join(lines) + "\n"


def diff_level(name: str, fig: dict[str, Any], raw: dict[str, Any]) -> str:
    out = (fig.get("diff") or {}).get("out")
    if not out:
        return "-"
    counts = f"{out['added']:,} / {out['removed']:,} / {out['changed']:,}"
    if name in FILE_LEVEL:
        return f"files only: {counts} files"
    exp = raw["expected_v2"]
    ok = (out["added"], out["removed"], out["changed"]) == (exp["added"], exp["removed"], exp["changed"])
    return f"rows: {counts}" + ("" if ok else " (WRONG)")


def head_check(fig: dict[str, Any]) -> str:
    head = fig.get("head")
    if not head:
        return "-"
    return f"yes ({head['rows']:,} rows)" if head["matches"] else f"NO: WRONG ({head['rows']:,} rows)"


def tool_notes(name: str, fig: dict[str, Any], raw: dict[str, Any]) -> list[str]:
    notes = []
    chain = (fig.get("chain") or {}).get("out")
    if chain:
        per = sorted(chain["per_version_s"])
        notes.append(f"chain of {chain['versions']} commits: median {fmt_s(per[len(per) // 2])}, "
                     f"max {fmt_s(per[-1])}, sum {fmt_s(chain['sum_s'])}")
    disk = fig.get("disk")
    if disk:
        notes.append(f"the store counts {disk['store_what']}")
    read = (fig.get("read") or {}).get("out")
    if read and read.get("rows") != raw["params"]["rows"]:
        notes.append(f"read of v1 returned {read.get('rows')} rows, expected {raw['params']['rows']} (WRONG)")
    notes += TOOL_NOTES.get(name, [])
    return notes


TOOL_NOTES = {
    "registry": ["commit = `Registry.commit(..., mode=\"upsert\")` of the 5,000 changed rows (in-memory Arrow); "
                 "diff = `Registry.diff(\"labels@v1\", \"labels@v2\")` (row counts, changed cells per column, 10 "
                 "example rows); label diff = `Registry.label_diff(\"labels@v1\", \"labels@v2\")` (the change "
                 "matrix, label distributions and every relabeled row with who relabeled it; the timed runs find "
                 "the label counts kept by the warm-up run); read = `Registry.read(\"labels@v1\")`; commits never "
                 "compact: each chain step is a "
                 "commit followed by the compaction pass the serve worker would run (`Registry.compact_auto`)."],
    "registry-nofull": ["the same registry code and calls with `REGISTRY_COMPACT_BASE_FRACTION=0` in its "
                        "processes: automatic compaction never rewrites the base layer (by default it does once "
                        "the layers above hold 25% of the base's rows); upper layers still merge in size tiers. "
                        "Shown for the storage trade-off; the goals are judged on the default configuration."],
    "lance": ["commit = `LanceDataset.merge_insert(\"sample_id\")` with update-all / insert-all of the 5,000 rows; "
              "diff = a keyed full join (DuckDB) of versions 1 and 2's key and label columns (Lance has no change "
              "feed); read = `lance.dataset(path, version=1).to_table()`. No compaction or cleanup was run."],
    "delta": ["commit = `DeltaTable.merge(...)` on `sample_id` with update-all / insert-all of the 5,000 rows; "
              "diff = the change data feed of version 1 (`load_cdf`, enabled at creation); read = "
              "`DeltaTable(path, version=0).to_pyarrow_table()` (time travel). No OPTIMIZE or VACUUM was run."],
    "dvc": ["commit = `dvc add data.parquet` (in-process `Repo.add`) + `git commit` of the .dvc file, with the "
            "new full file already in the workspace (writing it is the user's cost and is NOT timed); "
            "diff = `dvc diff v1 v2` (`Repo.diff`): file-level only, it says the file changed, no rows; "
            "read = `dvc.api.open(rev=\"v1\")` + pyarrow. Default cache link type (copy on this file system)."],
    "oxen": ["commit = `Repo.add` + `Repo.commit` of the full file, already in the workspace (writing it is "
             "NOT timed); diff = `oxen.diff(..., keys=[\"sample_id\"])` between the v1 and main commits "
             "(row-level); read = `checkout(\"v1\")` (a branch: this oxenai checks out branches, not commit "
             "ids) + pyarrow read."],
    "duckdb": ["commit = DuckDB `COPY (prev ANTI JOIN changes UNION ALL changes)` to a new full zstd file; "
               "diff = DuckDB FULL OUTER JOIN of the two files (core_bench.duckdb_diff); read = "
               "`pq.read_table` of the v1 file; the store keeps every version as a full file."],
}
GENERAL_NOTES = [
    "Tools run one after the other in the same invocation on the same generated files; the machine is shared, "
    "so the load average at each tool's start and end is in the JSON. Compare ratios, not absolute times.",
    "Everything runs with a warm OS page cache (inputs just written; each diff/read series has a warm-up run).",
    "Each step's library is imported before the clock starts (lance and deltalake for their commits, the "
    "registry's commit, diff and label diff modules, which it loads lazily), so no timed figure includes "
    "loading code.",
    "Bytes are allocated disk blocks (as `du` counts them) of the tool's folder; 'the store' leaves out a "
    "working copy and derivable caches (see each tool's note).",
]


def write_chart(raw: dict[str, Any], png: Path) -> str | None:
    """Four log-scale bar charts; returns why not when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        return f"no chart: {exc}"
    figs = tool_figs(raw)
    panels = [("commit v2 (s)", _get("commit", "median_s"), 1.0), ("diff v1 -> v2 (s)", _get("diff", "median_s"), 1.0),
              ("read v1 (s)", _get("read", "median_s"), 1.0),
              (f"store after {raw['params']['versions']} versions (MiB)", _get("disk", "store"), 1 / 2**20)]
    fig, axes = plt.subplots(1, 4, figsize=(18, 4.6))
    for ax, (title, get, scale) in zip(axes, panels, strict=True):
        names = [n for n in figs if get(figs[n]) is not None]
        values = [get(figs[n]) * scale for n in names]  # type: ignore[operator]
        colors = ["#d62728" if n.startswith("registry") else "#7f7f7f" for n in names]
        ax.bar([SHORT[n] for n in names], values, color=colors)
        ax.set_yscale("log")
        ax.set_title(title)
        ax.tick_params(axis="x", labelsize=8)
        for i, v in enumerate(values):
            ax.annotate(f"{v:.3g}", (i, v), ha="center", va="bottom", fontsize=8)
    fig.suptitle(f"registry vs peers, {raw['params']['rows']:,} rows (lower is better)")
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return None


def write_outputs(raw: dict[str, Any], out: Path, final: bool = False) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    raw["goals"] = goals(raw)
    text = markdown(raw, final)
    chart_error = write_chart(raw, out.with_suffix(".png")) if final else None
    if chart_error:
        text += f"- {chart_error}\n"
    elif final:
        text += f"\n![registry vs peers]({out.with_suffix('.png').name})\n"
    out.write_text(text)
    out.with_suffix(".json").write_text(json.dumps(raw, indent=2, default=str) + "\n")
    if final:
        print("\n" + text)
        print(f"wrote {out}, {out.with_suffix('.json')}" + ("" if chart_error else f", {out.with_suffix('.png')}"))
