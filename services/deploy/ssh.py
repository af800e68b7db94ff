"""The target's Docker engine over SSH: a local unix socket bridged to `docker system dial-stdio`.

Every connection docker-py opens to the socket runs `ssh ... docker system dial-stdio` on the target,
with the user's keys or agent and known_hosts. Host keys are checked strictly: a host that is not in
known_hosts is refused, never added. Nothing secret goes through argv: the SSH key is a file path.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from services.deploy.target import Target, ssh_address
from services.errors import AccessDeniedError, HostKeyError, TargetUnavailableError

CHECK_TIMEOUT_S = 20
BUFFER = 1 << 16


def ssh_argv(target: Target, *command: str, control: Path | None = None, master: bool = False) -> list[str]:
    """`ssh` with strict host key checking and no prompts, running `command` on the target; through the
    multiplexing master at `control` when given (or as that master, with `master`)."""
    address = ssh_address(target.docker_host)
    argv = ["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "ConnectTimeout=10"]
    argv += ["-o", "ServerAliveInterval=15", "-p", str(address.port)]
    if target.identity_file is not None:
        argv += ["-i", str(target.identity_file), "-o", "IdentitiesOnly=yes"]
    if target.known_hosts is not None:
        argv += ["-o", f"UserKnownHostsFile={target.known_hosts}", "-o", "GlobalKnownHostsFile=/dev/null"]
    if control is not None:
        argv += ["-o", f"ControlPath={control}"]
        argv += ["-M", "-N", "-o", "ControlPersist=no"] if master else ["-o", "ControlMaster=no"]
    destination = f"{address.user}@{address.host}" if address.user else address.host
    return [*argv, "--", destination, *command]  # `--`: the destination is never read as an option


def check_reachable(target: Target, *, control: Path | None = None) -> str:
    """The target engine's version over SSH; a clear error for an unknown host key, a refused login or no route."""
    try:
        done = subprocess.run(
            ssh_argv(target, "docker", "version", "--format", "{{.Server.Version}}", control=control),
            capture_output=True,
            text=True,
            timeout=CHECK_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise TargetUnavailableError(f"target {target.name}: no answer over SSH within {CHECK_TIMEOUT_S} s") from None
    if done.returncode != 0:
        raise _ssh_error(target, done.stderr)
    return done.stdout.strip()


def _ssh_error(target: Target, stderr: str) -> Exception:
    host = ssh_address(target.docker_host).host
    last = (stderr.strip().splitlines() or ["ssh failed"])[-1][:300]
    if "Host key verification failed" in stderr or "REMOTE HOST IDENTIFICATION HAS CHANGED" in stderr:
        return HostKeyError(
            f"target {target.name}: the host key of {host} is not trusted; connection refused",
            hint=f"check its fingerprint with the owner of {host}, then: ssh-keyscan {host} >> ~/.ssh/known_hosts",
        )
    if "Permission denied" in stderr:
        return AccessDeniedError(
            f"target {target.name}: {host} refused the SSH login ({last})",
            hint="load your key into ssh-agent or set the target's identity_file",
        )
    if "docker" in stderr and ("not found" in stderr or "permission denied" in stderr.lower()):
        return TargetUnavailableError(f"target {target.name}: no usable Docker engine on {host} ({last})")
    return TargetUnavailableError(f"target {target.name}: cannot reach {host} over SSH ({last})")


class DockerTunnel:
    """A local socket whose connections reach the target's engine; use as a context manager.

    One SSH connection (a multiplexing master) carries every docker-py connection, so only the first
    pays for the handshake.
    """

    def __init__(self, target: Target) -> None:
        self.target = target
        self._dir = Path(tempfile.mkdtemp(prefix="wb-ssh-"))  # mode 0700: only this user reaches the sockets
        self.path = self._dir / "docker.sock"
        self.control = self._dir / "master"
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._master: subprocess.Popen[bytes] | None = None
        self._closed = threading.Event()

    @property
    def url(self) -> str:
        return f"unix://{self.path}"

    def __enter__(self) -> DockerTunnel:
        try:
            self._start_master()
            check_reachable(self.target, control=self.control)
        except BaseException:
            self.__exit__()
            raise
        self._server.bind(str(self.path))
        self._server.listen(16)
        threading.Thread(target=self._accept, name="wb-ssh-accept", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closed.set()
        with contextlib.suppress(OSError):
            self._server.close()
        if self._master is not None and self._master.poll() is None:
            self._master.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._master.wait(timeout=5)
        shutil.rmtree(self._dir, ignore_errors=True)

    def _start_master(self) -> None:
        argv = ssh_argv(self.target, control=self.control, master=True)
        master = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._master = master
        deadline = time.monotonic() + CHECK_TIMEOUT_S
        while not self.control.exists():
            if master.poll() is not None:
                raise _ssh_error(self.target, (master.stderr.read() if master.stderr else b"").decode(errors="replace"))
            if time.monotonic() > deadline:
                raise TargetUnavailableError(f"target {self.target.name}: no SSH connection within {CHECK_TIMEOUT_S} s")
            time.sleep(0.02)

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._bridge, args=(conn,), name="wb-ssh-bridge", daemon=True).start()

    def _bridge(self, conn: socket.socket) -> None:
        """One docker-py connection <-> one `docker system dial-stdio` session on the master."""
        proc = subprocess.Popen(
            ssh_argv(self.target, "docker", "system", "dial-stdio", control=self.control),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            bufsize=0,
        )
        assert proc.stdin is not None and proc.stdout is not None
        stdin, stdout = proc.stdin, proc.stdout
        upstream = threading.Thread(target=_pump, args=(conn.recv, stdin.write, stdin.close), daemon=True)
        upstream.start()
        _pump(lambda n: os.read(stdout.fileno(), n), conn.sendall, lambda: _shutdown(conn))
        upstream.join(timeout=5)
        conn.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _pump(read: Callable[[int], bytes], write: Callable[[bytes], object], done: Callable[[], None]) -> None:
    try:
        while chunk := read(BUFFER):
            write(chunk)
    except (OSError, ValueError):
        pass  # the other side went away; `done` closes ours
    finally:
        with contextlib.suppress(OSError):
            done()


def _shutdown(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_RDWR)
