"""Smoke test of bench/peers/run.py at a tiny size, with only the registry and the DuckDB baseline
(the peers' packages are not in the test venv): the report has its rows, and the registry's diff
counts equal DuckDB's full-join counts and the generator's ground truth."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support.paths import ROOT

pytest.importorskip("psutil")

RUN = ROOT / "bench" / "peers" / "run.py"


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict]:
    out = tmp_path_factory.mktemp("peers") / "peers.md"
    proc = subprocess.run([sys.executable, str(RUN), "--rows", "2000", "--versions", "2", "--reps", "1",
                           "--tools", "registry,duckdb", "--no-warm-up", "--out", str(out), "--tmp", str(out.parent)],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out.read_text(), json.loads(out.with_suffix(".json").read_text())


def test_markdown_has_every_measurement_and_goal(report: tuple[str, dict]) -> None:
    text, _ = report
    assert "| Measurement | registry | DuckDB + Parquet |" in text
    for row in ("commit v2 (relabel round): wall time", "commit v2: bytes written", "commit v2: peak RSS",
                "diff v1 -> v2: wall time", "read v1 after v2 exists: wall time",
                "bytes on disk after the chain: the store", "diff level"):
        assert f"| {row}" in text, row
    assert text.count("| registry >= 10x faster") == 2
    assert "registry read of v1 within 1.2x of the fastest" in text
    assert "failed" not in text and "WRONG" not in text


def test_registry_diff_counts_equal_the_duckdb_baseline(report: tuple[str, dict]) -> None:
    _, raw = report
    reg, duck = raw["tools"]["registry"], raw["tools"]["duckdb"]
    assert not reg["errors"] and not duck["errors"]
    counts = [{k: t["diff"]["out"][k] for k in ("added", "removed", "changed")} for t in (reg, duck)]
    assert counts[0] == counts[1] == raw["expected_v2"]
    assert reg["diff"]["out"]["changed_cells"]["label"] == raw["expected_v2"]["changed"]


def test_reads_chain_and_disk_are_measured(report: tuple[str, dict]) -> None:
    _, raw = report
    for name in ("registry", "duckdb"):
        fig = raw["tools"][name]
        assert fig["read"]["out"]["rows"] == 2000
        assert fig["chain"]["out"]["versions"] == 2
        assert fig["commit"]["peak_rss_max"] > 10 * 2**20
        assert 0 < fig["disk"]["store"] <= fig["disk"]["total"]
        # The head after the chain is v2's 5,000 rows with exactly the generator's final labels.
        assert fig["head"] == {"rows": 5000, "labels_sha": raw["inputs"]["final_labels_sha"], "matches": True}
