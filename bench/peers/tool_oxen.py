"""Oxen (``oxenai``): ``add`` / ``commit`` of the whole Parquet file, its keyed tabular diff, and a
checkout of the v1 branch to read it back."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections import Counter
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from harness import KEY, Tool, Work, dir_bytes, full_versions, timed_loop

FILE = "data.parquet"


class OxenTool(Tool):
    name = "oxen"
    label = "Oxen"

    def _repo(self) -> Any:
        import oxen

        os.chdir(self.dir)  # oxen resolves relative paths (and diffs) against the working directory
        return oxen.Repo(str(self.dir))

    def _commit(self, repo: Any, message: str) -> str:
        repo.add(str(self.dir / FILE))
        return str(repo.commit(message).id)

    def init_v1(self) -> Work:
        import oxen

        self.dir.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(Exception):  # already configured is fine
            oxen.user.config_user("bench", "bench@example.com")
        repo = self._repo()
        repo.init()
        shutil.copyfile(self.inputs.v1, self.dir / FILE)

        def work() -> dict[str, Any]:
            commit = self._commit(repo, "v1")
            repo.checkout("v1", create=True)  # a branch marks v1: this oxenai checks out branches, not ids
            repo.checkout("main")
            return {"commit": commit}

        return work

    def commit_v2(self) -> Work:
        repo = self._repo()
        shutil.copyfile(self.inputs.v2, self.dir / FILE)  # the user's new file: not timed

        def work() -> dict[str, Any]:
            return {"commit": self._commit(repo, "v2: relabel round")}

        return work

    def diff_v1_v2(self) -> Work:
        import oxen

        repo = self._repo()
        left = [b.commit_id for b in repo.branches() if b.name == "v1"][0]
        right = [b.commit_id for b in repo.branches() if b.name == "main"][0]

        def work() -> dict[str, Any]:
            d = oxen.diff(FILE, repo_dir=str(self.dir), revision_left=left, revision_right=right, keys=[KEY])
            if d.tabular is None:
                raise RuntimeError(f"oxen returned a {d} diff, not a tabular one")
            status = d.tabular.data.get_column("_oxen_diff_status").value_counts()
            counts = Counter(dict(zip(status[:, 0].to_list(), status[:, 1].to_list(), strict=True)))
            return {"added": counts["added"], "removed": counts["removed"], "changed": counts["modified"]}

        return work

    def read_v1(self) -> Work:
        repo = self._repo()
        repo.checkout("main")

        def work() -> dict[str, Any]:
            repo.checkout("v1")
            return {"rows": pq.read_table(self.dir / FILE).num_rows}

        return work

    def chain(self) -> Work:
        repo = self._repo()
        repo.checkout("main")

        def steps() -> Any:
            for k, table in full_versions(self.inputs):
                pq.write_table(table, self.dir / FILE, compression="zstd")  # the user's rewrite: not timed
                yield lambda k=k: self._commit(repo, f"v{k}")

        return lambda: timed_loop(steps(), self.dir)

    def head_table(self) -> pa.Table:
        self._repo().checkout("main")
        return pq.read_table(self.dir / FILE)

    def disk(self) -> dict[str, Any]:
        total = dir_bytes(self.dir)
        return {"total": total, "store": dir_bytes(self.dir / ".oxen"),
                "store_what": "the .oxen folder, without the working copy of the file"}
