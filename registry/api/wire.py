"""Answers checked against their wire model (``registry_client.models``) before they are sent.

Each route declares its model (``response_model=``, so the OpenAPI document describes the body) and
answers with :func:`wire` or :func:`wire_list`: the domain result's JSON, validated by the model and
sent unchanged (the same keys in the same order ``registry ... --json`` prints; anything not
JSON-native as its string, as the CLI prints it).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from fastapi.responses import JSONResponse
from registry_client.models import ListPublic, WireModel

__all__ = ["JSONBody", "wire", "wire_list"]


class JSONBody(JSONResponse):
    """JSON the way the CLI prints it: anything not JSON-native (numpy numbers, times) as its string."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, default=str, ensure_ascii=False, allow_nan=False).encode()


def wire(model: type[WireModel], data: object, status_code: int = 200) -> JSONBody:
    """``data`` (a JSON object) checked against ``model``, answered as it is.

    Raises:
        pydantic.ValidationError: the body does not fit its model (a server bug: answered as a 500).
    """
    model.model_validate(data)
    return JSONBody(data, status_code=status_code)


def wire_list(model: type[ListPublic], items: Iterable[object], status_code: int = 200) -> JSONBody:
    """The list endpoint's answer ``{"data": items, "count": len(items)}``, checked against ``model``."""
    data = list(items)
    return wire(model, {"data": data, "count": len(data)}, status_code)
