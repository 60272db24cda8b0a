"""``registry import``: read a labeling tool's export and commit it as the next snapshot, with its
annotation records, in one audited commit (action ``snapshot.import``)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from registry import catalog
from registry.context import Context
from registry.datasets import create_dataset
from registry.db import transaction
from registry.errors import Hint, InvalidInput, NotFound
from registry.lineage.emit import LineageRun
from registry.provenance.identity import apply_users, read_users
from registry.provenance.importers import (
    ImportBatch,
    parse_mapping,
    read_annotation_table,
    read_coco,
    read_label_studio,
    read_yolo,
)
from registry.refs import Ref
from registry.snapshots.commit import AnnotationInput, CommitResult, commit
from registry.snapshots.inputs import InputLimits

__all__ = ["FORMATS", "ImportResult", "ensure_dataset", "import_annotations"]

FORMATS = ("label-studio", "coco", "table", "yolo")


@dataclass(frozen=True)
class ImportResult:
    """The snapshot an import made, and what it read."""

    commit: CommitResult
    source_format: str
    batch_id: str
    samples: int
    records: int
    warnings: list[str] = field(default_factory=list)
    dataset_created: bool = False

    def to_dict(self) -> dict[str, object]:
        return {**self.commit.to_dict(), **{k: v for k, v in asdict(self).items() if k != "commit"}}


def import_annotations(ctx: Context, fmt: str, name: Ref | str, path: Path, *, key: str | None = None,
                       guideline_version: str | None = None, config: Path | None = None,
                       resolve: str = "gt-majority", mapping: str | None = None, message: str = "",
                       author: str | None = None, progress: Callable[[str], None] | None = None,
                       users: Path | None = None) -> ImportResult:
    """Import ``path`` (in format ``fmt``) into dataset ``name``, creating it keyed by the import's key
    column if it does not exist. The export is the full new content: samples and records missing
    from it are recorded as removed. ``users`` (Label Studio's ``/api/users/`` answer) fills annotator
    emails and names by id (see :mod:`registry.provenance.identity`).

    Raises:
        InvalidInput: unknown format, unreadable or malformed file, a file of another format, options
            that do not fit the format, a key column other than the dataset's.
        NotFound: ``path`` or ``config`` does not exist.
    """
    note = progress or (lambda _msg: None)
    for file, what in ((path, "file"), (config, "--config"), (users, "--users")):
        if file is not None and not file.is_file() and not (file is path and fmt == "yolo" and file.is_dir()):
            raise NotFound(f"{what} {file} does not exist")
    batch_id = uuid.uuid4().hex
    note(f"reading {path.name}")
    batch = _read(fmt, path, key=key, guideline_version=guideline_version, config=config, resolve=resolve,
                  mapping=mapping, batch_id=batch_id, limits=InputLimits.from_settings(ctx.settings.inputs))
    if users is not None:
        batch = replace(batch, records=apply_users(batch.records, read_users(users)))
    config_sha = ctx.store.put_bytes(config.read_bytes()).sha256 if config is not None else None
    target = Ref.coerce(name)  # NAME@BRANCH imports to a branch
    created = ensure_dataset(ctx, target.dataset, batch, author)
    details: dict[str, object] = {"format": batch.source_format, "file": path.name, "import_batch": batch_id,
                                  "samples": batch.rows.num_rows, "records": batch.records.num_rows,
                                  "guideline_version": guideline_version, "config_sha256": config_sha,
                                  "warnings": batch.warnings}
    result = commit(ctx, target, batch.rows, message=message or f"import {batch.source_format} export {path.name}",
                    author=author, mode="replace", progress=progress,
                    lineage=LineageRun(sources=(path.resolve().as_uri(),)),  # the export file is the run's input
                    annotations=AnnotationInput(batch.records, batch.label_column, replace=True,
                                                audit_action="snapshot.import", audit_details=details))
    return ImportResult(result, batch.source_format, batch_id, batch.rows.num_rows, batch.records.num_rows,
                        batch.warnings, created)


def _read(fmt: str, path: Path, *, key: str | None, guideline_version: str | None, config: Path | None,
          resolve: str, mapping: str | None, batch_id: str, limits: InputLimits) -> ImportBatch:
    if fmt not in FORMATS:
        raise InvalidInput(f"unknown import format {fmt!r}; use one of {', '.join(FORMATS)}")
    if fmt != "table" and mapping is not None:
        raise InvalidInput("a column mapping goes with the table format", hint=Hint("option", "map"))
    if fmt != "label-studio" and config is not None:
        raise InvalidInput("a labeling config goes with the label-studio format", hint=Hint("option", "config"))
    if fmt == "label-studio":
        return read_label_studio(path, key=key, guideline_version=guideline_version, config=config,
                                 resolve=resolve, batch_id=batch_id)
    if fmt == "coco":
        return read_coco(path, key=key, guideline_version=guideline_version, batch_id=batch_id)
    if fmt == "yolo":
        if key is not None:
            raise InvalidInput("a key field does not go with yolo: each label file is a sample, keyed by its name",
                               hint=Hint("option", "key"))
        return read_yolo(path, guideline_version=guideline_version, batch_id=batch_id)
    if mapping is None:
        raise InvalidInput("the table format needs a column mapping, e.g. key=item,annotator=worker_id,value=answer",
                           hint=Hint("option", "map", "key=item,annotator=worker_id,value=answer"))
    if key is not None:
        raise InvalidInput("with the table format, name the key column in the mapping (key=COLUMN)",
                           hint=Hint("option", "map", "key=COLUMN"))
    return read_annotation_table(path, mapping=parse_mapping(mapping), guideline_version=guideline_version,
                                 batch_id=batch_id, limits=limits)


def ensure_dataset(ctx: Context, name: str, batch: ImportBatch, author: str | None) -> bool:
    """Create ``name`` keyed by the import's key column, or check an existing one is keyed the same."""
    try:
        with transaction(ctx.engine, readonly=True) as session:
            keys = catalog.key_columns(catalog.get_dataset(session, name))
    except NotFound:
        create_dataset(ctx, name, [batch.key_column], description=f"imported from {batch.source_format}",
                       actor=author)
        return True
    if keys != [batch.key_column]:
        raise InvalidInput(f"{name} is keyed by {', '.join(keys)} but this import's key is {batch.key_column}; "
                           f"import with key field {keys[0]} (or into another dataset)",
                           hint=Hint("option", "key", keys[0]))
    return False
