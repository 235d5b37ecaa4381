"""Validating inbound payloads against the schemas the driver is given (the plant's contract).

The driver knows no message contract of its own: the composition root hands it one pydantic
model per inbound kind (`scan`, `event`). The driver checks the size, validates the JSON against
that model and binds `site` and `work_center` from the topic, never from the body.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

#: One pydantic model per inbound kind; each model has `site` and `work_center` fields.
PayloadSchemas = Mapping[str, type[BaseModel]]


def validate_payload(model: type[BaseModel], raw: bytes, bound: Mapping[str, str]) -> Any:
    """Validate `raw` against `model` plus the topic-bound fields; ValidationError if bad."""
    parsed = model.model_validate_json(raw)
    # The topic is the authority on where a message came from: a body cannot claim another
    # work center.
    return parsed.model_copy(
        update={"site": bound.get("site", ""), "work_center": bound.get("work_center", "")}
    )


def describe_validation_error(err: ValidationError) -> str:
    """A short, operator-readable reason: 'malformed JSON: ...' or 'field: problem; ...'."""
    errors = err.errors(include_url=False, include_input=False)
    if any(e["type"] == "json_invalid" for e in errors):
        ctx: dict[str, Any] = errors[0].get("ctx") or {}
        return f"malformed JSON: {ctx.get('error', errors[0]['msg'])}"
    parts = []
    for e in errors[:5]:
        where = ".".join(str(p) for p in e["loc"]) or "payload"
        parts.append(f"{where}: {e['msg']}")
    if len(errors) > 5:
        parts.append(f"... {len(errors) - 5} more")
    return "invalid payload: " + "; ".join(parts)
