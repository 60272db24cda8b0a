"""The registry's one error vocabulary.

Every failure a user can cause or meet is a :class:`RegistryError` subclass with a stable
``code``. The edges map these classes once each: :data:`EXIT_CODES` for the CLI and
:data:`HTTP_STATUS` for the HTTP API. Classes also subclass the matching built-in exception
(``NotFound`` is a ``LookupError``) so plain Python code can catch them.

A message says what went wrong (and what to do) in words every edge can show; the handle to use,
an option, a command, a field or the accepted values, is data in :attr:`RegistryError.hint`, which
each edge renders in its own words: the CLI as ``--allow-breaking`` or ``registry db upgrade``, the
API as ``{"kind": "option", "name": "allow_breaking", "value": null}``, the console as a field name.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

__all__ = [
    "EXIT_CODES",
    "HTTP_STATUS",
    "AlreadyExists",
    "AmbiguousRef",
    "BreakingSchemaChange",
    "CatalogOutOfDate",
    "CheckFailed",
    "Conflict",
    "GateBlocked",
    "Hint",
    "HintKind",
    "HomeNotFound",
    "InvalidInput",
    "InvalidName",
    "NotFound",
    "PermissionDenied",
    "QueryInterrupted",
    "QuerySyntaxError",
    "RefConflict",
    "RegistryError",
    "StorageError",
    "TooLarge",
    "UpstreamError",
    "UnresolvedConflicts",
    "Unauthenticated",
    "UserError",
    "VerifyFailed",
    "exit_code_for",
    "http_status_for",
]


HintKind = Literal["option", "command", "field", "value"]
"""What a :class:`Hint` names: a parameter (``option``), a command (``command``), a field of a document
or form (``field``), or the accepted values of a parameter (``value``)."""


@dataclass(frozen=True)
class Hint:
    """What to use to get past an error, as data; each edge words it (the CLI as a flag or command line).

    - ``Hint("option", "allow_breaking")``: the parameter ``allow_breaking`` (CLI ``--allow-breaking``,
      API the ``allow_breaking`` parameter); ``value`` is an example value (``Hint("option", "key",
      "sample_id")``).
    - ``Hint("command", "db upgrade")``: an operation by its CLI command path without ``registry``;
      ``value`` holds its arguments (``Hint("command", "policy set", "NAME FILE")``).
    - ``Hint("field", "records", "DATASET@REF")``: a field of a document or request body and its form.
    - ``Hint("value", "strategy", "fail, ours, theirs")``: the accepted values of the parameter ``name``.

    Names are snake_case parameter names as the Python API spells them."""

    kind: HintKind
    name: str
    value: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        """``{"kind", "name", "value"}``, as the API's error body carries it."""
        return asdict(self)


