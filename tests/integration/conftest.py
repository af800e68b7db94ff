"""Fixtures for tests that talk to the local fake Azure Resource Manager through the real SDK clients."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from services.infra.arm.session import AzureTarget
from tests.fakearm import FakeArm, StaticCredential

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
