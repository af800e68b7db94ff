"""One error hierarchy for everything a user can cause.

Every message says what happened, to which object, and what to do next. The CLI maps
``exit_code`` to its exit status (1: the operation failed, 2: usage or configuration).

What to do next comes in two parts: `hint`, text that is true on every surface ("set HF_TOKEN if it is
private"), and `step`, the remedy as a fact (`NextStep`): services never name a CLI command or a key,
each front-end phrases the step for its own surface (`workbench.cli.steps`, `workbench.tui.steps`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NextStep:
    """The remedy as a fact: which verb helps and with what arguments; each front-end phrases it.

    `verb` is a dotted id, `<area>.<verb>` (`models.download`, `finetune.ls`, `deploy.lock_release`);
    `args` are the facts the phrasing may name, as (name, value) pairs (`(("repo", "acme/x"),)`).
    """

    verb: str
    args: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, verb: str, **args: object) -> NextStep:
        """`NextStep.of("models.download", repo="acme/x")`; arguments that are None are left out."""
        return cls(verb, tuple((name, str(value)) for name, value in args.items() if value is not None))

    @property
    def values(self) -> dict[str, str]:
        """The arguments by name."""
        return dict(self.args)


class WorkbenchError(Exception):
    """Base of all errors the workbench reports to a user."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None, step: NextStep | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.step = step
        """What helps next, as a fact; never part of `str(error)` (the front-ends phrase it)."""

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ConfigError(WorkbenchError):
    """A settings file, setting or environment variable is malformed."""

    exit_code = 2


class UntrustedEndpointError(ConfigError):
    """A variant (from a suite or the Playground) asks to send an API key to an endpoint the user did not trust."""


class UsageError(WorkbenchError):
    """The request itself is invalid (bad argument combination, bad pattern)."""

    exit_code = 2


class NotFoundError(WorkbenchError):
    """A model, revision, file or record does not exist."""


class AccessDeniedError(WorkbenchError):
    """The hub or a service refused access (gated model, missing or wrong token)."""


class HubUnavailableError(WorkbenchError):
    """The hub cannot be reached, or offline mode is on."""


class HubResponseError(WorkbenchError):
    """The hub (or a mirror) answered with something malformed or unsafe: bad JSON, headers, sizes or names."""


class InsufficientDiskError(WorkbenchError):
    """Not enough free disk space for the requested operation."""


class CancelledError(WorkbenchError):
    """The user cancelled a long operation; partial work is kept for a resume."""


class CredentialsError(WorkbenchError):
    """No Azure credentials were found, or Azure refused them."""


class AzureUnavailableError(WorkbenchError):
    """Azure Resource Manager (or the configured endpoint) cannot be reached."""


class ArmError(WorkbenchError):
    """Azure Resource Manager rejected a request or reported a failure.

    `code`, `target` and `details` come from ARM's error body, so a message can show them.
    """

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        step: NextStep | None = None,
        code: str | None = None,
        target: str | None = None,
        details: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message, hint=hint, step=step)
        self.code = code
        self.target = target
        self.details = details


class DeploymentFailedError(ArmError):
    """A deployment ended in the Failed state; `details` lists its failed operations."""


class QuotaError(WorkbenchError):
    """The subscription's vCPU quota (or a VM size's availability) does not allow the deployment."""


class InfraInvalidError(WorkbenchError):
    """The templates or parameter files fail validation or a policy check."""


class SuiteError(ConfigError):
    """A prompt suite file is malformed; the message names `file:line: field: reason`."""


class ChatBackendError(WorkbenchError):
    """A chat backend could not answer: endpoint down, model missing, timeout, bad adapter."""


class VectorStoreUnavailableError(WorkbenchError):
    """The Chroma server (or the embedded store's folder) cannot be reached or opened."""


class ReadOnlyCollectionError(UsageError):
    """The collection was not made by the workbench, so the workbench does not change it."""


class EmbeddingModelUnknownError(ConfigError):
    """A collection does not record which embedding model made it, and none was given."""


class StorageUnavailableError(WorkbenchError):
    """Artifact storage (Azure Blob Storage or a folder) cannot be reached or answered with an error."""


class IntegrityError(WorkbenchError):
    """A stored file does not match the sha256 its manifest records."""


class VersionConflictError(WorkbenchError):
    """An artifact version exists (or is being pushed) with other contents; versions are immutable."""


class ArtifactInUseError(WorkbenchError):
    """An artifact version cannot be deleted because a label or a live release points to it."""


class HostKeyError(AccessDeniedError):
    """A deploy target's SSH host key is unknown or changed; the connection is refused."""


class TargetUnavailableError(WorkbenchError):
    """A deploy target's Docker engine cannot be reached."""


class DeployLockedError(WorkbenchError):
    """Another deploy holds the target's lock for this app."""


class DeployFailedError(WorkbenchError):
    """A deploy step failed; the old version keeps serving. `logs` holds the new container's last lines."""

    def __init__(self, message: str, *, hint: str | None = None, step: NextStep | None = None, logs: str = "") -> None:
        super().__init__(message, hint=hint, step=step)
        self.logs = logs


class DockerUnavailableError(WorkbenchError):
    """The Docker engine cannot be reached (not running, wrong `images.docker_host`, no permission)."""


class ImageBuildError(WorkbenchError):
    """A Docker build failed: a Dockerfile step, the build context or the base image."""


class RegistryError(WorkbenchError):
    """The container registry cannot be reached, or it rejected a push or a request."""


class RegistryAuthError(RegistryError, AccessDeniedError):
    """The registry refused the credentials, or none were given where it needs some."""