class RegistryError(Exception):
    """Base of every error the registry raises on purpose; ``hint`` (optional) names what to use instead."""

    code: str = "registry_error"

    def __init__(self, message: str, *, hint: Hint | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def to_dict(self) -> dict[str, dict[str, str]]:
        """The JSON body both edges print: ``{"error": {"code", "message"}}``, plus ``"hint"`` when there is one
        (the CLI prints the hint inside its message instead)."""
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.hint is not None:
            body["hint"] = self.hint.to_dict()
        return {"error": body}


class UserError(RegistryError):
    """The request was wrong: bad arguments, unknown names, invalid input."""

    code = "user_error"


class InvalidInput(UserError, ValueError):
    """An input file or value cannot be accepted (malformed, bad keys, wrong type)."""

    code = "invalid_input"


class InvalidName(InvalidInput):
    """A dataset, ref or tag name breaks the naming rules."""

    code = "invalid_name"


class NotFound(UserError, LookupError):
    """A dataset, ref, snapshot or object does not exist."""

    code = "not_found"


class AmbiguousRef(UserError, LookupError):
    """A snapshot id prefix matches more than one snapshot."""

    code = "ambiguous_ref"


class AlreadyExists(UserError):
    """A dataset or tag with that name exists already (tags never move)."""

    code = "already_exists"


class BreakingSchemaChange(InvalidInput):
    """A commit changes the schema in a breaking way without ``allow_breaking``."""

    code = "breaking_schema_change"


class HomeNotFound(UserError, FileNotFoundError):
    """No registry home was given or found walking up from the working directory."""

    code = "home_not_found"


class CatalogOutOfDate(UserError):
    """The catalog schema is older than this code; upgrading the catalog (``registry db upgrade``) fixes it."""

    code = "catalog_out_of_date"


class StorageError(UserError, OSError):
    """The object store could not be read or written."""

    code = "storage_error"


class Conflict(RegistryError):
    """Another writer changed what this operation depended on."""

    code = "conflict"


class RefConflict(Conflict):
    """A branch moved between read and write (compare-and-swap lost)."""

    code = "ref_conflict"


class CheckFailed(RegistryError):
    """A check ran and found a problem (verify mismatch, failed gate)."""

    code = "check_failed"


class VerifyFailed(CheckFailed):
    """A stored hash, manifest or snapshot id does not match its recomputation."""

    code = "verify_failed"


class GateBlocked(CheckFailed):
    """A snapshot's QA gate does not pass under the current policy, so training may not use it."""

    code = "gate_blocked"


class PermissionDenied(UserError, PermissionError):
    """The acting user lacks the right for this operation (e.g. only maintainers change a policy)."""

    code = "permission_denied"


class Unauthenticated(UserError):
    """No valid credentials: an API request without a token, or with an unknown, expired or revoked one."""

    code = "unauthenticated"


class QueryInterrupted(UserError):
    """A query ran past its time limit, or its caller went away, and was stopped."""

    code = "query_interrupted"


class TooLarge(InvalidInput):
    """An upload exceeds the configured size limit."""

    code = "too_large"


class UpstreamError(UserError):
    """A labeling tool's server (e.g. Label Studio) was unreachable, refused the token or failed; the
    message names the server and the HTTP status. Nothing was committed."""

    code = "upstream_error"


class UnresolvedConflicts(CheckFailed):
    """A merge found conflicts that no resolution, preference or strategy settled; nothing changed.

    ``conflicts`` lists them (key, column, base, ours, theirs, who set each side)."""

    code = "merge_conflicts"

    def __init__(self, message: str, conflicts: list[dict[str, object]] | None = None, *,
                 hint: Hint | None = None) -> None:
        super().__init__(message, hint=hint)
        self.conflicts = conflicts or []

    def to_dict(self) -> dict[str, dict[str, str]]:
        body = super().to_dict()
        body["error"]["conflicts"] = self.conflicts  # type: ignore[assignment]
        return body


class QuerySyntaxError(InvalidInput):
    """SQL that does not parse. Its message keeps the parser's line breaks: the caret under the
    offending column on the next lines is the useful part, so the CLI prints it as written."""

    code = "query_syntax"


EXIT_CODES: dict[type[RegistryError], int] = {
    CheckFailed: 1,
    UserError: 2,
    Conflict: 3,
}
"""CLI exit code by error class; the most specific listed ancestor wins."""

HTTP_STATUS: dict[type[RegistryError], int] = {
    CheckFailed: 422,
    GateBlocked: 409,
    UnresolvedConflicts: 409,
    PermissionDenied: 403,
    Unauthenticated: 401,
    TooLarge: 413,
    QueryInterrupted: 422,
    InvalidInput: 422,
    NotFound: 404,
    AlreadyExists: 409,
    UserError: 400,
    Conflict: 409,
    StorageError: 503,
    UpstreamError: 502,
}
"""HTTP status by error class; the most specific listed ancestor wins."""


def _lookup(table: dict[type[RegistryError], int], error: RegistryError, default: int) -> int:
    for cls in type(error).__mro__:
        if cls in table:
            return table[cls]
    return default


def exit_code_for(error: RegistryError) -> int:
    """The CLI exit code for ``error`` (2 for anything unlisted)."""
    return _lookup(EXIT_CODES, error, 2)


def http_status_for(error: RegistryError) -> int:
    """The HTTP status for ``error`` (500 for anything unlisted)."""
    return _lookup(HTTP_STATUS, error, 500)
