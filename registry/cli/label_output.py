"""How ``registry diff --labels`` prints for people."""

from __future__ import annotations

from typing import Any

from registry.cli.output import cell, say, table

__all__ = ["label_diff_report"]


def label_diff_report(d: dict[str, Any]) -> None:
    say(f"{d['a']} -> {d['b']}: {d['relabeled']:,} of {d['rows_in_both']:,} rows on both sides relabeled "
        f"(column {d['column']}); rows {d['rows_a']:,} -> {d['rows_b']:,}; total variation distance "
        f"{d['total_variation']:.4f}")
    classes = sorted(set(d["matrix"]) | {c for row in d["matrix"].values() for c in row})
    if classes:
        say("\nchange matrix (rows: from, columns: to)")
        table(["FROM \\ TO", *classes], [[c, *(str(d["matrix"].get(c, {}).get(t, 0) or ".") for t in classes)]
                                         for c in classes])
    say("\nper class")
    table(["CLASS", "BEFORE", "AFTER", "NET"], [[c, str(d["distribution_a"].get(c, 0)),
                                                 str(d["distribution_b"].get(c, 0)), f"{n:+d}"]
                                                for c, n in d["net_change"].items()])
    if d["by_annotator"]:
        say("\nrelabeled by annotator")
        table(["ANNOTATOR", "ROWS"], [[a, str(n)] for a, n in d["by_annotator"].items()])
        say("\nrelabeled by guideline version")
        table(["GUIDELINE", "ROWS"], [[g, str(n)] for g, n in d["by_guideline"].items()])
    if d["changes"]:
        say("\nchanged rows")
        table(["KEY", "FROM", "TO", "BY", "GUIDELINE"], [[cell(c["key"]), cell(c["from"]), cell(c["to"]),
                                                         cell(c["annotator"]), cell(c["guideline_version"])]
                                                        for c in d["changes"]])
