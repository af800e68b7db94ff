"""Cost markers set from what a test uses, so `make quick` can leave the expensive ones out.

A test gets a marker when its function, a fixture it requests, or a helper in `tests/` that either
of them calls (followed through the code, not by name) reaches one of the functions in `COSTS`:

- `testbed`: the real services of `scripts/testbed up` (engines, registry, Azurite, deploy host);
- `images`: docker image builds on the test bed's engine;
- `training`: a fine-tune trainer process on the demo model.

What the code cannot show (an import inside a function, a trainer the app starts from a button)
is marked by hand with `@pytest.mark.<name>`; the markers are registered in pyproject.toml.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from types import CodeType, FunctionType, ModuleType
from typing import Any

import pytest

COSTS: dict[str, frozenset[str]] = {
    "testbed": frozenset({"tests.testbed:read_testbed"}),
    "images": frozenset(
        {"tests.integration.images_support:images_bed", "tests.integration.deploy_support:build_and_push"}
    ),
    "training": frozenset(
        {
            "services.finetune.jobs:launch",
            "services.finetune.jobs:resume",
            "tests.ui.finetune_support:start_job",
            "tests.ui.finetune_support:finished_job",
        }
    ),
}
"""Marker -> the functions (`module:qualname`) whose use earns it."""

_FOLLOWED = {"tests", "services"}
"""Packages whose modules' attributes are looked at (others may import lazily on attribute access)."""

_REACHED: dict[FunctionType, frozenset[str]] = {}


def _codes(code: CodeType) -> Iterator[CodeType]:
    """`code` and the code of every function or lambda defined inside it."""
    yield code
    for const in code.co_consts:
        if isinstance(const, CodeType):
            yield from _codes(const)


def _referenced(function: FunctionType) -> Iterator[Any]:
    """The globals `function` names, and the attributes it reads of the modules among them."""
    names = {name for code in _codes(function.__code__) for name in code.co_names}
    for name in names:
        value = function.__globals__.get(name)
        yield value
        if isinstance(value, ModuleType) and value.__name__.split(".")[0] in _FOLLOWED:
            yield from (getattr(value, attr) for attr in names if hasattr(value, attr))


def _key(function: FunctionType) -> str:
    return f"{function.__module__}:{function.__qualname__}"


def reached(function: FunctionType) -> frozenset[str]:
    """`module:qualname` of every function `function` uses, following helpers defined in `tests`."""
    if function not in _REACHED:
        _REACHED[function] = frozenset()  # a recursive helper ends here
        found: set[str] = set()
        for value in _referenced(function):
            if isinstance(value, FunctionType):
                used = inspect.unwrap(value)
                found.add(_key(used))
                if used.__module__.startswith("tests."):
                    found |= reached(used)
        _REACHED[function] = frozenset(found)
    return _REACHED[function]


def _functions(item: pytest.Function) -> Iterator[FunctionType]:
    """The test function and every fixture function it requests (directly or through other fixtures)."""
    yield inspect.unwrap(item.function)
    for definitions in item._fixtureinfo.name2fixturedefs.values():
        for definition in definitions:
            function = inspect.unwrap(definition.func)
            if isinstance(function, FunctionType):
                yield function


def costs_of(item: pytest.Function) -> set[str]:
    """The cost markers `item` earns from what it uses."""
    used = frozenset().union(*(reached(f) | {_key(f)} for f in _functions(item)))
    return {marker for marker, functions in COSTS.items() if used & functions}


def mark_costs(items: list[pytest.Item]) -> None:
    """Add the cost markers to every test function in `items`; images imply the test bed."""
    for item in items:
        if not isinstance(item, pytest.Function):
            continue
        costs = costs_of(item) | {mark.name for mark in item.iter_markers() if mark.name in COSTS}
        if "images" in costs:
            costs.add("testbed")
        for marker in sorted(costs):
            item.add_marker(marker)
