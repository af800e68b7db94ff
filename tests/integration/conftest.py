"""Fixtures shared by the integration tests: the fake Azure Resource Manager (through the real SDK
clients), the test bed of `scripts/testbed up` (skipped without it on a developer machine, failing
under CI=true), the deploy fixture images, and artifact workspaces with a local or Azurite remote."""

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from services.artifacts.storage import LocalFolderStorage, Storage
from services.artifacts.workspace import Artifacts
from services.infra.arm.session import AzureTarget
from tests.fakearm import FakeArm, StaticCredential
from tests.integration.artifact_support import delete_made_containers, storage_factory
from tests.integration.deploy_support import Images, pushed_images
from tests.integration.images_support import ImagesBed, images_bed
from tests.testbed import read_testbed

SUBSCRIPTION = "00000000-0000-4000-8000-000000000001"
PUBLIC_KEY = "ssh-ed25519 " + "A" * 68 + " dev@workbench"


@pytest.fixture
def fake_arm(tmp_path: Path) -> Iterator[FakeArm]:
    """A running fake ARM on 127.0.0.1 over HTTPS with a CA made for this test."""
    with FakeArm(tmp_path) as arm:
        yield arm


@pytest.fixture
def ssh_key(tmp_path: Path) -> Path:
    path = tmp_path / "id_ed25519.pub"
    path.write_text(PUBLIC_KEY + "\n")
    return path


def target_for(arm: FakeArm, env: str = "dev", **changes: object) -> AzureTarget:
    values: dict[str, object] = {
        "subscription_id": SUBSCRIPTION,
        "resource_group": f"rg-llm-workbench-{env}",
        "location": "westeurope",
        "endpoint": arm.endpoint,
        "ca_bundle": arm.ca_file,
        "poll_seconds": 0.02,
        "credential": StaticCredential(),
    }
    values.update(changes)
    return AzureTarget(**values)  # type: ignore[arg-type]


def arm_environ(arm: FakeArm, tmp_path: Path, ssh_key: Path) -> dict[str, str]:
    """`WORKBENCH_AZURE__*` variables pointing the workbench at the fake ARM, plus a config dir under tmp_path."""
    return {
        "WORKBENCH_AZURE__SUBSCRIPTION_ID": SUBSCRIPTION,
        "WORKBENCH_AZURE__ARM_ENDPOINT": arm.endpoint,
        "WORKBENCH_AZURE__CA_BUNDLE": str(arm.ca_file),
        "WORKBENCH_AZURE__POLL_SECONDS": "0.02",
        "WORKBENCH_AZURE__INFRA_DIR": str(Path(__file__).parents[2] / "infra"),
        "WORKBENCH_AZURE__SSH_PUBLIC_KEY": str(ssh_key),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }


@pytest.fixture(scope="module")
def tb() -> dict[str, str]:
    """The test bed's addresses and files, as `scripts/testbed up` wrote them."""
    return read_testbed()


@pytest.fixture(scope="module")
def bed() -> ImagesBed:
    """The test bed as the Images tests use it: the building engine, the registry and its login, the
    deploy engine."""
    return images_bed()


@pytest.fixture(scope="module")
def images(tb: dict[str, str]) -> Iterator[Images]:
    """The deploy fixture's versions in the test registry, on a deploy target cleaned before and after the module."""
    with pushed_images(tb) as pushed:
        yield pushed


@pytest.fixture
def arts(tmp_path: Path) -> Artifacts:
    """A deploy test's artifact workspace, its remote a local folder."""
    return Artifacts(tmp_path / "workspace", open_remote=lambda: LocalFolderStorage(tmp_path / "remote"))


@pytest.fixture(scope="session", autouse=True)
def _azurite_containers_removed() -> Iterator[None]:
    """The Azurite containers the tests made go when the session ends."""
    yield
    delete_made_containers()


@pytest.fixture(params=["folder", "azurite"])
def remote_kind(request: pytest.FixtureRequest) -> str:
    """Which remote an artifacts test runs against: a local folder, or Azurite of the test bed."""
    return str(request.param)


@pytest.fixture
def open_remote(remote_kind: str, tmp_path: Path) -> Callable[[], Storage]:
    return storage_factory(remote_kind, tmp_path)
