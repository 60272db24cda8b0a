"""Roles, actions and the one table saying which role may do what, plus the authenticated principal."""

from __future__ import annotations

from dataclasses import dataclass

from registry.errors import InvalidInput, NotFound, PermissionDenied

__all__ = ["ACTIONS", "PERMISSIONS", "READ_ACTIONS", "ROLES", "Principal", "check_role"]

ROLES = ("admin", "maintainer", "writer", "ci", "auditor", "reader")

_ALL = frozenset(ROLES)
PERMISSIONS: dict[str, frozenset[str]] = {
    "read": _ALL,
    "gate_check": _ALL,
    "commit": frozenset({"admin", "maintainer", "writer"}),
    "tag": frozenset({"admin", "maintainer", "writer"}),
    "branch": frozenset({"admin", "maintainer", "writer"}),
    "merge": frozenset({"admin", "maintainer"}),
    "protect": frozenset({"admin", "maintainer"}),
    "import": frozenset({"admin", "writer"}),
    "policy": frozenset({"admin", "maintainer"}),
    "waive": frozenset({"admin", "maintainer"}),
    "qa_run": frozenset({"admin", "ci"}),
    "pin": frozenset({"admin", "maintainer", "writer", "ci", "reader"}),
    "read_unverified": frozenset({"admin", "maintainer"}),
    "audit": frozenset({"admin", "auditor"}),
    "query": frozenset({"admin", "auditor"}),
    "lineage_ingest": frozenset({"admin", "writer", "ci"}),
    "token_admin": frozenset({"admin"}),
}
"""Action -> the roles allowed to perform it: the single source of truth for authorisation."""

ACTIONS = tuple(PERMISSIONS)
READ_ACTIONS = frozenset({"read", "gate_check", "audit", "query"})
"""Actions that change nothing; a refused attempt at any other action is recorded in the audit log."""


def check_role(role: str) -> str:
    """``role`` if it is one of :data:`ROLES`.

    Raises:
        InvalidInput: an unknown role.
    """
    if role not in ROLES:
        raise InvalidInput(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    return role


@dataclass(frozen=True)
class Principal:
    """Who an API request authenticated as: a token's name, role and dataset scope (empty: every dataset)."""

    name: str
    role: str
    datasets: tuple[str, ...] = ()

    def may(self, action: str) -> bool:
        return self.role in PERMISSIONS[action]

    def require(self, action: str) -> None:
        """Raises: PermissionDenied: the role may not perform ``action``."""
        if not self.may(action):
            raise PermissionDenied(f"token {self.name!r} (role {self.role}) may not {action.replace('_', ' ')}")

    def sees(self, dataset: str) -> bool:
        return not self.datasets or dataset in self.datasets

    def require_dataset(self, dataset: str) -> None:
        """Raises: NotFound: the dataset is outside the token's scope (said as if it did not exist)."""
        if not self.sees(dataset):
            raise NotFound(f"unknown dataset {dataset!r}; `registry dataset list` shows the datasets")

    def require_ref(self, ref: str) -> None:
        """Scope check for a ``NAME[@REF]``."""
        from registry.catalog import split_ref  # lazy: CLI start-up (the CLI loads this module for every command)

        self.require_dataset(split_ref(ref)[0])
