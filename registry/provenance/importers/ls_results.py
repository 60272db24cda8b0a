"""Label Studio pieces both of its export shapes share: result values, annotators, reviews, config.

An annotation's ``result`` list becomes one record value:

- only classification results (``choices``): the label (see :func:`labels_from_choices`),
  ``value_type`` ``choices``;
- one other result: canonical JSON of its ``value``, ``value_type`` its ``type``;
- several results: canonical JSON of ``[{"from_name", "to_name", "type", "value"}, ...]`` in
  export order, ``value_type`` the sorted distinct types joined with ``+`` (``choices+textarea``);
- no result (a cancelled or empty annotation): null value and type.

Result types Label Studio does not document are kept the same way (raw) and reported once each.
"""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from registry.errors import InvalidInput
from registry.provenance.importers.common import UnknownTypes, as_str, canonical_json
from registry.provenance.importers.resolve import labels_from_choices

__all__ = [
    "KNOWN_RESULT_TYPES",
    "LabelConfig",
    "annotation_value",
    "annotator_fields",
    "person_fields",
    "read_config",
    "review_fields",
]

KNOWN_RESULT_TYPES = frozenset({
    "choices", "labels", "rectanglelabels", "rectangle", "polygonlabels", "polygon", "keypointlabels",
    "keypoint", "ellipselabels", "ellipse", "brushlabels", "brush", "bitmasklabels", "bitmask", "textarea",
    "rating", "number", "datetime", "taxonomy", "pairwise", "ranker", "relation", "hypertextlabels",
    "paragraphlabels", "timeserieslabels", "videorectangle", "timelinelabels", "magicwand",
})


@dataclass(frozen=True)
class LabelConfig:
    """A labeling configuration file: its text, hash and control tags (``name`` -> result type)."""

    text: str
    sha256: str
    controls: dict[str, str]
    targets: dict[str, str]


def read_config(path: Path | None) -> LabelConfig | None:
    """Read and hash a labeling config XML.

    Raises:
        InvalidInput: the file is missing, not UTF-8 or not well-formed XML.
    """
    if path is None:
        return None
    if not path.is_file():
        raise InvalidInput(f"{path}: no such labeling config file")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
        root = ET.fromstring(text)
    except (UnicodeDecodeError, ET.ParseError) as exc:
        raise InvalidInput(f"{path}: not a labeling config (well-formed XML expected): {exc}") from None
    controls: dict[str, str] = {}
    targets: dict[str, str] = {}
    for element in root.iter():
        name, to_name = element.get("name"), element.get("toName")
        if name and to_name:
            controls[name] = element.tag.lower()
            targets[name] = to_name
    return LabelConfig(text, hashlib.sha256(raw).hexdigest(), controls, targets)


def _choices(result: dict[str, Any]) -> list[str] | None:
    """The choices of a classification result (none chosen if its value has no list), else ``None``."""
    if result.get("type") != "choices":
        return None
    value = result.get("value")
    choices = value.get("choices") if isinstance(value, dict) else None
    return [str(c) for c in choices] if isinstance(choices, list) else []


def _raw_value(result: dict[str, Any]) -> Any:
    if "value" in result:
        return result["value"]
    return {k: v for k, v in result.items() if k not in ("id", "type", "origin")}


def annotation_value(results: Any, where: str, unknown: UnknownTypes) -> tuple[str | None, str | None]:
    """``(value, value_type)`` of an annotation's ``result`` list (rules in the module docstring).

    Raises:
        InvalidInput: ``result`` is not a list of objects.
    """
    if not results:
        return None, None
    only = results[0] if isinstance(results, list) and len(results) == 1 else None
    if isinstance(only, dict) and only.get("type") == "choices":
        value = only.get("value")
        choices = value.get("choices") if isinstance(value, dict) else None
        if isinstance(choices, list) and len(choices) == 1:  # the common case: one single-choice answer
            return str(choices[0]), "choices"
    if not isinstance(results, list) or not all(isinstance(r, dict) for r in results):
        raise InvalidInput(f"{where}: 'result' must be a list of objects")
    types = []
    for result in results:
        kind = str(result.get("type") or "unknown")
        unknown.see(kind, where)
        types.append(kind)
    choices = [_choices(r) for r in results]
    if all(c is not None for c in choices):
        parts = [(str(r.get("from_name")), c or []) for r, c in zip(results, choices, strict=True)]
        return labels_from_choices(parts), "choices"
    if len(results) == 1:
        return canonical_json(_raw_value(results[0])), types[0]
    listed = [{"from_name": r.get("from_name"), "to_name": r.get("to_name"), "type": kind, "value": _raw_value(r)}
              for r, kind in zip(results, types, strict=True)]
    return canonical_json(listed), "+".join(sorted(set(types)))


def person_fields(person: Any) -> tuple[str | None, str | None, str | None]:
    """``(id, email, name)`` of a Label Studio user given as an id, an email or an object."""
    if person is None:
        return None, None, None
    if type(person) is int:
        return str(person), None, None
    if isinstance(person, dict):
        full = " ".join(str(person.get(k) or "").strip() for k in ("first_name", "last_name")).strip()
        name = full or as_str(person.get("username")) or None
        return as_str(person.get("id")), as_str(person.get("email")), name
    text = as_str(person)
    if text is not None and "@" in text:
        return None, text, None
    return text, None, None


def annotator_fields(completed_by: Any) -> dict[str, str | None]:
    """Record fields of ``completed_by`` (an integer id, an email, or a user object)."""
    annotator_id, email, name = person_fields(completed_by)
    return {"annotator_id": annotator_id, "annotator_email": email, "annotator_name": name}


def review_fields(annotation: dict[str, Any]) -> dict[str, str | None]:
    """Reviewer and review state from the last entry of an annotation's ``reviews`` (Enterprise exports)."""
    reviews = annotation.get("reviews")
    if not isinstance(reviews, list) or not reviews or not isinstance(reviews[-1], dict):
        return {"reviewer": None, "review_state": None}
    last = reviews[-1]
    reviewer_id, email, name = person_fields(last.get("created_by") or last.get("reviewer"))
    accepted = last.get("accepted")
    state = "accepted" if accepted is True else "rejected" if accepted is False else as_str(last.get("state"))
    return {"reviewer": email or reviewer_id or name, "review_state": state}
