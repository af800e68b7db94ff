"""Validate and what-if: checking a deployment and previewing its changes without deploying."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .deployments import deployment_id
from .operations import LongRunningOperations
from .planning import deployment_inputs
from .records import Answer, ArmResponseError, Group, Planned
from .resource_groups import ResourceGroups

if TYPE_CHECKING:
    from .server import FakeArm


class Previews:
    """The validate and what-if routes of one `FakeArm`."""

    def __init__(self, arm: FakeArm, groups: ResourceGroups, operations: LongRunningOperations) -> None:
        self.arm = arm
        self.groups = groups
        self.operations = operations

    def validate(self, sub: str, group_name: str, name: str, body: Any) -> Answer:
        _template, _scope, planned = deployment_inputs(sub, self.groups.find(group_name), body)
        if self.arm.validation_details:
            raise ArmResponseError(
                400,
                "InvalidTemplateDeployment",
                f"The template deployment '{name}' is not valid according to the validation procedure. "
                "See inner errors for details.",
                details=list(self.arm.validation_details),
            )
        result = {
            "id": deployment_id(sub, group_name, name),
            "name": name,
            "properties": {
                "provisioningState": "Succeeded",
                "mode": "Incremental",
                "validatedResources": [{"id": p.id} for p in planned],
            },
        }
        return 200, {}, result

    def what_if(self, sub: str, group_name: str, name: str, body: Any) -> Answer:
        group = self.groups.find(group_name)
        _template, _scope, planned = deployment_inputs(sub, group, body)
        changes = [_change(group, p) for p in planned]
        wanted = {p.id.lower() for p in planned}
        changes += [
            {"resourceId": rid, "changeType": "Ignore", "before": before}
            for rid, before in group.resources.items()
            if rid not in wanted
        ]
        result = {"status": "Succeeded", "properties": {"changes": changes}}
        return 202, self.operations.start(sub, lambda: (200, result)), None


def _change(group: Group, planned: Planned) -> dict[str, Any]:
    before = group.resources.get(planned.id.lower())
    if before is None:
        return {"resourceId": planned.id, "changeType": "Create", "after": planned.body}
    delta = list(_delta(before, planned.body))
    kind = "Modify" if delta else "NoChange"
    return {"resourceId": planned.id, "changeType": kind, "before": before, "after": planned.body, "delta": delta}


def _delta(before: Any, after: Any, path: str = "") -> list[dict[str, Any]]:
    if isinstance(before, dict) and isinstance(after, dict):
        changes = []
        for key in sorted(set(before) | set(after)):
            sub = f"{path}.{key}" if path else key
            if key not in before:
                changes.append({"path": sub, "propertyChangeType": "Create", "after": after[key]})
            elif key not in after:
                changes.append({"path": sub, "propertyChangeType": "Delete", "before": before[key]})
            else:
                changes += _delta(before[key], after[key], sub)
        return changes
    if before != after:
        return [{"path": path, "propertyChangeType": "Modify", "before": before, "after": after}]
    return []
