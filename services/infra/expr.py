"""The small part of ARM template expressions that offline checks need to resolve.

Only direct references are followed: `[parameters('x')]`, `[variables('x')]`, `[string(...)]` of
those, and variables whose values are literals or such references. Anything else is `UNKNOWN`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

PARAM_REF = re.compile(r"\bparameters\(\s*'([^']*)'\s*\)", re.IGNORECASE)
VAR_REF = re.compile(r"\bvariables\(\s*'([^']*)'\s*\)", re.IGNORECASE)
_DIRECT = re.compile(r"^\[\s*(parameters|variables)\(\s*'([^']*)'\s*\)\s*\]$", re.IGNORECASE)
_STRING_OF = re.compile(r"^\[\s*string\(\s*(parameters|variables)\(\s*'([^']*)'\s*\)\s*\)\s*\]$", re.IGNORECASE)


class _Unknown:
    """A value that cannot be known offline (an expression, or a parameter without a value)."""

    def __init__(self, why: str) -> None:
        self.why = why

    def __repr__(self) -> str:
        return f"<unknown: {self.why}>"


UNKNOWN = _Unknown("expression")
UNSET = _Unknown("parameter without a value")


def is_expression(value: object) -> bool:
    """True for an ARM expression string: `[...]`, but not the `[[` escape of a literal bracket."""
    return isinstance(value, str) and value.startswith("[") and not value.startswith("[[") and value.endswith("]")


def strings(node: Any) -> Iterator[str]:
    """Every string inside a JSON value (keys excluded)."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, Mapping):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)


def references(node: Any, pattern: re.Pattern[str]) -> set[str]:
    """Names referenced through `pattern` (PARAM_REF or VAR_REF) in the expressions inside `node`."""
    return {name for text in strings(node) if is_expression(text) for name in pattern.findall(text)}


class Resolver:
    """Resolves direct parameter and variable references against known values."""

    def __init__(self, template: Mapping[str, Any], values: Mapping[str, Any]) -> None:
        self.variables: Mapping[str, Any] = template.get("variables") or {}
        self.parameters: dict[str, Any] = {}
        for name, spec in (template.get("parameters") or {}).items():
            default = spec.get("defaultValue", UNSET) if isinstance(spec, Mapping) else UNSET
            self.parameters[name.lower()] = values.get(name, default)
        self.parameters.update({k.lower(): v for k, v in values.items()})

    def resolve(self, value: Any, depth: int = 0) -> Any:
        """The literal value behind `value`, or `UNKNOWN` / `UNSET`."""
        if not is_expression(value):
            return value[1:] if isinstance(value, str) and value.startswith("[[") else value
        if depth > 10:
            return UNKNOWN
        for pattern, wrap in ((_DIRECT, False), (_STRING_OF, True)):
            match = pattern.match(value)
            if match:
                found = self._lookup(match.group(1).lower(), match.group(2), depth)
                return _stringify(found) if wrap else found
        return UNKNOWN

    def _lookup(self, kind: str, name: str, depth: int) -> Any:
        if kind == "parameters":
            found = self.parameters.get(name.lower(), UNKNOWN)
            return self.resolve(found, depth + 1) if isinstance(found, str) else found
        variables = {k.lower(): v for k, v in self.variables.items()}
        return self.resolve(variables[name.lower()], depth + 1) if name.lower() in variables else UNKNOWN

    def variable_texts(self, value: Any) -> list[str]:
        """Literal strings of every variable that `value`'s expressions reference, followed transitively."""
        seen: set[str] = set()
        texts: list[str] = []
        pending = list(references(value, VAR_REF))
        variables = {k.lower(): v for k, v in self.variables.items()}
        while pending:
            name = pending.pop().lower()
            if name in seen or name not in variables:
                continue
            seen.add(name)
            texts += [s for s in strings(variables[name]) if not is_expression(s)]
            pending += list(references(variables[name], VAR_REF))
        return texts


def _stringify(value: Any) -> Any:
    if isinstance(value, _Unknown):
        return value
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)
