"""Saving an exchange as a suite case: new YAML text goes after the last case, comments stay.

The file is never re-serialised: the case is dumped on its own, indented like the existing
items and inserted at the end of the `cases:` list; the result is validated before it replaces
the file, so an invalid case (a duplicate name, a bad assertion) leaves the file untouched.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from services.errors import SuiteError
from services.evals.suite import parse_suite


def append_case(path: Path, *, name: str, question: str, reference: str | None, asserts: list[dict[str, Any]]) -> None:
    """Append one case to the suite at `path`; SuiteError (file unchanged) when the result is invalid."""
    text = path.read_text()
    case: dict[str, Any] = {"name": name, "question": question}
    if reference is not None:
        case["reference"] = reference
    case["asserts"] = asserts
    updated = with_case(text, case)
    parse_suite(updated, path)  # raises SuiteError naming the new case's line
    _replace(path, updated)


def with_case(text: str, case: dict[str, Any]) -> str:
    """The suite text with `case` appended to its `cases:` list (added when there is none)."""
    import yaml  # type: ignore[import-untyped]

    root = yaml.compose(text, Loader=yaml.SafeLoader)
    cases = _cases_node(root)
    if cases is None:
        return text.rstrip("\n") + "\n" + "cases:\n" + _item(case, 0)
    if cases.flow_style or not cases.value:
        start, end = cases.start_mark.index, cases.end_mark.index
        return text[:start] + "\n" + _item(case, 2) + text[end:].lstrip(" ")
    last = cases.value[-1]
    indent = last.start_mark.column - 2
    cut = _line_end(text, _leaf_end(last))
    joint = "" if text[:cut].endswith("\n") else "\n"
    return text[:cut] + joint + _item(case, indent) + text[cut:]


def _cases_node(root: Any) -> Any:
    import yaml  # type: ignore[import-untyped]

    if not isinstance(root, yaml.MappingNode):
        raise SuiteError("the suite file is not a mapping with variants and cases", hint="check the file")
    for key, value in root.value:
        if key.value == "cases":
            if not isinstance(value, yaml.SequenceNode):
                raise SuiteError(f"line {key.start_mark.line + 1}: cases is not a list", hint="fix the suite file")
            return value
    return None


def _leaf_end(node: Any) -> int:
    """Where the last value inside a node ends (a block node's own end can lie past trailing comments)."""
    import yaml  # type: ignore[import-untyped]

    while isinstance(node, yaml.CollectionNode) and not node.flow_style and node.value:
        last = node.value[-1]
        node = last[1] if isinstance(node, yaml.MappingNode) else last
    return int(node.end_mark.index)


def _line_end(text: str, index: int) -> int:
    """Index just after the line holding `index` (a block node ends at the start of the next line)."""
    if index > 0 and text[index - 1] == "\n":
        return index
    newline = text.find("\n", index)
    return len(text) if newline < 0 else newline + 1


def _item(case: dict[str, Any], indent: int) -> str:
    import yaml  # type: ignore[import-untyped]

    dumped = yaml.safe_dump([case], sort_keys=False, allow_unicode=True, default_flow_style=False, width=100)
    pad = " " * indent
    return "".join(pad + line if line.strip() else line for line in dumped.splitlines(keepends=True))


def _replace(path: Path, text: str) -> None:
    """Write `text` to a temporary file beside `path`, then rename it over `path`."""
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as out:
            out.write(text)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
