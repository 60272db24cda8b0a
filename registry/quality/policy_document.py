"""QA policy documents: the YAML schema, validation with line numbers, and the policy hash.

A policy is a YAML mapping::

    maintainers: [alice, bob]      # who may change this policy or waive a gate (besides the owner)
    checks:
      - check: row_count           # the check type
        name: enough_rows          # optional; defaults to the type, must be unique
        severity: error            # error blocks the gate (default); warn only reports
        min: 1000

The **policy hash** is the SHA-256 of the canonical JSON of the validated checks (defaults filled
in), so it changes exactly when the gate's meaning changes: editing maintainers, comments or
formatting keeps gate results current, while any check change makes them stale.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from registry.errors import InvalidInput

__all__ = ["CHECK_TYPES", "DEFAULT_LABEL_COLUMN", "Check", "Columns", "OneColumn", "Policy", "parse_policy",
           "policy_hash"]

Severity = Literal["error", "warn"]
Share = Annotated[float, Field(ge=0.0, le=1.0)]
Scalar = str | int | float | bool
DEFAULT_LABEL_COLUMN = "label"
"""The label column imports write and ``diff --labels`` reads; checks default to it."""


def _one_or_many(value: Any) -> Any:
    """``key: sample_id`` means ``key: [sample_id]``: a single column name is a list of one."""
    return [value] if isinstance(value, str) else value


def _just_one(value: Any) -> Any:
    """``key: [sample_id]`` means ``key: sample_id`` where one column is asked for."""
    if isinstance(value, list) and len(value) == 1:
        return value[0]
    if isinstance(value, list):
        raise ValueError(f"give one column, not {len(value)}")
    return value


Columns = Annotated[list[str], BeforeValidator(_one_or_many)]
"""Column names: a list, or one name as a string."""
OneColumn = Annotated[str, BeforeValidator(_just_one)]
"""One column name: a string, or a list of one."""


class _Check(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = Field(default=None, min_length=1, max_length=100)
    severity: Severity = "error"

    @property
    def check_name(self) -> str:
        """The check's name in results: ``name``, else its type."""
        return self.name or str(getattr(self, "check"))  # noqa: B009 - every subclass has ``check``


class _RecordsCheck(_Check):
    records: str | None = None
    """``DATASET@REF`` of annotation records in long form; default: the snapshot's own records."""
    include_models: bool = False
    """Also count model-made records (``source_kind`` other than ``human``)."""


class RowCount(_Check):
    check: Literal["row_count"]
    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _bounds(self) -> RowCount:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self


class UniqueKey(_Check):
    check: Literal["unique_key"]
    columns: Columns | None = Field(default=None, min_length=1)
    """Default: the dataset's key columns."""


class NotNull(_Check):
    check: Literal["not_null"]
    columns: Columns = Field(min_length=1)


class AllowedValues(_Check):
    check: Literal["allowed_values"]
    column: str
    values: list[Scalar] = Field(min_length=1)


class SchemaCompatible(_Check):
    check: Literal["schema_compatible"]


class MaxChangedFraction(_Check):
    check: Literal["max_changed_fraction"]
    max: Share


class ClassBalance(_Check):
    check: Literal["class_balance"]
    column: str
    min_share: Share | None = None
    max_share: Share | None = None

    @model_validator(mode="after")
    def _bounds(self) -> ClassBalance:
        if self.min_share is None and self.max_share is None:
            raise ValueError("give min_share, max_share or both")
        return self


class DistributionShift(_Check):
    check: Literal["distribution_shift"]
    column: str
    max_tvd: Share
    """Largest total variation distance allowed against the last snapshot that passed."""


class GoldAccuracy(_Check):
    check: Literal["gold_accuracy"]
    gold: str = Field(pattern=r"^[^@\s]+(@\S+)?$")
    label: str | None = None
    """The label column of this dataset (default: its ``label`` column)."""
    gold_label: str | None = None
    """The label column of the gold dataset (default: ``label``)."""
    key: Columns | None = Field(default=None, min_length=1)
    """Columns joining the two (default: this dataset's key columns)."""
    min_accuracy: Share
    min_class_accuracy: Share | None = None


class Agreement(_RecordsCheck):
    check: Literal["agreement"]
    metric: Literal["cohen_kappa", "fleiss_kappa", "krippendorff_alpha"]
    min: float = Field(ge=-1.0, le=1.0)
    min_items: int = Field(default=1, ge=1)
    """Fewest items rated by at least two annotators (Cohen: by both) for a meaningful figure."""
    annotators: list[str] | None = Field(default=None, min_length=2, max_length=2)
    """For ``cohen_kappa``: the two annotators to compare (default: the only two there are)."""


