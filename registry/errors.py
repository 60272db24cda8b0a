"""The registry's one error vocabulary.

Every failure a user can cause or meet is a :class:`RegistryError` subclass with a stable
``code``. The edges map these classes once each: :data:`EXIT_CODES` for the CLI and
:data:`HTTP_STATUS` for the HTTP API. Classes also subclass the matching built-in exception
(``NotFound`` is a ``LookupError``) so plain Python code can catch them.
"""

from __future__ import annotations

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


class RegistryError(Exception):
    """Base of every error the registry raises on purpose."""

    code: str = "registry_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, dict[str, str]]:
        """The JSON body both edges print: ``{"error": {"code", "message"}}``."""
        return {"error": {"code": self.code, "message": self.message}}


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
    """A commit changes the schema in a breaking way without ``--allow-breaking``."""

    code = "breaking_schema_change"


class HomeNotFound(UserError, FileNotFoundError):
    """No registry home was given or found walking up from the working directory."""

    code = "home_not_found"


class CatalogOutOfDate(UserError):
    """The catalog schema is older than this code; ``registry db upgrade`` fixes it."""

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

    def __init__(self, message: str, conflicts: list[dict[str, object]] | None = None) -> None:
        super().__init__(message)
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
