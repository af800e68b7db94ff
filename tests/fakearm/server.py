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

import itertools
import re
import ssl
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from .compute import FAMILY_NAMES, skus_page, usages_list
from .deployments import Deployments
from .operations import LongRunningOperations
from .records import Answer, ArmResponseError, Deployment, Group, RecordedRequest
from .resource_groups import ResourceGroups
from .tls import TestCertificates, make_certificates
from .transport import ArmHttpsServer
from .what_if import Previews

DEFAULT_TOKEN = "fake-arm-token"


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
        self._query: dict[str, list[str]] = {}
        self._lock = threading.RLock()
        self._server: ArmHttpsServer | None = None
        self._thread: threading.Thread | None = None
        self._ids = itertools.count(1)
        self._operations = LongRunningOperations(self)
        self._groups = ResourceGroups(self, self._operations)
        self._deployments = Deployments(self, self._groups, self._failures)
        self._previews = Previews(self, self._groups, self._operations)

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
        self._server = ArmHttpsServer(("127.0.0.1", 0), self, context)
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

    def new_operation_id(self) -> str:
        """A fresh id for a long-running operation or a deployment's status poll."""
        return f"op-{next(self._ids)}"

    # --- dispatch ----------------------------------------------------------------------------

    def handle(self, method: str, raw_path: str, body: Any, token: str | None) -> Answer:
        """Record a request and answer it: 401 for a wrong token, 429 while throttled, else its route."""
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

    def _throttled(self, path: str) -> Answer | None:
        for rule in self._throttles:
            if rule[1] > 0 and rule[0] in path.lower():
                rule[1] -= 1
                body = {"error": {"code": "TooManyRequests", "message": "Rate limit exceeded. Retry later."}}
                return 429, {"Retry-After": str(rule[2])}, body
        return None

    def _route(self, method: str, path: str, body: Any) -> Answer:
        for pattern, handlers in self._routes():
            match = re.fullmatch(pattern, path, re.IGNORECASE)
            if match and method in handlers:
                return (
                    handlers[method](*match.groups(), body)
                    if method in {"PUT", "POST"}
                    else handlers[method](*match.groups())
                )
        raise ArmResponseError(404, "NotFound", f"The fake has no route for {method} {path}")

    def _routes(self) -> list[tuple[str, dict[str, Callable[..., Answer]]]]:
        sub = r"/subscriptions/([^/]+)"
        group = sub + r"/resourcegroups/([^/]+)"
        deployment = group + r"/providers/Microsoft\.Resources/deployments/([^/]+)"
        groups, deployments, previews = self._groups, self._deployments, self._previews
        return [
            (group, {"GET": groups.get, "HEAD": groups.head, "PUT": groups.put, "DELETE": groups.delete}),
            (deployment, {"GET": deployments.get, "PUT": deployments.put}),
            (deployment + "/validate", {"POST": previews.validate}),
            (deployment + "/whatIf", {"POST": previews.what_if}),
            (deployment + "/cancel", {"POST": deployments.cancel}),
            (deployment + r"/operationStatuses/([^/]+)", {"GET": deployments.status}),
            (group + r"/deployments/([^/]+)/operations", {"GET": deployments.operations}),
            (sub + r"/operationresults/([^/]+)", {"GET": self._poll_operation}),
            (sub + r"/providers/Microsoft\.Compute/skus", {"GET": self._skus}),
            (sub + r"/providers/Microsoft\.Compute/locations/([^/]+)/usages", {"GET": self._usages}),
        ]

    def _poll_operation(self, sub: str, op_id: str) -> Answer:
        return self._deployments.poll_location(sub, op_id) or self._operations.poll(sub, op_id)

    def _skus(self, sub: str) -> Answer:
        return skus_page(self.endpoint, sub, self.restricted, second_page="page" in self._query)

    def _usages(self, sub: str, location: str) -> Answer:
        return usages_list(self.usages)
