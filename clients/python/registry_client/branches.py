"""The client's branch and merge calls (mixed into :class:`registry_client.Client`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, TypeVar
from urllib.parse import quote

import httpx

from registry_client.errors import ConnectionFailed, Hint, UnresolvedConflicts
from registry_client.models import BranchesPublic, BranchPublic, MergeConflictsPublic, MergePublic, WireModel

__all__ = ["BranchCalls"]


M = TypeVar("M", bound=WireModel)


def _seg(value: str) -> str:
    return quote(value, safe="@~")


class BranchCalls:
    """Branches (create, list, delete, protect), merges and merge conflicts."""

    _http: httpx.Client

    # provided by Client (first in its method order, so these bodies never run)
    def _call(self, model: type[M], method: str, path: str, **kwargs: Any) -> M:
        raise NotImplementedError

    def _raise_for(self, response: httpx.Response) -> None:
        raise NotImplementedError

    def _unreachable(self, exc: httpx.TransportError) -> ConnectionFailed:
        raise NotImplementedError

    def branches(self, name: str) -> BranchesPublic:
        """The branches of ``name``, ``main`` first: head, protected, merged into main."""
        result = self._call(BranchesPublic, "GET", f"/datasets/{_seg(name)}/branches")
        return result

    def create_branch(self, name: str, branch: str, from_ref: str | None = None) -> BranchPublic:
        """Create ``branch`` of ``name`` at ``from_ref`` (default main); no data is copied.

        Raises:
            AlreadyExists: a branch or tag of that name exists.  InvalidName: a bad branch name.
        """
        result = self._call(BranchPublic, "POST", f"/datasets/{_seg(name)}/branches",
                            json={"branch": branch, "from": from_ref})
        return result

    def delete_branch(self, name: str, branch: str, force: bool = False) -> BranchPublic:
        """Delete a branch (refused for main, protected branches, and unmerged work without ``force``)."""
        result = self._call(BranchPublic, "DELETE", f"/datasets/{_seg(name)}/branches/{_seg(branch)}",
                            params={"force": str(force).lower()})
        return result

    def protect_branch(self, name: str, branch: str, protected: bool = True) -> BranchPublic:
        """Protect (or unprotect) a branch: direct commits are refused, changes arrive only by merge."""
        result = self._call(BranchPublic, "PUT" if protected else "DELETE",
                            f"/datasets/{_seg(name)}/branches/{_seg(branch)}/protection")
        return result

    def merge(self, name: str, source: str, into: str = "main", *,
              strategy: Literal["fail", "ours", "theirs"] = "fail",
              prefer: Literal["ground-truth", "reviewer", "majority"] | None = None,
              resolutions: Sequence[dict[str, Any]] = (), dry_run: bool = False, message: str = "",
              expect_target: str | None = None, retry: int = 0) -> MergePublic:
        """Merge ``source`` (a branch, tag or id of ``name``) into branch ``into``; ``expect_target`` is
        sent as ``If-Match``. ``resolutions``: ``{"key": {...}, "column": ..., "value": ... | "ours" | "theirs"}``.

        Raises:
            UnresolvedConflicts: conflicts remain (``.conflicts`` lists them); nothing changed.
            GateBlocked: the result fails the target's QA policy.  RefConflict: the target moved.
        """
        body = {"source": source, "into": into, "strategy": strategy, "prefer": prefer,
                "resolutions": list(resolutions), "dry_run": dry_run, "message": message, "retry": retry}
        headers = {"If-Match": f'"{expect_target}"'} if expect_target else {}
        try:
            response = self._http.post(f"/datasets/{_seg(name)}/merges", json=body, headers=headers)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc
        if response.status_code == 409:
            error = response.json().get("error", {})
            if error.get("code") == UnresolvedConflicts.code:
                raise UnresolvedConflicts(str(error.get("message")), 409, list(error.get("conflicts") or []),
                                          Hint.from_body(error.get("hint")))
        self._raise_for(response)
        return MergePublic.model_validate(response.json())

    def merge_conflicts(self, name: str, source: str, into: str = "main") -> MergeConflictsPublic:
        """Every conflict merging ``source`` into ``into`` would meet now (nothing changes): ``conflicts``,
        with the snapshots of the source, the target and their merge base."""
        return self._call(MergeConflictsPublic, "GET", f"/datasets/{_seg(name)}/conflicts",
                          params={"source": source, "into": into})
