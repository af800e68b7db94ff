"""The shared GPU queue with real Unix users: `workbench server init`, fairness across users, who
may cancel whose job, and what one member cannot do to another's entries.

Each member runs tests/integration/gpu_team_client.py with the system Python, from a copy of
`services.gpuqueue` every user can read, against one fake GPU (tests/fakes/nvidia-smi).
"""

from __future__ import annotations

import grp
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from workbench.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = "/usr/bin/python3"
GPU0 = "GPU-00000000-0000-0000-0000-000000000000"


def _require_root_tools() -> None:
    missing = [tool for tool in ("useradd", "runuser", "groupadd") if shutil.which(tool) is None]
    if os.geteuid() != 0 or missing or not Path(SYSTEM_PYTHON).exists():
        message = f"needs root, {SYSTEM_PYTHON} and useradd/runuser (missing: {missing})"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)


@dataclass
class Team:
    state_dir: Path
    code: Path
    group: str
    admins: str
    alice: str
    bob: str
    admin: str
    outsider: str

    def start(self, user: str, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [
                str(shutil.which("runuser")),
                "-u",
                user,
                "--",
                SYSTEM_PYTHON,
                str(self.code / "gpu_team_client.py"),
                str(self.state_dir),
                *args,
            ],
            cwd=self.code,
            env={
                "PATH": f"{self.code}:/usr/sbin:/usr/bin:/sbin:/bin",
                "PYTHONPATH": str(self.code),
                "FAKE_NVIDIA_SMI": str(self.code / "gpus.json"),
                "HOME": "/nonexistent",
            },
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def once(self, user: str, *args: str) -> str:
        process = self.start(user, *args)
        out, _ = process.communicate(timeout=60)
        return out.strip()

    def view(self, user: str) -> dict[str, list[list[object]]]:
        return json.loads(self.once(user, "view").splitlines()[-1])


def expect(process: subprocess.Popen[str], prefix: str, timeout: float = 30.0) -> str:
    """The next line of `process` that starts with `prefix` (failing on timeout or exit)."""
    assert process.stdout is not None
    seen = []
    while True:
        ready, _, _ = select.select([process.stdout], [], [], timeout)
        assert ready, f"no {prefix!r} within {timeout} s; saw {seen}"
        line = process.stdout.readline()
        assert line, f"exited before {prefix!r}; saw {seen}"
        seen.append(line.strip())
        if line.startswith(prefix):
            return line.strip()


@pytest.fixture
def team() -> Iterator[Team]:
    _require_root_tools()
    tag = f"wbq{os.getpid() % 100000}"
    users = [f"{tag}a", f"{tag}b", f"{tag}m", f"{tag}o"]
    group, admins = f"{tag}team", f"{tag}adm"
    code = Path(tempfile.mkdtemp(prefix="wbq-code-"))
    state_dir = Path(tempfile.mkdtemp(prefix="wbq-state-")) / "llm-workbench"
    state_dir.parent.chmod(0o755)
    try:
        subprocess.run(["groupadd", admins], check=True)
        for user in users:
            subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", user], check=True)
        subprocess.run(["usermod", "--append", "--groups", admins, users[2]], check=True)
        _copy_client(code)
        result = CliRunner().invoke(
            cli,
            ["server", "init", "--state-dir", str(state_dir), "--group", group, "--admin-group", admins]
            + [arg for user in users[:3] for arg in ("--member", user)],
        )
        assert result.exit_code == 0, result.output
        yield Team(state_dir, code, group, admins, *users)
    finally:
        subprocess.run(["pkill", "-u", ",".join(users)], check=False)
        for user in users:
            subprocess.run(["userdel", user], check=False, capture_output=True)
        for name in (group, admins):
            subprocess.run(["groupdel", name], check=False, capture_output=True)
        shutil.rmtree(code, ignore_errors=True)
        shutil.rmtree(state_dir.parent, ignore_errors=True)


def _copy_client(code: Path) -> None:
    """What the members run, readable by everyone: the queue package, its imports, the client, the fake GPU."""
    (code / "services").mkdir()
    for name in ("__init__.py", "errors.py", "gpu.py"):
        shutil.copy(ROOT / "services" / name, code / "services" / name)
    shutil.copytree(ROOT / "services" / "gpuqueue", code / "services" / "gpuqueue")
    shutil.copy(ROOT / "tests" / "integration" / "gpu_team_client.py", code)
    shutil.copy(ROOT / "tests" / "fakes" / "nvidia-smi", code / "nvidia-smi")
    from tests.fakes.gpus import gpu

    (code / "gpus.json").write_text(json.dumps({"devices": [gpu(0)], "fail": None}))
    for path in [code, *code.rglob("*")]:
        path.chmod(0o755 if path.is_dir() or path.name == "nvidia-smi" else 0o644)


def test_server_init_makes_a_folder_only_the_team_reads_and_only_root_configures(team: Team) -> None:
    info = team.state_dir.stat()
    assert info.st_mode & 0o7777 == 0o3770 and info.st_uid == 0
    assert grp.getgrgid(info.st_gid).gr_name == team.group
    policy = team.state_dir / "server.toml"
    assert policy.stat().st_uid == 0 and policy.stat().st_mode & 0o777 == 0o644
    assert "fair_window_hours = 24" in policy.read_text()
    assert team.alice in grp.getgrnam(team.group).gr_mem
    refused = team.once(team.outsider, "view")
    assert "not on the shared queue" in refused  # an outsider cannot even read who waits
    again = CliRunner().invoke(cli, ["server", "init", "--state-dir", str(team.state_dir), "--group", team.group])
    assert again.exit_code == 0 and "created group" not in again.output


def test_the_next_gpu_goes_to_the_member_with_less_gpu_time_and_everyone_sees_who_holds_it(team: Team) -> None:
    first = team.start(team.alice, "run", "alice-first")
    assert expect(first, "started") == f"started {GPU0}"
    second = team.start(team.alice, "run", "alice-second")
    wait_until_listed(team, expect(second, "queued").split()[1])
    later = team.start(team.bob, "run", "bob-later")
    wait_until_listed(team, expect(later, "queued").split()[1])
    bob_sees = team.view(team.bob)
    assert [row[:4] for row in bob_sees["devices"][GPU0]] == [[team.alice, "alice-first", 0.25, 90.0]]
    alice_sees = team.view(team.alice)
    assert [(user, name, position) for user, name, position, _ in alice_sees["waiting"]] == [
        (team.bob, "bob-later", 1),  # bob has used no GPU time; alice has
        (team.alice, "alice-second", 2),
    ]
    assert first.stdin is not None
    first.stdin.write("release\n")
    first.stdin.flush()
    expect(first, "released")
    assert expect(later, "started") == f"started {GPU0}"
    assert team.view(team.alice)["devices"][GPU0][0][:2] == [team.bob, "bob-later"]
    for process in (second, later):
        process.terminate()
        process.wait(timeout=30)


def test_only_the_owner_root_or_an_admin_cancels_a_job(team: Team) -> None:
    running = team.start(team.alice, "run", "alice-job")
    expect(running, "started")
    waiting = team.start(team.alice, "run", "alice-waiting")
    entry_id = expect(waiting, "queued").split()[1]
    wait_until_listed(team, entry_id)
    refused = team.once(team.bob, "cancel", entry_id)
    assert refused.startswith("refused: 'alice-waiting' belongs to") and team.admins in refused
    assert team.once(team.bob, "forge-cancel", entry_id) == "forged"
    assert [row[1] for row in team.view(team.bob)["waiting"]] == ["alice-waiting"]  # the forgery is ignored
    assert team.once(team.bob, "tamper", entry_id) == "PermissionError PermissionError PermissionError"
    assert "admin request" in team.once(team.admin, "cancel", entry_id)
    assert expect(waiting, "cancelled")
    [(_, name, _, _, running_id)] = team.view(team.alice)["devices"][GPU0]
    assert name == "alice-job"
    assert "refused" in team.once(team.bob, "cancel", str(running_id))
    assert "asked" in team.once(team.alice, "cancel", str(running_id))
    expect(running, "released")


def wait_until_listed(team: Team, entry_id: str) -> None:
    deadline = time.monotonic() + 30
    while entry_id not in [row[3] for row in team.view(team.alice)["waiting"]]:
        assert time.monotonic() < deadline, f"{entry_id} never queued"
