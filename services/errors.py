"""One error hierarchy for everything a user can cause.

Every message says what happened, to which object, and what to do next. The CLI maps
``exit_code`` to its exit status (1: the operation failed, 2: usage or configuration).
"""

from __future__ import annotations


class WorkbenchError(Exception):
    """Base of all errors the workbench reports to a user."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ConfigError(WorkbenchError):
    """A settings file, setting or environment variable is malformed."""

    exit_code = 2


class UsageError(WorkbenchError):
    """The request itself is invalid (bad argument combination, bad pattern)."""

    exit_code = 2


class NotFoundError(WorkbenchError):
    """A model, revision, file or record does not exist."""


class AccessDeniedError(WorkbenchError):
    """The hub or a service refused access (gated model, missing or wrong token)."""


class HubUnavailableError(WorkbenchError):
    """The hub cannot be reached, or offline mode is on."""


class InsufficientDiskError(WorkbenchError):
    """Not enough free disk space for the requested operation."""


class CancelledError(WorkbenchError):
    """The user cancelled a long operation; partial work is kept for a resume."""
