"""Where the queue lives: the shared state folder, its policy file, and `workbench server init`.

The shared folder is owned by root and the team's group, setgid (new files belong to the group)
and sticky (only a file's owner may delete or replace it), so team members read each other's
entries but can change only their own. The policy (`server.toml`) is root's: users cannot give
themselves a shorter fairness window.
"""

from __future__ import annotations

import grp
import os
import pwd
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path

from services.errors import ConfigError, UsageError

DEFAULT_STATE_DIR = Path("/var/lib/llm-workbench")
DEFAULT_GROUP = "llm-workbench"
POLICY_FILE = "server.toml"
SUBFOLDERS = ("entries", "locks", "usage", "cancel")
SHARED_MODE = 0o3770  # setgid + sticky, rwx for root and the group, nothing for others
FILE_MODE = 0o640  # others in the group may read (and flock) a member's files, never change them


@dataclass(frozen=True)
class Policy:
    """The machine's queue rules, from `server.toml`."""

    fair_window_s: float = 24 * 3600.0
    admin_group: str | None = None


@dataclass(frozen=True)
class QueueFolder:
    """An opened queue folder; `shared` is False for the per-workspace fallback."""

    path: Path
    shared: bool
    policy: Policy

    def sub(self, name: str) -> Path:
        return self.path / name


def open_folder(state_dir: Path, data_dir: Path) -> QueueFolder:
    """The shared queue when `state_dir` is set up and this user may write it; else the workspace's."""
    if _usable(state_dir):
        return QueueFolder(state_dir, True, read_policy(state_dir / POLICY_FILE))
    private = data_dir / "gpu-queue"
    for name in SUBFOLDERS:
        (private / name).mkdir(parents=True, exist_ok=True, mode=0o700)
    return QueueFolder(private, False, Policy())


def _usable(state_dir: Path) -> bool:
    try:
        return (state_dir / POLICY_FILE).is_file() and os.access(state_dir / "entries", os.W_OK | os.X_OK)
    except PermissionError:  # not in the team's group: the folder cannot even be looked into
        return False


def unshared_reason(state_dir: Path) -> str:
    """Why this user is not on the shared queue, with the step that fixes it."""
    if not state_dir.exists():
        return f"no shared queue at {state_dir}: run `sudo workbench server init` to share the GPUs with the team"
    return f"{state_dir} is not writable for you: ask an admin to add you to its group ({_group_of(state_dir)})"


def read_policy(path: Path) -> Policy:
    try:
        data = tomllib.loads(path.read_text())
        hours = float(data.get("fair_window_hours", 24))
        admin = data.get("admin_group")
    except (OSError, tomllib.TOMLDecodeError, TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: not a valid queue policy: {exc}") from None
    if hours <= 0 or not (admin is None or isinstance(admin, str)):
        raise ConfigError(f"{path}: fair_window_hours must be > 0 and admin_group a group name")
    return Policy(hours * 3600.0, admin or None)


def init_server(
    state_dir: Path,
    *,
    group: str = DEFAULT_GROUP,
    members: list[str] | None = None,
    admin_group: str | None = None,
    fair_window_hours: float = 24.0,
) -> list[str]:
    """Create (or repair) the shared folder as root; return what was done, one line each."""
    if os.geteuid() != 0:
        raise UsageError("workbench server init must run as root", hint="run it with sudo")
    if fair_window_hours <= 0:
        raise UsageError("the fairness window must be longer than 0 hours")
    done = []
    if not _group_exists(group):
        subprocess.run(["groupadd", "--system", group], check=True)
        done.append(f"created group {group}")
    for user in members or []:
        _known_user(user)
        subprocess.run(["usermod", "--append", "--groups", group, user], check=True)
        done.append(f"added {user} to {group}")
    gid = grp.getgrnam(group).gr_gid
    for folder in (state_dir, *(state_dir / name for name in SUBFOLDERS)):
        folder.mkdir(parents=True, exist_ok=True)
        os.chown(folder, 0, gid)
        os.chmod(folder, SHARED_MODE)
    policy = state_dir / POLICY_FILE
    admin_line = f'admin_group = "{admin_group}"\n' if admin_group else ""
    policy.write_text(f"fair_window_hours = {fair_window_hours:g}\n{admin_line}")
    os.chown(policy, 0, 0)
    os.chmod(policy, 0o644)
    done.append(f"{state_dir}: group {group}, mode {SHARED_MODE:o}, fairness window {fair_window_hours:g} h")
    return done


def _group_exists(name: str) -> bool:
    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


def _known_user(name: str) -> None:
    try:
        pwd.getpwnam(name)
    except KeyError:
        raise UsageError(f"no user named {name!r} on this machine") from None


def _group_of(path: Path) -> str:
    gid = path.stat().st_gid
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def may_admin(uid: int, policy: Policy) -> bool:
    """Whether `uid` is root or in the policy's admin group."""
    if uid == 0:
        return True
    if policy.admin_group is None or not _group_exists(policy.admin_group):
        return False
    group = grp.getgrnam(policy.admin_group)
    try:
        user = pwd.getpwuid(uid)
    except KeyError:
        return False
    return user.pw_gid == group.gr_gid or user.pw_name in group.gr_mem


def create_private(path: Path, data: str) -> None:
    """Write a new file readable by the folder's group and nobody else, whatever the umask."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        os.write(fd, data.encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)
