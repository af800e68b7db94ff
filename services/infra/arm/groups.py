"""The target's resource group: does it exist, create it, delete it with everything in it."""

from __future__ import annotations

from collections.abc import Callable

from services.errors import NotFoundError
from services.infra.arm.errors import arm_errors
from services.infra.arm.session import Session


def group_exists(session: Session) -> bool:
    """True when the target's resource group exists."""
    with arm_errors(f"checking resource group {session.group}"):
        return bool(session.resources.resource_groups.check_existence(session.group))


def ensure_group(session: Session, env: str) -> None:
    """Create (or update the tags of) the target's resource group in its location."""
    body = {"location": session.target.location, "tags": {"app": "llm-workbench", "env": env}}
    with arm_errors(f"creating resource group {session.group}"):
        session.resources.resource_groups.create_or_update(session.group, body)  # type: ignore[arg-type]


def delete_group(session: Session, *, on_progress: Callable[[str], None] | None = None) -> None:
    """Delete the target's resource group and everything in it; waits until Azure is done."""
    with arm_errors(f"deleting resource group {session.group}"):
        if not session.resources.resource_groups.check_existence(session.group):
            raise NotFoundError(f"resource group {session.group} does not exist", hint="nothing to delete")
        poller = session.resources.resource_groups.begin_delete(session.group)
        while not poller.done():
            if on_progress:
                on_progress(f"deleting {session.group}: {poller.status()}")
            poller.wait(session.target.poll_seconds)
        poller.result()
