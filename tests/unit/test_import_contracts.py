"""Every first-party module sits under some import-linter contract in pyproject's `[tool.importlinter]`.

A module counts as covered when a contract that constrains it names it, or a package above it:
a layer of a `layers` contract (under its containers, if any), a container itself, a source module
of a `forbidden` contract, or a module of an `independence` contract. Being only a *forbidden*
target or an ignored import constrains nothing, so it does not count.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[2]
NOT_SHIPPED = {"tests"}


def first_party_packages() -> list[str]:
    """Top-level packages at the repo root (bar tests) and the one package of each app under apps/."""
    found = {p.parent.name for p in ROOT.glob("*/__init__.py")} - NOT_SHIPPED
    found |= {p.parent.name for p in ROOT.glob("apps/*/*/__init__.py") if p.parent.name == p.parent.parent.name}
    return sorted(found)


def importlinter_config() -> dict[str, Any]:
    with (ROOT / "pyproject.toml").open("rb") as fh:
        section: dict[str, Any] = tomllib.load(fh)["tool"]["importlinter"]
    return section


def layer_names(layer: str) -> list[str]:
    """The modules of one layer entry: `a | b`, `a : b`, optional `(a)`."""
    return [name.strip("() ") for name in re.split(r"[|:]", layer) if name.strip("() ")]


def covering_names(contracts: list[dict[str, Any]]) -> set[str]:
    names: set[str] = set()
    for contract in contracts:
        kind = contract.get("type")
        if kind == "layers":
            containers = contract.get("containers", [])
            names.update(containers)
            for layer in contract["layers"]:
                for name in layer_names(layer):
                    if containers:
                        names.update(f"{container}.{name}" for container in containers)
                    else:
                        names.add(name)
        elif kind == "forbidden":
            names.update(contract["source_modules"])
        elif kind == "independence":
            names.update(contract["modules"])
    return names


def is_covered(module: str, names: set[str]) -> bool:
    parts = module.split(".")
    return any(".".join(parts[:i]) in names for i in range(1, len(parts) + 1))


@pytest.fixture(scope="module")
def modules() -> set[str]:
    graph = grimp.build_graph(*first_party_packages(), include_external_packages=False, cache_dir=None)
    return set(graph.modules)


def test_every_first_party_package_is_a_root_package() -> None:
    missing = sorted(set(first_party_packages()) - set(importlinter_config()["root_packages"]))
    assert missing == [], f"first-party packages missing from [tool.importlinter] root_packages: {missing}"


def test_every_first_party_module_is_in_a_contract(modules: set[str]) -> None:
    names = covering_names(importlinter_config()["contracts"])
    uncovered = sorted(m for m in modules if not is_covered(m, names))
    assert uncovered == [], "modules no import-linter contract constrains:\n" + "\n".join(uncovered)


def test_the_module_list_is_real(modules: set[str]) -> None:
    """Guard against a vacuous pass: the graph holds every package and more than their roots."""
    assert set(first_party_packages()) >= {"workbench", "services", "appkit", "bench"}
    assert set(first_party_packages()) <= modules
    assert len(modules) > len(first_party_packages()) * 2
