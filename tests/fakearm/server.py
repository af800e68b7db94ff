"""A local HTTPS server speaking the subset of Azure Resource Manager that the workbench uses.

The real SDK clients (`ResourceManagementClient`, `DeploymentsMgmtClient`) talk to it when given
its `endpoint`, its CA file as `connection_verify` and a credential whose token is `token`.
Routes: resource groups (PUT, GET, HEAD, DELETE as a long-running operation), deployments
(validate, what-if as a long-running operation, create with polling via Azure-AsyncOperation or
Location, get, cancel, operations) and the compute SKUs and usages behind the quota check.
Deployments advance one step per status poll; `fail()` makes a resource type fail, `throttle()`
answers 429 with Retry-After, `quota()` sets usages. Tokens are compared, never recorded.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import ssl
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from socketserver import TCPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from .evaluator import EvalError, Scope, evaluate, resource_id, try_evaluate
from .tls import TestCertificates, make_certificates

DEFAULT_TOKEN = "fake-arm-token"
SKUS: dict[str, tuple[str, int]] = {
    "Standard_NC6s_v3": ("standardNCSv3Family", 6),
    "Standard_NC24ads_A100_v4": ("StandardNCADSA100v4Family", 24),
    "Standard_D2s_v5": ("standardDSv5Family", 2),
    "Standard_D4s_v5": ("standardDSv5Family", 4),
    "Standard_B2s": ("standardBSFamily", 2),
}
FAMILY_NAMES = {
    "standardNCSv3Family": "Standard NCSv3 Family vCPUs",
    "StandardNCADSA100v4Family": "Standard NCADS_A100_v4 Family vCPUs",
    "standardDSv5Family": "Standard DSv5 Family vCPUs",
    "standardBSFamily": "Standard BS Family vCPUs",
    "cores": "Total Regional vCPUs",
}
BODY_KEYS = ("location", "sku", "kind", "identity", "tags", "properties")


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake received. The Authorization header's value is never kept."""

    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    authorized: bool


@dataclass
class Planned:
    """A template resource with its name, id and (best-effort) evaluated body."""

    id: str
    type: str
    name: str
    body: dict[str, Any]


@dataclass
class Group:
    name: str
    location: str
    tags: dict[str, str]
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Deployed resources by lower-cased id: their evaluated bodies."""


@dataclass
class Deployment:
    group: str
    name: str
    template: dict[str, Any]
    scope: Scope
    planned: list[Planned]
    failures: dict[str, tuple[str, str]]
    started: str
    ticks: int = 0
    state: str = "Running"
    outputs: dict[str, Any] = field(default_factory=dict)
    error: dict[str, Any] | None = None


@dataclass
class _Lro:
    """A long-running operation: answers 202 for `polls` polls, then `finish()`'s (status, body)."""

    polls: int
    finish: Callable[[], tuple[int, Any]]


