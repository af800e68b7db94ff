"""The deploy lock's idea of a dead owner: only a process on this very machine and boot that is gone (or
whose pid now belongs to another process) is provably dead; anything else waits for its lease."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from services.deploy.lock import Lock, Process


def finished_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_this_process_is_alive() -> None:
    assert not Process.me().provably_dead()


def test_a_finished_process_on_this_machine_is_dead() -> None:
    me = Process.me()
    assert replace(me, pid=finished_pid(), started="").provably_dead()


def test_a_reused_pid_is_another_process() -> None:
    me = Process.me()
    assert me.started and replace(me, pid=os.getpid(), started=str(int(me.started) + 1)).provably_dead()


def test_another_machine_or_boot_is_never_provably_dead() -> None:
    gone = replace(Process.me(), pid=finished_pid())
    assert not replace(gone, boot="another-boot").provably_dead()
    assert not replace(gone, boot="").provably_dead()


def test_stale_only_after_the_lease_or_with_a_dead_owner() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    alive = Lock("app", "bob", "1", "2020-01-01T00:00:00+00:00", "elsewhere", 4242,
                 expires=now + timedelta(seconds=1), now=now, process=replace(Process.me(), boot="other"))  # fmt: skip
    assert not alive.stale  # taken six years ago by its label, but its lease runs
    assert replace(alive, now=now + timedelta(seconds=2)).stale
    assert replace(alive, process=replace(Process.me(), pid=finished_pid())).stale
