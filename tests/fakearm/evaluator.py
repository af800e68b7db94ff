"""Enough of ARM's template language for the fake to name resources and compute outputs.

Supports literals, nested calls, property and index access, lazy `if`, and the functions the
workbench's template uses. An unsupported function raises `EvalError`; the fake then keeps the
expression text, as a preview of values only known at deployment time would.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


class EvalError(Exception):
    """An expression the fake cannot evaluate."""


@dataclass
class Scope:
    """What expressions can see: where the deployment runs and its parameters and variables."""

    subscription: str
    group: str
    location: str
    parameters: dict[str, Any]
    variables: Mapping[str, Any]
    reference: Callable[[str, bool], Any] | None = None
    """Looks up a deployed resource's runtime state by id (`full` True for the whole resource)."""


def evaluate(value: Any, scope: Scope) -> Any:
    """`value` with every expression string in it evaluated (objects and arrays recursively)."""
    if isinstance(value, str):
        if value.startswith("[["):
            return value[1:]
        if value.startswith("[") and value.endswith("]"):
            return _Parser(value[1:-1], scope).parse()
        return value
    if isinstance(value, Mapping):
        return {key: evaluate(item, scope) for key, item in value.items()}
    if isinstance(value, list):
        return [evaluate(item, scope) for item in value]
    return value


def try_evaluate(value: Any, scope: Scope) -> Any:
    """Like `evaluate`, keeping the text of any expression that cannot be evaluated."""
    if isinstance(value, Mapping):
        return {key: try_evaluate(item, scope) for key, item in value.items()}
    if isinstance(value, list):
        return [try_evaluate(item, scope) for item in value]
    try:
        return evaluate(value, scope)
    except (EvalError, KeyError, IndexError, TypeError, ValueError):
        return value


def resource_id(scope: Scope, kind: str, *names: str) -> str:
    """`/subscriptions/S/resourceGroups/G/providers/NS/t1/n1/t2/n2` of a resource in the scope's group."""
    namespace, *types = kind.split("/")
    if len(types) != len(names):
        raise EvalError(f"resourceId('{kind}') needs {len(types)} names, got {len(names)}")
    pairs = "/".join(f"{t}/{n}" for t, n in zip(types, names, strict=True))
    return f"/subscriptions/{scope.subscription}/resourceGroups/{scope.group}/providers/{namespace}/{pairs}"


def unique_string(*parts: str) -> str:
    """A stable 13-character lowercase string, as ARM's uniqueString gives."""
    digest = hashlib.sha256("|".join(parts).encode()).digest()
    return base64.b32encode(digest).decode().lower()[:13]


def _get(node: Any, key: Any) -> Any:
    if isinstance(node, Mapping) and isinstance(key, str):
        for name, value in node.items():
            if name.lower() == key.lower():
                return value
        raise EvalError(f"no property '{key}'")
    if isinstance(node, list) and isinstance(key, int):
        return node[key]
    raise EvalError(f"cannot read '{key}' of {type(node).__name__}")


def _format(text: str, *args: Any) -> str:
    return text.format(*(_text(a) for a in args))


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _union(*objects: Any) -> Any:
    merged: dict[str, Any] = {}
    for obj in objects:
        merged.update(obj)
    return merged


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "format": _format,
    "concat": lambda *a: [x for part in a for x in part] if a and isinstance(a[0], list) else "".join(map(_text, a)),
    "take": lambda v, n: v[: int(n)],
    "tolower": lambda v: str(v).lower(),
    "toupper": lambda v: str(v).upper(),
    "string": _text,
    "int": int,
    "bool": lambda v: v if isinstance(v, bool) else str(v).lower() == "true",
    "uniquestring": unique_string,
    "equals": lambda a, b: a == b,
    "not": lambda a: not a,
    "and": lambda *a: all(a),
    "or": lambda *a: any(a),
    "empty": lambda v: not v,
    "startswith": lambda s, p: str(s).lower().startswith(str(p).lower()),
    "endswith": lambda s, p: str(s).lower().endswith(str(p).lower()),
    "contains": lambda c, v: v in c,
    "createobject": lambda *a: {a[i]: a[i + 1] for i in range(0, len(a), 2)},
    "union": _union,
    "base64": lambda s: base64.b64encode(str(s).encode()).decode(),
    "guid": lambda *a: str(uuid.uuid5(uuid.NAMESPACE_URL, "|".join(map(str, a)))),
    "null": lambda: None,
    "true": lambda: True,
    "false": lambda: False,
    "length": len,
}


