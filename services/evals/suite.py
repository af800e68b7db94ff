"""Prompt suites: a YAML file of variants, cases and assertions, validated with `file:line` errors.

```yaml
variants:                       # each one a services.chat.variant.Variant
  - {name: base, model: workbench-demo/tiny-llama}
default_asserts:                # checked on every case
  - {type: latency-ms, value: 30000}
cases:
  - name: gpu
    question: Which machine has the {thing}?
    vars: {thing: GPU}          # fill {thing} in the question and the variants' templates
    reference: The development server.
    variants: [base]            # optional: only these variants
    asserts:
      - {type: icontains, value: development}
```

A variant's `adapter` is a PEFT folder: `load_suite` makes a relative one relative to the suite
file, and one with a wildcard names the newest finished adapter that matches it
(`../jobs/demo-tiny-llama-*/adapter`: the latest run of that job in the suite's workspace).

The file is parsed twice: PyYAML composes the node tree (whose marks give every key's line),
and pydantic validates the plain data; each validation error's location is mapped back to the
line of the deepest key or list item it names.
"""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from services.chat.variant import Variant
from services.errors import SuiteError
from services.evals.assertions import KINDS, Assertion, Similar

Loc = tuple[str | int, ...]


class Case(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    question: str = Field(min_length=1)
    vars: dict[str, str | int | float | bool] = Field(default_factory=dict)
    reference: str | None = None
    variants: list[str] | None = None
    asserts: list[Assertion] = Field(default_factory=list)

    def text_vars(self) -> dict[str, str]:
        return {key: str(value) for key, value in self.vars.items()}


class Suite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str = ""
    variants: list[Variant] = Field(min_length=1)
    default_asserts: list[Assertion] = Field(default_factory=list)
    cases: list[Case] = Field(min_length=1)
    _path: Path = PrivateAttr(default=Path("suite.yaml"))

    @property
    def path(self) -> Path:
        return self._path

    def variant(self, name: str) -> Variant:
        return next(v for v in self.variants if v.name == name)

    def variants_of(self, case: Case) -> list[Variant]:
        return [v for v in self.variants if case.variants is None or v.name in case.variants]


def load_suite(path: Path) -> Suite:
    """Read and validate a suite file, its adapters located (`resolve_adapters`); SuiteError lists
    each problem as `file:line: field: reason`."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise SuiteError(f"{path}: cannot read the suite ({exc.strerror})", hint="check the path") from None
    return resolve_adapters(parse_suite(text, path))


def resolve_adapters(suite: Suite) -> Suite:
    """The suite with every adapter an absolute path: a relative one is relative to the suite's folder,
    and one with a wildcard becomes the newest finished adapter that matches it (left as the absolute
    pattern when none does, so its cases fail with "no adapter_config.json" and the others still run)."""
    for index, variant in enumerate(suite.variants):
        if variant.adapter:
            adapter = str(locate_adapter(variant.adapter, suite.path.parent))
            suite.variants[index] = variant.model_copy(update={"adapter": adapter})
    return suite


WILDCARDS = frozenset("*?[")


def locate_adapter(adapter: str, base: Path) -> Path:
    """`adapter` (`~` expanded) from the folder `base`; a pattern: its newest match that holds adapter
    weights. Patterns match one folder level per component (`**` is not recursive)."""
    path = (base / Path(adapter).expanduser()).absolute()
    if not WILDCARDS & set(str(path)):
        return path
    finished = [Path(match) for match in glob.glob(str(path)) if _has_weights(Path(match))]
    if not finished:
        return path
    newest = max(finished, key=lambda folder: ((folder / "adapter_config.json").stat().st_mtime_ns, str(folder)))
    return newest.resolve()


def _has_weights(folder: Path) -> bool:
    names = ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin")
    return (folder / names[0]).is_file() and any((folder / name).is_file() for name in names[1:])


def parse_suite(text: str, path: Path) -> Suite:
    """Validate suite YAML text; `path` names it in errors and becomes `suite.path`."""
    data, lines = _compose(text, path)
    try:
        suite = Suite.model_validate(data)
    except ValidationError as exc:
        raise _suite_error(path, lines, [(tuple(e["loc"]), _reason(e)) for e in exc.errors()]) from None
    problems = consistency_problems(suite)
    if problems:
        raise _suite_error(path, lines, problems)
    suite._path = path
    return suite


def _compose(text: str, path: Path) -> tuple[Any, dict[Loc, int]]:
    import yaml  # type: ignore[import-untyped]

    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 1
        raise SuiteError(f"{path}:{line}: yaml: {exc.problem or exc}", hint="fix the YAML syntax") from None
    if not isinstance(data, dict):
        raise SuiteError(f"{path}:1: suite: expected a mapping with variants and cases", hint="see the README")
    return data, node_lines(node)


def node_lines(node: Any, loc: Loc = ()) -> dict[Loc, int]:
    """Line (1-based) of every key and list item in a composed YAML node tree, by location."""
    import yaml  # type: ignore[import-untyped]

    lines: dict[Loc, int] = {loc: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = (*loc, str(key.value))
            lines |= node_lines(value, child)
            lines[child] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines |= node_lines(item, (*loc, index))
    return lines


def line_of(lines: dict[Loc, int], loc: Loc) -> int:
    """The line of the deepest known prefix of `loc`."""
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return 1


def field_name(loc: Loc) -> str:
    """`cases[2].asserts[0].value` (pydantic's union tags left out)."""
    parts: list[str] = []
    for part in loc:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        elif part not in KINDS:
            parts.append(f".{part}" if parts else part)
    return "".join(parts) or "suite"


def _reason(error: Any) -> str:
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "union_tag_invalid":
        message = "type must be one of " + ", ".join(KINDS)
    return message


def _suite_error(path: Path, lines: dict[Loc, int], problems: list[tuple[Loc, str]]) -> SuiteError:
    located = [(line_of(lines, loc), field_name(loc), reason) for loc, reason in problems]
    text = "\n".join(f"{path}:{line}: {name}: {reason}" for line, name, reason in sorted(located))
    return SuiteError(text, hint="fix the suite file and run again")


def consistency_problems(suite: Suite) -> list[tuple[Loc, str]]:
    """Cross-field problems: duplicate names, unknown variants, `similar` without a reference."""
    problems = _duplicates("variants", [v.name for v in suite.variants])
    problems += _duplicates("cases", [c.name for c in suite.cases])
    known = {v.name for v in suite.variants}
    for index, case in enumerate(suite.cases):
        for position, name in enumerate(case.variants or []):
            if name not in known:
                problems.append((("cases", index, "variants", position), f"unknown variant '{name}'"))
        for position, assertion in enumerate(case.asserts):
            if isinstance(assertion, Similar) and not (assertion.value or case.reference):
                problems.append((("cases", index, "asserts", position), "similar needs a value or a case reference"))
        if _default_similar_without_value(suite) and not case.reference:
            problems.append((("cases", index), "default_asserts has similar without a value: set reference"))
    return problems


def _default_similar_without_value(suite: Suite) -> bool:
    return any(isinstance(a, Similar) and not a.value for a in suite.default_asserts)


def _duplicates(section: str, names: list[str]) -> list[tuple[Loc, str]]:
    seen: set[str] = set()
    problems: list[tuple[Loc, str]] = []
    for index, name in enumerate(names):
        if name in seen:
            problems.append(((section, index, "name"), f"duplicate name '{name}'"))
        seen.add(name)
    return problems