class ArmResponseError(Exception):
    """An ARM error response."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": {"code": code, "message": message, **extra}}


class FakeArm:
    """Azure Resource Manager for tests; `with FakeArm(tmp_path) as arm:` serves on 127.0.0.1."""

    def __init__(self, folder: Path, *, token: str = DEFAULT_TOKEN, location_polling: bool = False) -> None:
        self.certificates: TestCertificates = make_certificates(folder / "fake-arm-tls")
        self.token = token
        self.location_polling = location_polling
        """Poll deployments through `Location` instead of `Azure-AsyncOperation`."""
        self.lro_polls = 2
        """202 answers before a resource group delete or what-if finishes."""
        self.ops_per_tick = 4
        """Deployment operations started per status poll."""
        self.requests: list[RecordedRequest] = []
        self.groups: dict[str, Group] = {}
        self.deployments: dict[tuple[str, str], Deployment] = {}
        self.validation_details: list[dict[str, str]] = []
        self.usages: dict[str, tuple[int, int]] = {family: (0, 100) for family in FAMILY_NAMES}
        self.restricted: set[str] = set()
        self._failures: dict[str, tuple[str, str]] = {}
        self._throttles: list[list[Any]] = []
        self._lros: dict[str, _Lro] = {}
        self._deployment_polls: dict[str, Deployment] = {}
        self._query: dict[str, list[str]] = {}
        self._lock = threading.RLock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._ids = itertools.count(1)

    # --- lifecycle ---------------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeArm is not running: call start() first")
        return f"https://127.0.0.1:{self._server.server_address[1]}"

    @property
    def ca_file(self) -> Path:
        return self.certificates.ca_file

    def start(self) -> Self:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.certificates.cert_file, self.certificates.key_file)
        self._server = _Server(("127.0.0.1", 0), self, context)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- knobs -------------------------------------------------------------------------------

    def fail(self, resource_type: str, code: str, message: str) -> None:
        """Make every deployment operation on `resource_type` fail with this ARM error."""
        self._failures[resource_type.lower()] = (code, message)

    def throttle(self, path_contains: str, times: int = 1, retry_after: int = 1) -> None:
        """Answer the next `times` requests whose path contains `path_contains` with 429 and Retry-After."""
        self._throttles.append([path_contains.lower(), times, retry_after])

    def quota(self, family: str, *, used: int, limit: int) -> None:
        """Set a usage (a VM family such as `standardNCSv3Family`, or `cores`)."""
        self.usages[family] = (used, limit)

    def requests_to(self, fragment: str, method: str | None = None) -> list[RecordedRequest]:
        return [
            r for r in self.requests if fragment.lower() in r.path.lower() and (method is None or r.method == method)
        ]

    # --- dispatch ----------------------------------------------------------------------------

    def handle(self, method: str, raw_path: str, body: Any, token: str | None) -> tuple[int, dict[str, str], Any]:
        url = urlsplit(raw_path)
        with self._lock:
            self._query = parse_qs(url.query)
            self.requests.append(RecordedRequest(method, url.path, self._query, body, token is not None))
            try:
                if token != self.token:
                    raise ArmResponseError(401, "InvalidAuthenticationToken", "The access token is invalid.")
                throttled = self._throttled(url.path)
                if throttled is not None:
                    return throttled
                return self._route(method, url.path, body)
            except ArmResponseError as failure:
                return failure.status, {}, failure.body

    def _throttled(self, path: str) -> tuple[int, dict[str, str], Any] | None:
        for rule in self._throttles:
            if rule[1] > 0 and rule[0] in path.lower():
                rule[1] -= 1
                body = {"error": {"code": "TooManyRequests", "message": "Rate limit exceeded. Retry later."}}
                return 429, {"Retry-After": str(rule[2])}, body
        return None

    def _route(self, method: str, path: str, body: Any) -> tuple[int, dict[str, str], Any]:
        for pattern, handlers in self._routes():
            match = re.fullmatch(pattern, path, re.IGNORECASE)
            if match and method in handlers:
                return (
                    handlers[method](*match.groups(), body)
                    if method in {"PUT", "POST"}
                    else handlers[method](*match.groups())
                )
        raise ArmResponseError(404, "NotFound", f"The fake has no route for {method} {path}")

    def _routes(self) -> list[tuple[str, dict[str, Callable[..., Any]]]]:
        sub = r"/subscriptions/([^/]+)"
        group = sub + r"/resourcegroups/([^/]+)"
        deployment = group + r"/providers/Microsoft\.Resources/deployments/([^/]+)"
        return [
            (
                group,
                {
                    "GET": self._get_group,
                    "HEAD": self._head_group,
                    "PUT": self._put_group,
                    "DELETE": self._delete_group,
                },
            ),
            (deployment, {"GET": self._get_deployment, "PUT": self._put_deployment}),
            (deployment + "/validate", {"POST": self._validate}),
            (deployment + "/whatIf", {"POST": self._what_if}),
            (deployment + "/cancel", {"POST": self._cancel}),
            (deployment + r"/operationStatuses/([^/]+)", {"GET": self._deployment_status}),
            (group + r"/deployments/([^/]+)/operations", {"GET": self._operations}),
            (sub + r"/operationresults/([^/]+)", {"GET": self._poll_lro}),
            (sub + r"/providers/Microsoft\.Compute/skus", {"GET": self._skus}),
            (sub + r"/providers/Microsoft\.Compute/locations/([^/]+)/usages", {"GET": self._usages}),
        ]

    # --- resource groups ---------------------------------------------------------------------

    def _group(self, name: str) -> Group:
        group = self.groups.get(name.lower())
        if group is None:
            raise ArmResponseError(404, "ResourceGroupNotFound", f"Resource group '{name}' could not be found.")
        return group

    def _group_json(self, sub: str, group: Group) -> dict[str, Any]:
        return {
            "id": f"/subscriptions/{sub}/resourceGroups/{group.name}",
            "name": group.name,
            "type": "Microsoft.Resources/resourceGroups",
            "location": group.location,
            "tags": group.tags,
            "properties": {"provisioningState": "Succeeded"},
        }

    def _get_group(self, sub: str, name: str) -> tuple[int, dict[str, str], Any]:
        return 200, {}, self._group_json(sub, self._group(name))

    def _head_group(self, sub: str, name: str) -> tuple[int, dict[str, str], Any]:
        return (204 if name.lower() in self.groups else 404), {}, None

    def _put_group(self, sub: str, name: str, body: Any) -> tuple[int, dict[str, str], Any]:
        existed = name.lower() in self.groups
        group = self.groups.setdefault(name.lower(), Group(name, body["location"], {}))
        group.tags = dict(body.get("tags") or {})
        return (200 if existed else 201), {}, self._group_json(sub, group)

    def _delete_group(self, sub: str, name: str) -> tuple[int, dict[str, str], Any]:
        self._group(name)

        def finish() -> tuple[int, Any]:
            self.groups.pop(name.lower(), None)
            for key in [k for k in self.deployments if k[0] == name.lower()]:
                del self.deployments[key]
            return 200, None

        return 202, self._start_lro(sub, finish), None

    def _start_lro(self, sub: str, finish: Callable[[], tuple[int, Any]]) -> dict[str, str]:
        op_id = f"op-{next(self._ids)}"
        self._lros[op_id] = _Lro(self.lro_polls, finish)
        return {"Location": f"{self.endpoint}/subscriptions/{sub}/operationresults/{op_id}?api-version=2025-04-01"}

    def _poll_lro(self, sub: str, op_id: str) -> tuple[int, dict[str, str], Any]:
        record = self._deployment_polls.get(op_id)
        if record is not None:  # a deployment polled through Location: 202 while running, then 200
            if record.state == "Running":
                self._advance(record)
            location = f"{self.endpoint}/subscriptions/{sub}/operationresults/{op_id}"
            return (202, {"Location": location}, None) if record.state == "Running" else (200, {}, None)
        lro = self._lros.get(op_id)
        if lro is None:
            raise ArmResponseError(404, "NotFound", f"operation {op_id} not found")
        if lro.polls > 0:
            lro.polls -= 1
            return 202, {"Location": f"{self.endpoint}/subscriptions/{sub}/operationresults/{op_id}"}, None
        status, body = lro.finish()
        return status, {}, body

    # --- planning ----------------------------------------------------------------------------

    def _scope(self, sub: str, group: Group, template: Mapping[str, Any], values: Mapping[str, Any]) -> Scope:
        scope = Scope(sub, group.name, group.location, {}, template.get("variables") or {})
        for name, spec in (template.get("parameters") or {}).items():
            if name in values:
                scope.parameters[name] = values[name]
            elif "defaultValue" in spec:
                scope.parameters[name] = evaluate(spec["defaultValue"], scope)
            else:
                raise ArmResponseError(
                    400,
                    "InvalidTemplate",
                    f"Deployment template validation failed: 'The value for the template parameter '{name}' "
                    "at line '1' and column '1' is not provided. Please see https://aka.ms/arm-create-parameter-file "
                    "for usage details.'.",
                )
        return scope

    def _plan(self, scope: Scope, template: Mapping[str, Any]) -> list[Planned]:
        planned = []
        try:
            for raw in template.get("resources") or []:
                if evaluate(raw.get("condition", True), scope) is False:
                    continue
                kind, name = raw["type"], evaluate(raw["name"], scope)
                ident = self._resource_id(scope, raw, kind, name)
                body = {key: try_evaluate(raw[key], scope) for key in BODY_KEYS if key in raw}
                planned.append(Planned(ident, kind, name, {"type": kind, "name": name, **body}))
        except EvalError as exc:
            raise ArmResponseError(400, "InvalidTemplate", f"Deployment template validation failed: '{exc}'.") from None
        return planned

    def _resource_id(self, scope: Scope, raw: Mapping[str, Any], kind: str, name: str) -> str:
        if "scope" not in raw:
            return resource_id(scope, kind, *name.split("/"))
        parent = str(evaluate(raw["scope"], scope)).split("/")
        parent_id = resource_id(scope, "/".join([parent[0], *parent[1::2]]), *parent[2::2])
        return f"{parent_id}/providers/{kind}/{name}"

    def _inputs(self, sub: str, group_name: str, body: Any) -> tuple[Group, dict[str, Any], Scope, list[Planned]]:
        group = self._group(group_name)
        props = body.get("properties") or {}
        template = props.get("template") or {}
        values = {k: v.get("value") for k, v in (props.get("parameters") or {}).items()}
        unknown = sorted(set(values) - set(template.get("parameters") or {}))
        if unknown:
            raise ArmResponseError(
                400,
                "InvalidTemplate",
                f"Deployment template validation failed: 'The template parameters '{', '.join(unknown)}' in the "
                "parameters file are not valid; they are not present in the original template.'.",
            )
        scope = self._scope(sub, group, template, values)
        return group, template, scope, self._plan(scope, template)

    # --- validate and what-if ----------------------------------------------------------------

    def _validate(self, sub: str, group_name: str, name: str, body: Any) -> tuple[int, dict[str, str], Any]:
        _group, _template, _scope, planned = self._inputs(sub, group_name, body)
        if self.validation_details:
            raise ArmResponseError(
                400,
                "InvalidTemplateDeployment",
                f"The template deployment '{name}' is not valid according to the validation procedure. "
                "See inner errors for details.",
                details=list(self.validation_details),
            )
        result = {
            "id": self._deployment_id(sub, group_name, name),
            "name": name,
            "properties": {
                "provisioningState": "Succeeded",
                "mode": "Incremental",
                "validatedResources": [{"id": p.id} for p in planned],
            },
        }
        return 200, {}, result

    def _what_if(self, sub: str, group_name: str, name: str, body: Any) -> tuple[int, dict[str, str], Any]:
        group, _template, _scope, planned = self._inputs(sub, group_name, body)
        changes = [self._change(group, p) for p in planned]
        wanted = {p.id.lower() for p in planned}
        changes += [
            {"resourceId": rid, "changeType": "Ignore", "before": before}
            for rid, before in group.resources.items()
            if rid not in wanted
        ]
        result = {"status": "Succeeded", "properties": {"changes": changes}}
        return 202, self._start_lro(sub, lambda: (200, result)), None

    def _change(self, group: Group, planned: Planned) -> dict[str, Any]:
        before = group.resources.get(planned.id.lower())
        if before is None:
            return {"resourceId": planned.id, "changeType": "Create", "after": planned.body}
        delta = list(_delta(before, planned.body))
        kind = "Modify" if delta else "NoChange"
        return {"resourceId": planned.id, "changeType": kind, "before": before, "after": planned.body, "delta": delta}

    # --- deployments -------------------------------------------------------------------------

    def _deployment_id(self, sub: str, group: str, name: str) -> str:
        return f"/subscriptions/{sub}/resourceGroups/{group}/providers/Microsoft.Resources/deployments/{name}"

    def _put_deployment(self, sub: str, group_name: str, name: str, body: Any) -> tuple[int, dict[str, str], Any]:
        group, template, scope, planned = self._inputs(sub, group_name, body)
        failures = {p.id: self._failures[p.type.lower()] for p in planned if p.type.lower() in self._failures}
        record = Deployment(group.name, name, template, scope, planned, failures, _now())
        self.deployments[(group.name.lower(), name.lower())] = record
        return 201, self._poll_headers(sub, record), self._deployment_json(sub, record, "Accepted")

    def _poll_headers(self, sub: str, record: Deployment) -> dict[str, str]:
        deployment_id = self._deployment_id(sub, record.group, record.name)
        op_id = f"op-{next(self._ids)}"
        if self.location_polling:
            self._deployment_polls[op_id] = record
            return {"Location": f"{self.endpoint}/subscriptions/{sub}/operationresults/{op_id}?api-version=2026-06-01"}
        return {
            "Azure-AsyncOperation": f"{self.endpoint}{deployment_id}/operationStatuses/{op_id}?api-version=2026-06-01"
        }

    def _deployment(self, group: str, name: str) -> Deployment:
        record = self.deployments.get((group.lower(), name.lower()))
        if record is None:
            raise ArmResponseError(404, "DeploymentNotFound", f"Deployment '{name}' could not be found.")
        return record

    def _deployment_status(self, sub: str, group: str, name: str, _op: str) -> tuple[int, dict[str, str], Any]:
        record = self._deployment(group, name)
        if record.state == "Running":
            self._advance(record)
        body: dict[str, Any] = {"status": record.state}
        if record.error:
            body["error"] = record.error
        return 200, {}, body

    def _advance(self, record: Deployment) -> None:
        record.ticks += 1
        finished = self._finished_count(record)
        if finished < len(record.planned):
            return
        if any(p.id in record.failures for p in record.planned):
            record.state = "Failed"
            record.error = {
                "code": "DeploymentFailed",
                "message": "At least one resource deployment operation failed. Please list deployment operations "
                "for details. Please see https://aka.ms/arm-deployment-operations for usage details.",
                "details": [
                    {"code": code, "message": message, "target": rid}
                    for rid, (code, message) in record.failures.items()
                ],
            }
            return
        self._commit(record)

    def _commit(self, record: Deployment) -> None:
        group = self.groups[record.group.lower()]
        for planned in record.planned:
            group.resources[planned.id.lower()] = planned.body
        record.scope.reference = lambda rid, full: self._runtime(record, rid, full)
        record.outputs = {
            name: {"type": spec.get("type", "String"), "value": evaluate(spec.get("value"), record.scope)}
            for name, spec in (record.template.get("outputs") or {}).items()
        }
        record.state = "Succeeded"

    def _runtime(self, record: Deployment, rid: str, full: bool) -> Any:
        found = next((p for p in record.planned if p.id.lower() == rid.lower()), None)
        if found is None:
            raise EvalError(f"reference to {rid}, which this deployment does not create")
        seed = int(hashlib.sha256(found.id.lower().encode()).hexdigest(), 16)
        props = dict(found.body.get("properties") or {})
        kind = found.type.lower()
        if kind.endswith("/publicipaddresses"):
            label = (props.get("dnsSettings") or {}).get("domainNameLabel", found.name)
            props["ipAddress"] = f"20.{seed % 250}.{seed // 250 % 250}.{seed // 62500 % 250 + 1}"
            props["dnsSettings"] = {
                "domainNameLabel": label,
                "fqdn": f"{label}.{record.scope.location}.cloudapp.azure.com",
            }
        elif kind.endswith("/networkinterfaces"):
            index = [p.id for p in record.planned if p.type.lower() == kind].index(found.id)
            props["ipConfigurations"] = [{"properties": {"privateIPAddress": f"10.20.1.{4 + index}"}}]
        elif kind.endswith("/registries"):
            props["loginServer"] = f"{found.name}.azurecr.io"
        elif kind.endswith("/storageaccounts"):
            props["primaryEndpoints"] = {"blob": f"https://{found.name}.blob.core.windows.net/"}
        if not full:
            return props
        identity = {**(found.body.get("identity") or {}), "principalId": str(uuid.UUID(int=seed % 2**128))}
        return {**found.body, "properties": props, "identity": identity}

    def _finished_count(self, record: Deployment) -> int:
        return min(max(record.ticks - 1, 0) * self.ops_per_tick, len(record.planned))

    def _started_count(self, record: Deployment) -> int:
        return min(record.ticks * self.ops_per_tick, len(record.planned))

    def _get_deployment(self, sub: str, group: str, name: str) -> tuple[int, dict[str, str], Any]:
        record = self._deployment(group, name)
        return 200, {}, self._deployment_json(sub, record, record.state)

    def _deployment_json(self, sub: str, record: Deployment, state: str) -> dict[str, Any]:
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
            "id": self._deployment_id(sub, record.group, record.name),
            "name": record.name,
            "type": "Microsoft.Resources/deployments",
            "properties": props,
        }

    def _cancel(self, sub: str, group: str, name: str, _body: Any) -> tuple[int, dict[str, str], Any]:
        record = self._deployment(group, name)
        if record.state != "Running":
            raise ArmResponseError(409, "DeploymentCannotBeCancelled", f"Deployment '{name}' is {record.state}.")
        record.state = "Canceled"
        return 204, {}, None

    def _operations(self, sub: str, group: str, name: str) -> tuple[int, dict[str, str], Any]:
        record = self._deployment(group, name)
        started, finished = self._started_count(record), self._finished_count(record)
        operations = [
            self._operation(sub, record, index, planned, index < finished)
            for index, planned in enumerate(record.planned[:started])
        ]
        return 200, {}, {"value": operations}

    def _operation(self, sub: str, record: Deployment, index: int, planned: Planned, done: bool) -> dict[str, Any]:
        failure = record.failures.get(planned.id)
        state = "Running" if not done else ("Failed" if failure else "Succeeded")
        props: dict[str, Any] = {
            "provisioningOperation": "Create",
            "provisioningState": state,
            "timestamp": _now(),
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
            "id": f"{self._deployment_id(sub, record.group, record.name)}/operations/{op_id}",
            "operationId": op_id,
            "properties": props,
        }

    # --- compute -----------------------------------------------------------------------------

    def _skus(self, sub: str) -> tuple[int, dict[str, str], Any]:
        skus = [
            {
                "resourceType": "virtualMachines",
                "name": size,
                "tier": "Standard",
                "size": size.removeprefix("Standard_"),
                "family": family,
                "locations": ["westeurope"],
                "capabilities": [{"name": "vCPUs", "value": str(vcpus)}],
                "restrictions": [
                    {"type": "Location", "values": ["westeurope"], "reasonCode": "NotAvailableForSubscription"}
                ]
                if size in self.restricted
                else [],
            }
            for size, (family, vcpus) in SKUS.items()
        ]
        half = len(skus) // 2  # two pages, so the client follows nextLink
        next_link = (
            f"{self.endpoint}/subscriptions/{sub}/providers/Microsoft.Compute/skus?api-version=2021-07-01&page=2"
        )
        if "page" in self._query:
            return 200, {}, {"value": skus[half:]}
        return 200, {}, {"value": skus[:half], "nextLink": next_link}

    def _usages(self, sub: str, location: str) -> tuple[int, dict[str, str], Any]:
        values = [
            {
                "name": {"value": family, "localizedValue": FAMILY_NAMES.get(family, family)},
                "currentValue": used,
                "limit": limit,
                "unit": "Count",
            }
            for family, (used, limit) in self.usages.items()
        ]
        return 200, {}, {"value": values}


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


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- HTTP plumbing ---------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], arm: FakeArm, context: ssl.SSLContext) -> None:
        self.arm = arm
        self.context = context
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        TCPServer.server_bind(self)  # no reverse DNS lookup of the host
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    def get_request(self) -> tuple[Any, Any]:
        sock, address = self.socket.accept()
        # The TLS handshake happens in the handler's thread, not in the accept loop.
        return self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hanging up (or failing the handshake) are not errors of the fake."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # no 40 ms delayed-ACK stall between headers and body
    timeout = 30
    server: _Server

    def do_GET(self) -> None:
        self._serve()

    def do_HEAD(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        """No per-request logging to stderr."""

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        auth = self.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else None
        status, headers, payload = self.server.arm.handle(self.command, self.path, body, token)
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        for name, value in {**headers, "x-ms-request-id": str(uuid.uuid4())}.items():
            self.send_header(name, value)
        if data:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
