"""Resource groups: create or update, read, check, and delete as a long-running operation."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .operations import LongRunningOperations
from .records import Answer, ArmResponseError, Group

if TYPE_CHECKING:
    from .server import FakeArm


class ResourceGroups:
    """The resource group routes of one `FakeArm`."""

    def __init__(self, arm: FakeArm, operations: LongRunningOperations) -> None:
        self.arm = arm
        self.operations = operations

    def find(self, name: str) -> Group:
        """The group `name` (any case); ResourceGroupNotFound if there is none."""
        group = self.arm.groups.get(name.lower())
        if group is None:
            raise ArmResponseError(404, "ResourceGroupNotFound", f"Resource group '{name}' could not be found.")
        return group

    def get(self, sub: str, name: str) -> Answer:
        return 200, {}, _group_json(sub, self.find(name))

    def head(self, sub: str, name: str) -> Answer:
        return (204 if name.lower() in self.arm.groups else 404), {}, None

    def put(self, sub: str, name: str, body: Any) -> Answer:
        existed = name.lower() in self.arm.groups
        group = self.arm.groups.setdefault(name.lower(), Group(name, body["location"], {}))
        group.tags = dict(body.get("tags") or {})
        return (200 if existed else 201), {}, _group_json(sub, group)

    def delete(self, sub: str, name: str) -> Answer:
        self.find(name)
        return 202, self.operations.start(sub, lambda: self._remove(name)), None

    def _remove(self, name: str) -> tuple[int, Any]:
        """Drop the group and its deployments: the end of a delete."""
        self.arm.groups.pop(name.lower(), None)
        for key in [k for k in self.arm.deployments if k[0] == name.lower()]:
            del self.arm.deployments[key]
        return 200, None


def _group_json(sub: str, group: Group) -> dict[str, Any]:
    return {
        "id": f"/subscriptions/{sub}/resourceGroups/{group.name}",
        "name": group.name,
        "type": "Microsoft.Resources/resourceGroups",
        "location": group.location,
        "tags": group.tags,
        "properties": {"provisioningState": "Succeeded"},
    }
