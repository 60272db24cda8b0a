"""``scripts/demo.sh`` end to end: it runs, and every command it prints runs again when pasted."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.paths import ROOT

PROMPT = re.compile(r"^\x1b\[1m\$ (.*)\x1b\[0m$", re.M)
READ_ONLY = ("log", "diff", "schema", "show", "verify", "dataset list", "gate check", "lineage", "history", "blame",
             "audit log", "audit verify", "query")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("demo") / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REGISTRY_", "OPENLINEAGE_"))}
    env.update({"DEMO_OUT": str(out), "DEMO_SKIP_SETUP": "1",
                "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"})
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "demo.sh")], env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out, proc.stdout


def test_the_demo_installs_no_browser() -> None:
    text = (ROOT / "scripts" / "demo.sh").read_text()
    assert "chromium" not in text.lower() and "--with-browser" not in text
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    assert 'if [ "${1:-}" = "--with-browser" ]' in setup
    assert "setup.sh --with-browser" in (ROOT / "scripts" / "test.sh").read_text()


def test_every_printed_command_runs_again_when_pasted(demo: tuple[Path, str], tmp_path: Path) -> None:
    out, printed = demo
    commands = PROMPT.findall(printed)
    assert len(commands) > 30
    # Quoting kept: the commit message and the SQL are one argument each.
    assert "registry commit street-signs labels-v1.parquet -m 'Initial labeling round'" in commands
    assert any(shlex.split(c)[1] == "query" and len(shlex.split(c)) in (3, 5) for c in commands)
    copy = tmp_path / "again"
    shutil.copytree(out, copy)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REGISTRY_", "OPENLINEAGE_"))}
    env.update({"PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
                "OPENLINEAGE_DISABLED": "true", "REGISTRY_ACTOR": "demo-annotator"})  # the demo's shell exports it
    local = commands[: next(i for i, c in enumerate(commands) if "--limit 2" in c)]  # before the remote part
    for command in local:
        words = shlex.split(command)
        assert words[0] == "registry", command
        again = subprocess.run(command, shell=True, cwd=copy, env=env, capture_output=True, text=True, timeout=300)
        assert "Usage:" not in again.stderr and "unexpected extra argument" not in again.stderr, (command, again.stderr)
        if " ".join(words[1:3]).startswith(READ_ONLY) and words[1:3] != ["gate", "check"]:
            assert again.returncode == 0, (command, again.stderr)
        else:
            # A re-run may find that a dataset or tag exists already (exit 2 saying so), never a usage error.
            assert again.returncode in (0, 1, 3) or (again.returncode == 2 and "exists" in again.stderr), \
                (command, again.stderr)
