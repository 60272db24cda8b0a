"""DVC: ``dvc add`` of the whole Parquet file in a local git + DVC repository with a local cache.

DVC versions files, not rows: its diff says which files changed (by hash), never which rows.
Steps call DVC's Python entry points in-process (what the ``dvc`` command runs, without the
interpreter start-up) and git as a subprocess (its peak RSS is counted via RUSAGE_CHILDREN).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from harness import Tool, Work, dir_bytes, full_versions, timed_loop

FILE = "data.parquet"


class DvcTool(Tool):
    name = "dvc"
    label = "DVC"
    diff_level = "file"

    def _git(self, *args: str) -> None:
        subprocess.run(["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com", *args],
                       cwd=self.dir, check=True, capture_output=True)

    def _commit(self, tag: str | None, message: str) -> dict[str, Any]:
        from dvc.repo import Repo

        with Repo(str(self.dir)) as repo:
            repo.add(FILE)
        self._git("add", f"{FILE}.dvc", ".gitignore")
        self._git("commit", "-q", "-m", message)
        if tag:
            self._git("tag", tag)
        return {}

    def _stage(self, source: str | os.PathLike[str]) -> None:
        """Put the new full file in the workspace (what the user produced; not timed)."""
        shutil.copyfile(source, self.dir / FILE)

    def init_v1(self) -> Work:
        os.environ["DVC_NO_ANALYTICS"] = "1"
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chdir(self.dir)  # DVC resolves the tracked path against the working directory
        self._git("init", "-q")
        for args in (["init", "-q"], ["config", "core.analytics", "false"]):
            subprocess.run([sys.executable, "-m", "dvc", *args], cwd=self.dir, check=True, capture_output=True)
        self._git("add", ".")
        self._git("commit", "-q", "-m", "dvc init")
        self._stage(self.inputs.v1)
        return lambda: self._commit("v1", "v1")

    def commit_v2(self) -> Work:
        os.chdir(self.dir)
        self._stage(self.inputs.v2)
        return lambda: self._commit("v2", "v2: relabel round")

    def diff_v1_v2(self) -> Work:
        from dvc.repo import Repo

        def work() -> dict[str, Any]:
            with Repo(str(self.dir)) as repo:
                d = repo.diff("v1", "v2")
            return {"added": len(d.get("added", [])), "removed": len(d.get("deleted", [])),
                    "changed": len(d.get("modified", [])), "unit": "files"}

        return work

    def read_v1(self) -> Work:
        import dvc.api

        def work() -> dict[str, Any]:
            with dvc.api.open(FILE, repo=str(self.dir), rev="v1", mode="rb") as f:
                return {"rows": pq.read_table(f).num_rows}

        return work

    def chain(self) -> Work:
        os.chdir(self.dir)

        def steps() -> Any:
            for k, table in full_versions(self.inputs):
                pq.write_table(table, self.dir / FILE, compression="zstd")  # the user's rewrite: not timed
                yield lambda k=k: self._commit(None, f"v{k}")

        return lambda: timed_loop(steps(), self.dir)

    def head_table(self) -> pa.Table:
        return pq.read_table(self.dir / FILE)  # the workspace holds the last version committed

    def disk(self) -> dict[str, Any]:
        return {"total": dir_bytes(self.dir), "store": dir_bytes(self.dir, exclude=(FILE,)),
                "store_what": "the .dvc cache and git history, without the working copy of the file"}

