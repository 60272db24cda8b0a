"""Importers from labeling tools: Label Studio (JSON, JSON_MIN, CSV/TSV), COCO, YOLO, annotation tables.

Each reader returns an :class:`ImportBatch`: a rows table (one row per sample, resolved label where
the format has one) and annotation records in :data:`~registry.provenance.records.RECORD_SCHEMA`.
Readers only parse; storing and committing are the caller's. Every bad input is
:class:`~registry.errors.InvalidInput`. Formats and decisions: ``docs/importers.md``.
"""

from __future__ import annotations

from registry.provenance.importers.coco import read_coco
from registry.provenance.importers.common import ImportBatch
from registry.provenance.importers.label_studio import read_label_studio
from registry.provenance.importers.resolve import RESOLVE_STRATEGIES, label_of, resolve_labels
from registry.provenance.importers.table import TARGETS, parse_mapping, read_annotation_table
from registry.provenance.importers.yolo import read_yolo

__all__ = [
    "RESOLVE_STRATEGIES",
    "TARGETS",
    "ImportBatch",
    "label_of",
    "parse_mapping",
    "read_annotation_table",
    "read_coco",
    "read_label_studio",
    "read_yolo",
    "resolve_labels",
]