class _Parser:
    def __init__(self, text: str, scope: Scope) -> None:
        self.text = text
        self.pos = 0
        self.scope = scope

    def parse(self) -> Any:
        value = self._expression(run=True)
        self._space()
        if self.pos != len(self.text):
            raise EvalError(f"unexpected text at {self.pos}: {self.text[self.pos :]!r}")
        return value

    def _space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def _peek(self) -> str:
        self._space()
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def _expect(self, char: str) -> None:
        if self._peek() != char:
            raise EvalError(f"expected {char!r} at {self.pos} in {self.text!r}")
        self.pos += 1

    def _expression(self, run: bool) -> Any:
        char = self._peek()
        if char == "'":
            value: Any = self._string()
        elif char.isdigit() or char == "-":
            value = self._number()
        else:
            value = self._call(run)
        return self._accessors(value, run)

    def _string(self) -> str:
        self.pos += 1
        out = []
        while True:
            if self.pos >= len(self.text):
                raise EvalError("unterminated string")
            char = self.text[self.pos]
            if char == "'":
                if self.text[self.pos + 1 : self.pos + 2] == "'":
                    out.append("'")
                    self.pos += 2
                    continue
                self.pos += 1
                return "".join(out)
            out.append(char)
            self.pos += 1

    def _number(self) -> int:
        start = self.pos
        self.pos += 1
        while self.pos < len(self.text) and self.text[self.pos].isdigit():
            self.pos += 1
        return int(self.text[start : self.pos])

    def _call(self, run: bool) -> Any:
        start = self.pos
        while self.pos < len(self.text) and (self.text[self.pos].isalnum() or self.text[self.pos] == "_"):
            self.pos += 1
        name = self.text[start : self.pos].lower()
        if not name:
            raise EvalError(f"expected a function at {start} in {self.text!r}")
        self._expect("(")
        if name == "if":
            return self._lazy_if(run)
        args = self._arguments(run)
        return self._apply(name, args) if run else None

    def _arguments(self, run: bool) -> list[Any]:
        args: list[Any] = []
        while self._peek() != ")":
            args.append(self._expression(run))
            if self._peek() == ",":
                self.pos += 1
        self._expect(")")
        return args

    def _lazy_if(self, run: bool) -> Any:
        condition = self._expression(run)
        self._expect(",")
        then = self._expression(run and bool(condition))
        self._expect(",")
        other = self._expression(run and not condition)
        self._expect(")")
        return then if condition else other

    def _accessors(self, value: Any, run: bool) -> Any:
        while self._peek() in {".", "["}:
            if self._peek() == ".":
                self.pos += 1
                start = self.pos
                while self.pos < len(self.text) and (self.text[self.pos].isalnum() or self.text[self.pos] == "_"):
                    self.pos += 1
                key: Any = self.text[start : self.pos]
            else:
                self.pos += 1
                key = self._expression(run)
                self._expect("]")
            value = _get(value, key) if run else None
        return value

    def _apply(self, name: str, args: list[Any]) -> Any:
        scoped = {
            "parameters": lambda: _get(self.scope.parameters, args[0]),
            "variables": lambda: evaluate(_get(self.scope.variables, args[0]), self.scope),
            "resourcegroup": self._resource_group,
            "subscription": lambda: {
                "id": f"/subscriptions/{self.scope.subscription}",
                "subscriptionId": self.scope.subscription,
            },
            "resourceid": lambda: resource_id(self.scope, *args),
            "subscriptionresourceid": lambda: f"/subscriptions/{self.scope.subscription}/providers/{'/'.join(args)}",
            "reference": lambda: self._reference(args),
        }
        if name in scoped:
            return scoped[name]()
        if name in FUNCTIONS:
            return FUNCTIONS[name](*args)
        raise EvalError(f"the fake does not support {name}()")

    def _resource_group(self) -> dict[str, str]:
        scope = self.scope
        group_id = f"/subscriptions/{scope.subscription}/resourceGroups/{scope.group}"
        return {"id": group_id, "name": scope.group, "location": scope.location}

    def _reference(self, args: list[Any]) -> Any:
        if self.scope.reference is None:
            raise EvalError("reference() is only known at deployment time")
        return self.scope.reference(str(args[0]), len(args) > 2 and str(args[2]).lower() == "full")
