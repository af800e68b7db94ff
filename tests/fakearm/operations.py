"""Long-running operations polled through `Location`: resource group deletes and what-if."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .records import Answer, ArmResponseError

if TYPE_CHECKING:
    from .server import FakeArm


@dataclass
class _Lro:
    """A long-running operation: answers 202 for `polls` polls, then `finish()`'s (status, body)."""

    polls: int
    finish: Callable[[], tuple[int, Any]]


class LongRunningOperations:
    """The operations of one `FakeArm` that are still being polled."""

    def __init__(self, arm: FakeArm) -> None:
        self.arm = arm
        self._lros: dict[str, _Lro] = {}

    def start(self, sub: str, finish: Callable[[], tuple[int, Any]]) -> dict[str, str]:
        """Start an operation that `finish()`es after `arm.lro_polls` polls; the headers that point to it."""
        op_id = self.arm.new_operation_id()
        self._lros[op_id] = _Lro(self.arm.lro_polls, finish)
        return {"Location": f"{self.arm.endpoint}/subscriptions/{sub}/operationresults/{op_id}?api-version=2025-04-01"}

    def poll(self, sub: str, op_id: str) -> Answer:
        """202 while the operation runs, then its result."""
        lro = self._lros.get(op_id)
        if lro is None:
            raise ArmResponseError(404, "NotFound", f"operation {op_id} not found")
        if lro.polls > 0:
            lro.polls -= 1
            return 202, {"Location": f"{self.arm.endpoint}/subscriptions/{sub}/operationresults/{op_id}"}, None
        status, body = lro.finish()
        return status, {}, body
