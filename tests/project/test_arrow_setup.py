"""pandas stays out of the command-line process (pyarrow would import it on its first conversion), and
comes back for the commands that need it. Each case runs in a fresh interpreter: the import state is
per process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("pandas", reason="the probe only matters where pandas is installed")


def _run(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_pyarrow_conversions_import_pandas_unless_hidden() -> None:
    convert = "import pyarrow as pa, numpy as np; pa.array([1, None]).fill_null(0); pa.scalar(1); "
    assert _run(f"import sys; {convert}print('pandas' in sys.modules)") == "True"  # what hiding prevents
    hidden = _run("import sys; from registry.arrow_setup import hide_pandas; print(hide_pandas()); "
                  f"{convert}import duckdb; duckdb.sql('select 1').arrow(); print('pandas' in sys.modules)")
    assert hidden.split() == ["True", "False"]


def test_unhiding_gives_pandas_back_to_pyarrow() -> None:
    out = _run("from registry.arrow_setup import hide_pandas, unhide_pandas; import pyarrow as pa; hide_pandas(); "
               "pa.array([1]); unhide_pandas(); import pandas as pd; "
               "print(pa.array(pd.Series(pd.Categorical(['a', 'b']))).type.id == pa.dictionary(pa.int8(), "
               "pa.string()).id, pa.table({'a': [1]}).to_pandas().shape)")
    assert out == "True (1, 1)"


def test_hiding_after_pandas_was_imported_changes_nothing() -> None:
    assert _run("import pandas; from registry.arrow_setup import hide_pandas, pandas_hidden; "
                "print(hide_pandas(), pandas_hidden())") == "False False"


def test_the_registry_command_never_imports_pandas(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "REGISTRY_HOME": str(home)}
    rows = tmp_path / "rows.csv"
    rows.write_text("sample_id,label\na,cat\nb,dog\n")
    changed = tmp_path / "changed.csv"
    changed.write_text("sample_id,label\nb,emu\nc,owl\n")
    for args in (["init"], ["dataset", "create", "d", "--key", "sample_id"], ["commit", "d", str(rows), "-m", "v1"],
                 ["commit", "d", str(changed), "--mode", "upsert", "-m", "v2"]):
        done = subprocess.run([sys.executable, "-m", "registry.cli.main", *args], env=env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "registry.cli.main", "diff", "d@main~1", "d@main",
                           "--json"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["changed"] == 1
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    # pyarrow's probe still tries `import pandas` (one failed attempt shows as a bare "pandas" line); a real
    # import would load its submodules
    assert "pyarrow" in imported and not any(name.startswith("pandas.") for name in imported)
