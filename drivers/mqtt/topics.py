"""Topic templates: `mes/{site}/{work_center}/scan` subscribes as `mes/+/+/scan`, binds fields."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

_PLACEHOLDER = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_]*)\}$")


@dataclass(frozen=True, slots=True)
class TopicTemplate:
    """A topic pattern whose `{name}` levels become `+` wildcards and bind values on a match."""

    template: str
    #: Per level: the literal text, or None where a placeholder stands.
    _literals: tuple[str | None, ...]
    #: Per level: the placeholder name, or None where a literal stands.
    _names: tuple[str | None, ...]

    @classmethod
    def parse(cls, template: str) -> TopicTemplate:
        """Parse and check a template; raises ValueError with the reason when it cannot work."""
        if not template or template.startswith("$"):
            raise ValueError(f"topic template {template!r} is empty or starts with '$'")
        literals: list[str | None] = []
        names: list[str | None] = []
        for level in template.split("/"):
            found = _PLACEHOLDER.match(level)
            if found:
                if found.group(1) in names:
                    raise ValueError(f"placeholder {{{found.group(1)}}} twice in {template!r}")
                literals.append(None)
                names.append(found.group(1))
            elif any(ch in level for ch in "+#{}"):
                # Placeholders must fill a whole level: a partial one cannot map to a wildcard.
                raise ValueError(f"level {level!r} of {template!r} is neither literal nor {{name}}")
            else:
                literals.append(level)
                names.append(None)
        return cls(template, tuple(literals), tuple(names))

    @property
    def placeholders(self) -> tuple[str, ...]:
        """The placeholder names, in topic order."""
        return tuple(n for n in self._names if n is not None)

    def subscription(self, fixed: Mapping[str, str] | None = None) -> str:
        """The subscription filter: `+` for each placeholder unless `fixed` gives its value."""
        fixed = fixed or {}
        return "/".join(
            fixed.get(name, "+") if name is not None else (lit or "")
            for lit, name in zip(self._literals, self._names, strict=True)
        )

    def match(self, topic: str) -> dict[str, str] | None:
        """The bound placeholder values if `topic` fits this template, else None."""
        levels = topic.split("/")
        if len(levels) != len(self._literals):
            return None
        bound: dict[str, str] = {}
        for level, lit, name in zip(levels, self._literals, self._names, strict=True):
            if name is None:
                if level != lit:
                    return None
            elif not level:
                return None  # an empty level binds nothing useful (e.g. `mes//PRESS-01/scan`)
            else:
                bound[name] = level
        return bound

    def render(self, **values: str) -> str:
        """The concrete topic for the given placeholder values (for publishers and tests)."""
        return "/".join(
            values[name] if name is not None else (lit or "")
            for lit, name in zip(self._literals, self._names, strict=True)
        )
