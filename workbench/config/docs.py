"""The docstring under each settings field, read from the source when something asks for it.

Pydantic's `use_attribute_docstrings` reads every model's source while the class is created, about 30 ms
of each CLI and TUI start on Python 3.11 (it walks the import stack to find the class); the docstrings are
needed only for error hints and checks, so they are read here on demand, each module's source once.
"""

from __future__ import annotations

import ast
import inspect
import sys
from functools import cache
from itertools import pairwise

from pydantic import BaseModel


def field_doc(model: type[BaseModel], name: str) -> str:
    """The docstring of field `name` of `model` (or of the base class that declares it); "" when it has none."""
    for cls in model.__mro__:
        if name in inspect.get_annotations(cls):
            return _module_classes(cls.__module__).get(cls.__qualname__, {}).get(name, "")
    return ""


@cache
def _module_classes(module: str) -> dict[str, dict[str, str]]:
    """Qualified class name to {field: docstring} for every class of `module`."""
    try:
        source = inspect.getsource(sys.modules[module])
    except (KeyError, OSError, TypeError):
        return {}
    found: dict[str, dict[str, str]] = {}
    _collect(ast.parse(source).body, "", found)
    return found


def _collect(body: list[ast.stmt], prefix: str, found: dict[str, dict[str, str]]) -> None:
    for node in body:
        if isinstance(node, ast.ClassDef):
            qualname = f"{prefix}{node.name}"
            found[qualname] = _attribute_docs(node.body)
            _collect(node.body, f"{qualname}.", found)


def _attribute_docs(body: list[ast.stmt]) -> dict[str, str]:
    """`name: T = ...` followed by a string literal: the same rule as pydantic's `use_attribute_docstrings`."""
    docs: dict[str, str] = {}
    for previous, node in pairwise(body):
        if not (isinstance(previous, ast.AnnAssign) and isinstance(previous.target, ast.Name)):
            continue
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            docs[previous.target.id] = inspect.cleandoc(node.value.value)
    return docs
