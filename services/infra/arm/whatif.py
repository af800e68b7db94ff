"""ARM validation and what-if of a deployment: what it would create, modify or delete (nothing changes)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from services.errors import ArmError
from services.infra.arm.errors import arm_errors, failure, info_of
from services.infra.arm.groups import group_exists
from services.infra.arm.session import Session, as_dict, deployment_name
from services.infra.inputs import InfraInputs

CHANGE_WORDS = {
    "Create": "create",
    "Modify": "modify",
    "Delete": "delete",
    "NoChange": "no change",
    "Ignore": "ignore",
    "Deploy": "deploy",
    "Unsupported": "unsupported",
}


@dataclass(frozen=True)
class ResourceChange:
    """One resource in a what-if result."""

    change: str
    """create, modify, delete, no change, ignore, deploy or unsupported."""
    resource_type: str
    name: str
    resource_id: str
    properties: tuple[str, ...] = ()
    """Changed property paths for a modify, e.g. `~ properties.hardwareProfile.vmSize`."""


@dataclass(frozen=True)
class WhatIfResult:
    """What a deployment would change; `group_exists` False means everything is created."""

    resource_group: str
    group_exists: bool
    changes: tuple[ResourceChange, ...]

    def count(self, change: str) -> int:
        return sum(1 for c in self.changes if c.change == change)


def deployment_body(inputs: InfraInputs, *, what_if: bool = False) -> Any:
    """The request body as ARM's JSON (the SDK's models accept a mapping; typed as Any for its overloads)."""
    properties: dict[str, Any] = {
        "mode": "Incremental",
        "template": inputs.template,
        "parameters": inputs.deployment_parameters(),
    }
    if what_if:
        properties["whatIfSettings"] = {"resultFormat": "FullResourcePayloads"}
    return {"properties": properties}


def validate_remote(session: Session, inputs: InfraInputs) -> None:
    """Ask ARM to validate the deployment (template, parameters, SKUs, names); `ArmError` with details."""
    what = f"validating the {inputs.env} deployment in {session.group}"
    with arm_errors(what):
        body = deployment_body(inputs)
        poller = session.deployments.deployments.begin_validate(session.group, deployment_name(inputs.env), body)
        result = as_dict(poller.result())
    error = info_of(result.get("error"))
    if error:
        raise failure(what, result["error"], error)


def what_if(session: Session, inputs: InfraInputs) -> WhatIfResult:
    """What deploying `inputs` would create, modify or delete (ARM what-if; nothing changes).

    Without the resource group ARM cannot answer, so every template resource is listed as a create.
    """
    if not group_exists(session):
        return WhatIfResult(session.group, False, tuple(_all_created(inputs)))
    with arm_errors(f"previewing the {inputs.env} deployment in {session.group}"):
        body = deployment_body(inputs, what_if=True)
        poller = session.deployments.deployments.begin_what_if(session.group, deployment_name(inputs.env), body)
        result = as_dict(poller.result())
    error = info_of(result.get("error"))
    if error:
        raise ArmError(f"what-if of {inputs.env}: {error}", code=error.code, target=error.target)
    changes = (result.get("properties") or {}).get("changes") or []
    return WhatIfResult(session.group, True, tuple(sorted((_change(c) for c in changes), key=_change_order)))


def _all_created(inputs: InfraInputs) -> list[ResourceChange]:
    from services.infra.policy import flatten

    return [
        ResourceChange("create", r.type, r.name, "") for r in flatten(inputs.template.get("resources")) if "/" in r.type
    ]


def _change(raw: Mapping[str, Any]) -> ResourceChange:
    resource_id = str(raw.get("resourceId", ""))
    kind, name = split_resource_id(resource_id)
    paths = tuple(_delta_lines(raw.get("delta") or []))
    word = CHANGE_WORDS.get(str(raw.get("changeType")), str(raw.get("changeType", "")).lower())
    return ResourceChange(word, kind, name, resource_id, paths)


def _delta_lines(delta: list[Mapping[str, Any]], prefix: str = "") -> Iterator[str]:
    marks = {"Create": "+", "Delete": "-", "Modify": "~", "Array": "~"}
    for item in delta:
        path = f"{prefix}{item.get('path', '')}"
        kind = str(item.get("propertyChangeType", ""))
        if kind == "NoEffect":
            continue
        children = item.get("children") or []
        if children and kind != "Array":
            yield from _delta_lines(children, f"{path}.")
        else:
            yield f"{marks.get(kind, '~')} {path}"


def _change_order(change: ResourceChange) -> tuple[int, str, str]:
    order = ["delete", "create", "modify", "deploy", "unsupported", "no change", "ignore"]
    rank = order.index(change.change) if change.change in order else len(order)
    return rank, change.resource_type.lower(), change.name.lower()


def split_resource_id(resource_id: str) -> tuple[str, str]:
    """(type, name) of an ARM resource id: `.../providers/NS/t1/n1/t2/n2` -> (`NS/t1/t2`, `n1/n2`)."""
    _, sep, tail = resource_id.rpartition("/providers/")
    if not sep:
        return "", resource_id
    parts = tail.split("/")
    types, names = [parts[0]], []
    for index in range(1, len(parts) - 1, 2):
        types.append(parts[index])
        names.append(parts[index + 1])
    return "/".join(types), "/".join(names)
