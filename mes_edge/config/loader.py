"""Reading the plant file: ${ENV} interpolation, YAML, validation errors with key paths."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

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


def format_validation_error(err: ValidationError) -> str:
    """One line per problem: `key.path: what is wrong (got: value)`."""
    lines = []
    for e in err.errors():
        msg = e["msg"].removeprefix("Value error, ")
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