class AnnotatorAccuracy(_RecordsCheck):
    check: Literal["annotator_accuracy"]
    gold: str = Field(pattern=r"^[^@\s]+(@\S+)?$")
    label: str
    """The gold dataset's label column."""
    key: OneColumn | None = None
    """The gold dataset's column matching records' ``sample_key`` (default: its one key column)."""
    min_accuracy: Share
    min_items: int = Field(default=1, ge=1)
    """Annotators with fewer gold items than this are reported but not judged."""


class ProvenanceComplete(_RecordsCheck):
    check: Literal["provenance_complete"]
    label: str | None = None
    """The label column: rows where it is null are unlabeled and need no provenance (default: every row)."""
    include_models: bool = True
    min_fraction: Share = 1.0


Check = Annotated[
    RowCount | UniqueKey | NotNull | AllowedValues | SchemaCompatible | MaxChangedFraction | ClassBalance
    | DistributionShift | GoldAccuracy | Agreement | AnnotatorAccuracy | ProvenanceComplete,
    Field(discriminator="check"),
]
CHECK_TYPES = ("row_count", "unique_key", "not_null", "allowed_values", "schema_compatible", "max_changed_fraction",
               "class_balance", "distribution_shift", "gold_accuracy", "agreement", "annotator_accuracy",
               "provenance_complete")


class Policy(BaseModel):
    """A validated policy document."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    maintainers: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(default_factory=list)
    checks: list[Check] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_names(self) -> Policy:
        seen: set[str] = set()
        for number, check in enumerate(self.checks):
            if check.check_name in seen:
                raise _DuplicateName(number, check.check_name)
            seen.add(check.check_name)
        return self

    def canonical_checks(self) -> list[dict[str, Any]]:
        """The checks as JSON values with every default filled in and the name resolved."""
        return [{**check.model_dump(mode="json"), "name": check.check_name} for check in self.checks]


class _DuplicateName(ValueError):
    def __init__(self, number: int, name: str) -> None:
        super().__init__(f"two checks are named {name!r}; give one a different name")
        self.number = number


def policy_hash(checks: list[dict[str, Any]]) -> str:
    """SHA-256 of the canonical JSON of the checks (see the module docstring)."""
    body = json.dumps({"format": 1, "checks": checks}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(body.encode()).hexdigest()


def parse_policy(text: str, source: str = "policy") -> Policy:
    """Validate a policy document.

    Raises:
        InvalidInput: the YAML is malformed or breaks the schema; the message names the line and field.
    """
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise InvalidInput(f"{source}{where}: not valid YAML: {problem}") from exc
    if not isinstance(data, dict):
        raise InvalidInput(f"{source} line 1: a policy is a mapping with a 'checks' list (and optional "
                           "'maintainers'), not " + (type(data).__name__ if data is not None else "an empty document"))
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(_describe(exc, root, source)) from exc


def _describe(exc: ValidationError, root: yaml.Node | None, source: str) -> str:
    """``source line N: field: problem`` for each error (line of the deepest node that exists)."""
    lines = []
    for error in exc.errors():
        loc = list(error["loc"])
        ctx_error = (error.get("ctx") or {}).get("error")
        if isinstance(ctx_error, _DuplicateName):
            loc = ["checks", ctx_error.number, "name"]
        node, path = _locate(root, loc)
        line = node.start_mark.line + 1 if node is not None else 1
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "union_tag_invalid":
            tag = (error.get("ctx") or {}).get("tag")
            message = f"unknown check type {tag!r}; use one of {', '.join(CHECK_TYPES)}"
        elif error["type"] == "union_tag_not_found":
            message = f"each check needs 'check: TYPE' (one of {', '.join(CHECK_TYPES)})"
        elif error["type"] == "extra_forbidden":
            message = "unknown field"
        lines.append(f"{source} line {line}: {path or '(document)'}: {message}")
    return "; ".join(lines)


def _locate(root: yaml.Node | None, loc: list[int | str]) -> tuple[yaml.Node | None, str]:
    """The YAML node at a pydantic error location and its dotted path (union tags are skipped; a
    missing field points at the mapping that lacks it)."""
    node, path = root, ""
    for part in loc:
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            child = next((value for key, value in node.value if key.value == part), None)
            if child is None and part in CHECK_TYPES:
                continue  # the discriminator tag pydantic adds: not a node of the document
            path += f".{part}" if path else part
            if child is None:
                return node, path
            node = child
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            path += f"[{part}]"
        else:
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else part)
    return node, path
