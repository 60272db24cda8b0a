"""The client's exceptions: the server's error vocabulary, by the same class names and codes.

The server answers every failure with ``{"error": {"code", "message"}}``; :func:`error_for` picks
the class whose ``code`` matches (falling back on the HTTP status when the code is unknown), so
``except NotFound`` means the same here as in the registry's own Python API. Each error carries
``.code``, ``.message`` and ``.status`` (the HTTP status, or None when no response arrived).
Classes also subclass the matching built-in exception (``NotFound`` is a ``LookupError``).

When the server knows what to use instead, the body also carries ``"hint": {"kind", "name", "value"}``
and the error exposes it as ``.hint`` (a :class:`Hint`, else None): e.g. ``Hint("option",
"allow_breaking")`` for a breaking commit means passing ``allow_breaking=True``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "AlreadyExists",
    "AmbiguousRef",
    "BreakingSchemaChange",
    "CatalogOutOfDate",
    "CheckFailed",
    "Conflict",
    "ConnectionFailed",
    "GateBlocked",
    "Hint",
    "HomeNotFound",
    "InvalidInput",
    "InvalidName",
    "NotFound",
    "PermissionDenied",
    "QueryInterrupted",
    "QuerySyntaxError",
    "RefConflict",
    "RegistryError",
    "ServerError",
    "StorageError",
    "TooLarge",
    "Unauthenticated",
    "UnresolvedConflicts",
    "UpstreamError",
    "UserError",
    "VerifyFailed",
    "error_for",
]


@dataclass(frozen=True)
class Hint:
    """What to use to get past an error, as the server names it: ``kind`` is ``option`` (a parameter such as
    ``allow_breaking``; ``value`` an example value), ``command`` (an operation by its CLI command path, such
    as ``db upgrade``, for the registry host), ``field`` (a field of a document or body) or ``value``
    (``value`` lists the accepted values of the parameter ``name``)."""

    kind: str
    name: str
    value: str | None = None

    @classmethod
    def from_body(cls, body: object) -> Hint | None:
        """The hint of an error body's ``"hint"`` member; None when absent or not of that shape."""
        if not isinstance(body, Mapping) or not isinstance(body.get("kind"), str) or not isinstance(
                body.get("name"), str):
            return None
        value = body.get("value")
        return cls(body["kind"], body["name"], value if isinstance(value, str) else None)


class RegistryError(Exception):
    """Base of every error the client raises; ``hint`` is what the server advises using instead, if anything."""

    code: str = "registry_error"

    def __init__(self, message: str, status: int | None = None, hint: Hint | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.hint = hint


class UserError(RegistryError):
    """The request was wrong: bad arguments, unknown names, invalid input."""

    code = "user_error"


class InvalidInput(UserError, ValueError):
    """An input file or value cannot be accepted."""

    code = "invalid_input"


class InvalidName(InvalidInput):
    """A dataset, ref or tag name breaks the naming rules."""

    code = "invalid_name"


class NotFound(UserError, LookupError):
    """A dataset, ref, snapshot or object does not exist (or the token may not see it)."""

    code = "not_found"


class AmbiguousRef(UserError, LookupError):
    """A snapshot id prefix matches more than one snapshot."""

    code = "ambiguous_ref"


class AlreadyExists(UserError):
    """A dataset or tag with that name exists already."""

    code = "already_exists"


class BreakingSchemaChange(InvalidInput):
    """A commit changes the schema in a breaking way without ``allow_breaking``."""

    code = "breaking_schema_change"


class HomeNotFound(UserError, FileNotFoundError):
    """The server has no registry home (a server-side configuration problem)."""

    code = "home_not_found"


class CatalogOutOfDate(UserError):
    """The server's catalog needs ``registry db upgrade``."""

    code = "catalog_out_of_date"


class StorageError(UserError, OSError):
    """The object store could not be read or written."""

    code = "storage_error"


class ConnectionFailed(StorageError):
    """No answer from the server: refused, timed out, or the connection broke mid-transfer."""

    code = "connection_failed"


class Conflict(RegistryError):
    """Another writer changed what this operation depended on."""

    code = "conflict"


class RefConflict(Conflict):
    """A branch moved between read and write (``expect_parent`` / If-Match lost)."""

    code = "ref_conflict"


class CheckFailed(RegistryError):
    """A check ran and found a problem."""

    code = "check_failed"


class VerifyFailed(CheckFailed):
    """A stored hash, manifest, snapshot id or pinned content hash does not match."""

    code = "verify_failed"


class GateBlocked(CheckFailed):
    """A snapshot's QA gate does not pass, so training may not use it."""

    code = "gate_blocked"


class UnresolvedConflicts(CheckFailed):
    """A merge found conflicts nothing resolved; nothing changed (HTTP 409). ``conflicts`` lists them."""

    code = "merge_conflicts"

    def __init__(self, message: str, status: int | None = None,
                 conflicts: list[dict[str, object]] | None = None, hint: Hint | None = None) -> None:
        super().__init__(message, status, hint)
        self.conflicts = conflicts or []


class PermissionDenied(UserError, PermissionError):
    """The token's role may not do this (HTTP 403)."""

    code = "permission_denied"


class Unauthenticated(UserError):
    """No valid token: missing, unknown, expired or revoked (HTTP 401)."""

    code = "unauthenticated"


class QueryInterrupted(UserError):
    """The query ran past the server's time limit, or was cancelled, and was stopped (HTTP 422)."""

    code = "query_interrupted"


class QuerySyntaxError(InvalidInput):
    """The SQL does not parse; the message keeps the parser's lines (the caret under the column)."""

    code = "query_syntax"


class TooLarge(InvalidInput):
    """The upload exceeds the server's size limit (HTTP 413)."""

    code = "too_large"


class UpstreamError(UserError):
    """A labeling tool's server (e.g. Label Studio) was unreachable, refused the token or failed (HTTP 502);
    nothing was committed."""

    code = "upstream_error"


class ServerError(RegistryError):
    """The server failed unexpectedly (HTTP 5xx); its log has the details."""

    code = "internal"


def _subclasses(cls: type[RegistryError]) -> list[type[RegistryError]]:
    found = [cls]
    for sub in cls.__subclasses__():
        found.extend(_subclasses(sub))
    return found


_BY_CODE: dict[str, type[RegistryError]] = {cls.code: cls for cls in _subclasses(RegistryError)}

_BY_STATUS: dict[int, type[RegistryError]] = {
    400: UserError,
    401: Unauthenticated,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    413: TooLarge,
    422: InvalidInput,
}


def error_for(status: int, code: str | None, message: str, hint: Hint | Mapping[str, Any] | None = None
              ) -> RegistryError:
    """The exception for an error response: by ``code``, else by ``status`` (5xx: :class:`ServerError`);
    ``hint`` is the body's ``error.hint`` (as sent, or already a :class:`Hint`)."""
    cls = _BY_CODE.get(code or "")
    if cls is None:
        cls = _BY_STATUS.get(status, ServerError if status >= 500 else UserError)
    error = cls(message, status)
    error.hint = hint if isinstance(hint, Hint) else Hint.from_body(hint)
    return error
