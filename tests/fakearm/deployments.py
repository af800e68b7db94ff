"""Deployments: create, advance one step per status poll, fail or succeed with outputs, cancel, operations."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .evaluator import evaluate
from .planning import deployment_inputs
from .records import Answer, ArmResponseError, Deployment, Planned
from .resource_groups import ResourceGroups
from .runtime_values import runtime_value

if TYPE_CHECKING:
    from .server import FakeArm


def deployment_id(sub: str, group: str, name: str) -> str:
    """The ARM id of deployment `name` in resource group `group`."""
    return f"/subscriptions/{sub}/resourceGroups/{group}/providers/Microsoft.Resources/deployments/{name}"


class Deployments:
    """The deployment routes of one `FakeArm`; `failures` maps lower-cased resource types to ARM errors."""

    def __init__(self, arm: FakeArm, groups: ResourceGroups, failures: dict[str, tuple[str, str]]) -> None:
        self.arm = arm
        self.groups = groups
        self.failures = failures
        self._location_polls: dict[str, Deployment] = {}

    def put(self, sub: str, group_name: str, name: str, body: Any) -> Answer:
        group = self.groups.find(group_name)
        template, scope, planned = deployment_inputs(sub, group, body)
        failures = {p.id: self.failures[p.type.lower()] for p in planned if p.type.lower() in self.failures}
        record = Deployment(group.name, name, template, scope, planned, failures, now())
        self.arm.deployments[(group.name.lower(), name.lower())] = record
        return 201, self._poll_headers(sub, record), _deployment_json(sub, record, "Accepted")

    def _poll_headers(self, sub: str, record: Deployment) -> dict[str, str]:
        endpoint = self.arm.endpoint
        op_id = self.arm.new_operation_id()
        if self.arm.location_polling:
            self._location_polls[op_id] = record
            return {"Location": f"{endpoint}/subscriptions/{sub}/operationresults/{op_id}?api-version=2026-06-01"}
        status_url = f"{endpoint}{deployment_id(sub, record.group, record.name)}/operationStatuses/{op_id}"
        return {"Azure-AsyncOperation": f"{status_url}?api-version=2026-06-01"}

    def poll_location(self, sub: str, op_id: str) -> Answer | None:
        """A deployment polled through Location: 202 while running, then 200; None if `op_id` is no deployment."""
        record = self._location_polls.get(op_id)
        if record is None:
            return None
        if record.state == "Running":
            self._advance(record)
        location = f"{self.arm.endpoint}/subscriptions/{sub}/operationresults/{op_id}"
        return (202, {"Location": location}, None) if record.state == "Running" else (200, {}, None)

    def _find(self, group: str, name: str) -> Deployment:
        record = self.arm.deployments.get((group.lower(), name.lower()))
        if record is None:
            raise ArmResponseError(404, "DeploymentNotFound", f"Deployment '{name}' could not be found.")
        return record

    def status(self, sub: str, group: str, name: str, _op: str) -> Answer:
        record = self._find(group, name)
        if record.state == "Running":
            self._advance(record)
        body: dict[str, Any] = {"status": record.state}
        if record.error:
            body["error"] = record.error
        return 200, {}, body

    def _advance(self, record: Deployment) -> None:
        record.ticks += 1
        if self._finished_count(record) < len(record.planned):
            return
        if any(p.id in record.failures for p in record.planned):
            record.state = "Failed"
            record.error = _failure_error(record)
            return
        self._commit(record)

    def _commit(self, record: Deployment) -> None:
        group = self.arm.groups[record.group.lower()]
        for planned in record.planned:
            group.resources[planned.id.lower()] = planned.body
        record.scope.reference = lambda rid, full: runtime_value(record, rid, full)
        record.outputs = {
            name: {"type": spec.get("type", "String"), "value": evaluate(spec.get("value"), record.scope)}
            for name, spec in (record.template.get("outputs") or {}).items()
        }
        record.state = "Succeeded"

    def _finished_count(self, record: Deployment) -> int:
        return min(max(record.ticks - 1, 0) * self.arm.ops_per_tick, len(record.planned))

    def _started_count(self, record: Deployment) -> int:
        return min(record.ticks * self.arm.ops_per_tick, len(record.planned))

    def get(self, sub: str, group: str, name: str) -> Answer:
        record = self._find(group, name)
        return 200, {}, _deployment_json(sub, record, record.state)

    def cancel(self, sub: str, group: str, name: str, _body: Any) -> Answer:
        record = self._find(group, name)
        if record.state != "Running":
            raise ArmResponseError(409, "DeploymentCannotBeCancelled", f"Deployment '{name}' is {record.state}.")
        record.state = "Canceled"
        return 204, {}, None

    def operations(self, sub: str, group: str, name: str) -> Answer:
        record = self._find(group, name)
        started, finished = self._started_count(record), self._finished_count(record)
        operations = [
            _operation_json(sub, record, index, planned, index < finished)
            for index, planned in enumerate(record.planned[:started])
        ]
        return 200, {}, {"value": operations}


def now() -> str:
    """The current time as ARM writes timestamps."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _failure_error(record: Deployment) -> dict[str, Any]:
    return {
        "code": "DeploymentFailed",
        "message": "At least one resource deployment operation failed. Please list deployment operations "
        "for details. Please see https://aka.ms/arm-deployment-operations for usage details.",
        "details": [
            {"code": code, "message": message, "target": rid} for rid, (code, message) in record.failures.items()
        ],
    }


def _deployment_json(sub: str, record: Deployment, state: str) -> dict[str, Any]:
    props: dict[str, Any] = {
        "provisioningState": state,
        "mode": "Incremental",
        "timestamp": record.started,
        "correlationId": str(uuid.uuid5(uuid.NAMESPACE_URL, record.name)),
    }
    if state == "Succeeded":
        props["outputs"] = record.outputs
        props["outputResources"] = [{"id": p.id} for p in record.planned]
    if record.error and state == "Failed":
        props["error"] = record.error
    return {
        "id": deployment_id(sub, record.group, record.name),
        "name": record.name,
        "type": "Microsoft.Resources/deployments",
        "properties": props,
    }


def _operation_json(sub: str, record: Deployment, index: int, planned: Planned, done: bool) -> dict[str, Any]:
    failure = record.failures.get(planned.id)
    state = "Running" if not done else ("Failed" if failure else "Succeeded")
    props: dict[str, Any] = {
        "provisioningOperation": "Create",
        "provisioningState": state,
        "timestamp": now(),
        "duration": "PT1S",
        "targetResource": {"id": planned.id, "resourceType": planned.type, "resourceName": planned.name},
    }
    if done:
        props["statusCode"] = "BadRequest" if failure else "OK"
    if done and failure:
        code, message = failure
        props["statusMessage"] = {"status": "Failed", "error": {"code": code, "message": message}}
    op_id = f"{index + 1:016X}"
    return {
        "id": f"{deployment_id(sub, record.group, record.name)}/operations/{op_id}",
        "operationId": op_id,
        "properties": props,
    }
