"""No import cycles, counted the way grimp counts them: function-level and TYPE_CHECKING imports included.

Two kinds: modules that import each other round a loop, and sibling packages (or a package and a
sibling module) that reach each other in both directions through any of their modules.
The graph holds every first-party package, so a loop through another package is seen too.
"""

from __future__ import annotations

from itertools import combinations

import grimp
import pytest

PACKAGES = ("workbench", "services", "appkit")


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(*PACKAGES, include_external_packages=False, cache_dir=None)


def module_cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan's algorithm, without recursion)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, targets = work[-1]
            target = next(targets, None)
            if target is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    if len(group) > 1:
                        groups.append(sorted(group))
            elif target not in index:
                index[target] = low[target] = len(index)
                stack.append(target)
                on_stack.add(target)
                work.append((target, iter(sorted(graph.find_modules_directly_imported_by(target)))))
            elif target in on_stack:
                low[node] = min(low[node], index[target])
    return groups


def package_cycles(graph: grimp.ImportGraph) -> list[tuple[str, str]]:
    """Pairs of siblings (the top-level packages count as siblings) that import each other, directly or not."""
    families = [sorted(PACKAGES)] + [sorted(graph.find_children(m)) for m in sorted(graph.modules)]
    return [
        (a, b)
        for family in families
        for a, b in combinations(family, 2)
        if graph.chain_exists(a, b, as_packages=True) and graph.chain_exists(b, a, as_packages=True)
    ]


def test_no_module_imports_itself_round_a_loop(graph: grimp.ImportGraph) -> None:
    cycles = module_cycles(graph)
    assert cycles == [], "modules importing each other in a loop:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_no_two_packages_import_each_other(graph: grimp.ImportGraph) -> None:
    pairs = package_cycles(graph)
    lines = [
        f"{a} <-> {b}: "
        f"{' -> '.join(min(graph.find_shortest_chains(a, b, as_packages=True)))} and back "
        f"{' -> '.join(min(graph.find_shortest_chains(b, a, as_packages=True)))}"
        for a, b in pairs
    ]
    assert pairs == [], "packages importing each other:\n" + "\n".join(lines)


def test_the_check_finds_a_cycle() -> None:
    """The checks themselves work: loops added to a fresh graph are found by both."""
    looped = grimp.build_graph(*PACKAGES, include_external_packages=False, cache_dir=None)
    looped.add_import(importer="services.errors", imported="services.files")
    looped.add_import(importer="services.files", imported="services.errors")
    assert ["services.errors", "services.files"] in module_cycles(looped)
    looped.add_import(importer="services.store", imported="services.rag.types")
    looped.add_import(importer="services.rag.types", imported="services.store")
    assert ("services.rag", "services.store") in package_cycles(looped)
