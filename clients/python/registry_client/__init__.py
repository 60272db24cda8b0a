"""``registry_client``: a typed HTTP client for the dataset registry's API; never imports ``registry``.

>>> from registry_client import Client, GateBlocked               # doctest: +SKIP
>>> with Client("http://registry:8000", token="...") as reg:      # doctest: +SKIP
...     reg.commit("street-signs", "labels.parquet", message="relabel")
...     table = reg.load("street-signs@v2", job="train-resnet")
"""

from registry_client.client import Client
from registry_client.errors import (
    AlreadyExists,
    AmbiguousRef,
    BreakingSchemaChange,
    CatalogOutOfDate,
    CheckFailed,
    Conflict,
    ConnectionFailed,
    GateBlocked,
    Hint,
    HomeNotFound,
    InvalidInput,
    InvalidName,
    NotFound,
    PermissionDenied,
    QueryInterrupted,
    QuerySyntaxError,
    RefConflict,
    RegistryError,
    ServerError,
    StorageError,
    TooLarge,
    Unauthenticated,
    UnresolvedConflicts,
    UpstreamError,
    UserError,
    VerifyFailed,
)

__all__ = [
    "AlreadyExists",
    "AmbiguousRef",
    "BreakingSchemaChange",
    "CatalogOutOfDate",
    "CheckFailed",
    "Client",
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
]
