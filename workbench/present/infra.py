"""Text and JSON renderings of infra validation, what-if, deployment progress and outputs."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from services.infra.arm.deployment import Operation
from services.infra.arm.whatif import WhatIfResult
from services.infra.findings import ValidationReport
from workbench.present.text import table

CHANGE_SIGNS = {"create": "+", "delete": "-", "modify": "~", "no change": "=", "ignore": "*", "deploy": "!"}


def report_text(report: ValidationReport) -> str:
    """One environment's offline validation: verdict, then each finding and policy violation."""
    problems = len(report.errors) + len(report.violations)
    verdict = "ok" if report.ok else f"{problems} problem{'s' if problems != 1 else ''}"
    warnings = f", {len(report.warnings)} warning{'s' if len(report.warnings) != 1 else ''}" if report.warnings else ""
    lines = [f"{report.env}: {verdict}{warnings}"]
    lines += [f"  {finding}" for finding in report.findings]
    lines += [f"  policy: {violation}" for violation in report.violations]
    return "\n".join(lines)


def what_if_text(result: WhatIfResult) -> str:
    """The what-if diff: one row per resource with its change, changed properties under modifies."""
    lines = []
    if not result.group_exists:
        lines.append(f"resource group {result.resource_group} does not exist yet: `up` creates it and everything below")
    rows = [[CHANGE_SIGNS.get(c.change, "?"), c.change, c.resource_type, c.name] for c in result.changes]
    lines.append(table(["", "CHANGE", "TYPE", "NAME"], rows))
    for change in result.changes:
        if change.properties:
            lines.append(f"{change.change} {change.resource_type} {change.name}:")
            lines += [f"    {path}" for path in change.properties]
    lines.append(what_if_summary(result))
    return "\n".join(lines)


def what_if_summary(result: WhatIfResult) -> str:
    counts = [(result.count(kind), label) for kind, label in WHAT_IF_LABELS]
    return ", ".join(f"{count} {label}" for count, label in counts)


WHAT_IF_LABELS = (("create", "to create"), ("modify", "to modify"), ("delete", "to delete"), ("no change", "unchanged"))


def operation_line(op: Operation) -> str:
    """A deployment operation as it changes state, with ARM's error for a failure."""
    line = f"  {op.state:<10} {op.label}"
    return f"{line}\n             {op.error}" if op.error else line


def outputs_text(outputs: Mapping[str, Any]) -> str:
    if not outputs:
        return "no outputs"
    width = max(len(name) for name in outputs)
    return "\n".join(f"{name:<{width}}  {_shown(value)}" for name, value in outputs.items())


def outputs_json(outputs: Mapping[str, Any]) -> str:
    return json.dumps(dict(outputs), indent=2, sort_keys=True)


def _shown(value: Any) -> str:
    if value in (None, ""):
        return "-"
    return value if isinstance(value, str) else json.dumps(value)
