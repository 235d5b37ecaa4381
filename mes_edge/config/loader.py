"""Reading the plant file: ${ENV} interpolation, YAML, validation errors with key paths."""

from __future__ import annotations

import difflib
import os
import re
import types
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from mes_edge.config.settings import Settings

_ENV = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")


class ConfigError(Exception):
    """The plant file cannot be used; the message says where and why."""


def _interpolate(node: Any, path: str) -> Any:
    if isinstance(node, dict):
        return {k: _interpolate(v, f"{path}.{k}" if path else str(k)) for k, v in node.items()}
    if isinstance(node, list):
        return [_interpolate(v, f"{path}[{i}]") for i, v in enumerate(node)]
    if isinstance(node, str):
        def repl(m: re.Match[str]) -> str:
            value = os.environ.get(m["name"], m["default"])
            if value is None:
                raise ConfigError(f"{path}: environment variable {m['name']} is not set")
            return value
        return _ENV.sub(repl, node)
    return node


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("modbus", "opcua") and out.endswith("]"):
            continue  # the discriminator's tag adds nothing for people
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation can hold (through Optional, unions, lists, dicts)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _models_in(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType, list, tuple, set, frozenset):
        return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]
    if origin is dict:
        return _models_in(typing.get_args(annotation)[1])
    return []


def _literals(annotation: Any) -> set[object]:
    if typing.get_origin(annotation) is typing.Literal:
        return set(typing.get_args(annotation))
    return set()


def _known_keys(root: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """The field names valid at `loc` (the path of the parent of a bad key)."""
    candidates: list[type[BaseModel]] = [root]
    for part in loc:
        if isinstance(part, int):
            continue  # a list index: the items are the same models
        fields = [m for m in candidates if part in m.model_fields]
        if fields:
            candidates = [x for m in fields for x in _models_in(m.model_fields[part].annotation)]
            continue
        # A discriminated union's tag (e.g. 'modbus') or a dict key: narrow by the tag if any.
        tagged = [m for m in candidates
                  if any(part in _literals(f.annotation) for f in m.model_fields.values())]
        candidates = tagged or candidates
    return sorted({name for m in candidates for name in m.model_fields})


def _did_you_mean(e: Any) -> str:
    """'; did you mean 'x'?' for an unknown key close to a known one at the same place."""
    if e.get("type") != "extra_forbidden" or not e["loc"] or not isinstance(e["loc"][-1], str):
        return ""
    close = difflib.get_close_matches(e["loc"][-1], _known_keys(Settings, tuple(e["loc"][:-1])),
                                      n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def format_validation_error(err: ValidationError) -> str:
    """One line per problem: `key.path: what is wrong (got: value)`, and for an unknown key
    close to a known one: `; did you mean 'key'?`."""
    lines = []
    for e in err.errors():
        msg = e["msg"].removeprefix("Value error, ") + _did_you_mean(e)
        got = e.get("input")
        shown = "" if isinstance(got, dict | list) or got is None else f" (got: {got!r})"
        lines.append(f"{_loc(tuple(e['loc']))}: {msg}{shown}")
    return "\n".join(lines)


def parse_settings(data: Any, source: str = "config") -> Settings:
    """Validate an already-parsed document."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of keys")
    data = _interpolate(data, "")
    try:
        return Settings(**data)
    except ValidationError as err:
        raise ConfigError(f"{source} is not valid:\n{format_validation_error(err)}") from err


def load_settings(path: str | Path) -> Settings:
    """Read and validate a plant file; ConfigError says what is wrong and where."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"cannot read {p}: {err.strerror}") from err
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{p} is not valid YAML: {err}") from err
    return parse_settings(data, str(p))
