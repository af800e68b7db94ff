"""The GPU queue in one user's hands: turns, slots, killed holders, chat holds, forged records."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from services.errors import UsageError
from services.gpuqueue import entries
from services.gpuqueue.entries import Entry
from services.gpuqueue.fair import gpu_time, order, pick
from services.gpuqueue.folder import SUBFOLDERS, Policy, QueueFolder
from services.gpuqueue.queue import GpuQueue, Grant
from services.gpuqueue.slots import Slot

GIB = 1024**3
ROOT = Path(__file__).resolve().parents[2]


def two_gpus() -> list[Slot]:
    return [Slot("GPU-a", 0, "H200", 140 * GIB, 100 * GIB), Slot("GPU-b", 1, "H200", 140 * GIB, 130 * GIB)]


@pytest.fixture
def folder(tmp_path: Path) -> QueueFolder:
    for name in SUBFOLDERS:
        (tmp_path / name).mkdir()
    return QueueFolder(tmp_path, shared=False, policy=Policy(fair_window_s=3600))


def job(name: str, gpus: int | str = 1, user: str = "me", queued_at: float | None = None) -> Entry:
    return Entry(user=user, kind="finetune", name=name, gpus=gpus, queued_at=queued_at or time.time())  # type: ignore[arg-type]


def wait_in_thread(queue: GpuQueue, entry: Entry, stop: threading.Event) -> dict[str, Grant | None]:
    out: dict[str, Grant | None] = {}
    thread = threading.Thread(target=lambda: out.setdefault("grant", queue.wait_turn(entry, stop)), daemon=True)
    thread.start()
    return out


def until(check: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


# -- the fair order -------------------------------------------------------------------------


def test_the_user_with_least_gpu_time_goes_first_then_the_oldest_job() -> None:
    old_heavy = job("a", user="alice", queued_at=1.0)
    new_light = job("b", user="bob", queued_at=2.0)
    newer_light = job("c", user="bob", queued_at=3.0)
    usage = {"alice": 7200.0, "bob": 60.0}
    assert [e.name for e in order([old_heavy, newer_light, new_light], usage)] == ["b", "c", "a"]
    assert [e.name for e in order([old_heavy, new_light], {})] == ["a", "b"]


def test_a_job_waiting_for_more_gpus_is_not_overtaken_and_gets_the_emptiest_ones() -> None:
    slots = two_gpus()
    big, small = job("big", gpus=2, queued_at=1.0), job("small", queued_at=2.0)
    assert pick([big, small], slots[:1], total=2, usage={}) is None
    chosen = pick([small], slots, total=2, usage={})
    assert chosen is not None and [s.id for s in chosen[1]] == ["GPU-b"]
    everything = pick([job("all", gpus="all")], slots, total=2, usage={})
    assert everything is not None and len(everything[1]) == 2


def test_gpu_time_counts_only_the_window_and_every_device() -> None:
    running = Entry(user="alice", kind="finetune", name="x", started_at=90.0, seen_at=100.0, devices=["a", "b"])
    records = [("alice", 0.0, 50.0, 1), ("bob", 40.0, 60.0, 2)]
    assert gpu_time(records, [running], since=45.0, now=100.0) == {"alice": 5.0 + 20.0, "bob": 30.0}


# -- turns on one machine ---------------------------------------------------------------------


def test_a_second_job_waits_for_the_only_slot_and_starts_when_it_is_released(folder: QueueFolder) -> None:
    queue = GpuQueue(folder, slots=lambda: [Slot("cpu")])
    first = queue.wait_turn(job("first"), threading.Event())
    assert first is not None and first.visible_devices is None
    out = wait_in_thread(queue, job("second"), threading.Event())
    until(lambda: len(queue.view().waiting) == 1)
    view = queue.view()
    assert [e.name for e in view.slots[0][1]] == ["first"] and view.position(view.waiting[0].id) == 1
    time.sleep(0.6)
    assert "grant" not in out
    first.release()
    until(lambda: out.get("grant") is not None)
    assert [e.name for e in queue.view().slots[0][1]] == ["second"]


def test_two_jobs_get_different_gpus_and_cuda_visible_devices_names_them(folder: QueueFolder) -> None:
    queue = GpuQueue(folder, slots=two_gpus)
    a = queue.wait_turn(job("a"), threading.Event())
    b = queue.wait_turn(job("b"), threading.Event())
    assert a is not None and b is not None
    assert {a.visible_devices, b.visible_devices} == {"GPU-a", "GPU-b"}
    assert a.visible_devices == "GPU-b"  # the one with more free memory first


def test_a_job_asking_for_more_gpus_than_the_machine_has_is_refused(folder: QueueFolder) -> None:
    with pytest.raises(UsageError, match="asks for 3 GPUs; this machine has 2"):
        GpuQueue(folder, slots=two_gpus).wait_turn(job("greedy", gpus=3), threading.Event())
    assert not list(folder.sub("entries").iterdir())


def test_stopping_a_waiting_job_removes_it_from_the_queue(folder: QueueFolder) -> None:
    queue = GpuQueue(folder, slots=lambda: [Slot("cpu")])
    holder = queue.wait_turn(job("holder"), threading.Event())
    stop = threading.Event()
    out = wait_in_thread(queue, job("waiter"), stop)
    until(lambda: len(queue.view().waiting) == 1)
    stop.set()
    until(lambda: "grant" in out)
    assert out["grant"] is None and queue.view().waiting == []
    assert holder is not None


HOLD_AND_SLEEP = """
import sys, threading, time
from pathlib import Path
from services.gpuqueue.entries import Entry
from services.gpuqueue.folder import Policy, QueueFolder
from services.gpuqueue.queue import GpuQueue
from services.gpuqueue.slots import Slot
queue = GpuQueue(QueueFolder(Path(sys.argv[1]), False, Policy()), slots=lambda: [Slot("cpu")])
grant = queue.wait_turn(Entry(user="me", kind="finetune", name="doomed"), threading.Event())
grant.publish(0.1, 60.0)
time.sleep(0.5)
grant.publish(0.2, 50.0)  # its last heartbeat
print("holding", flush=True)
time.sleep(600)
"""


def test_a_killed_holder_frees_its_slot_and_its_time_still_counts(folder: QueueFolder) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_AND_SLEEP, str(folder.path)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
    queue = GpuQueue(folder, slots=lambda: [Slot("cpu")])
    assert [e.name for e in queue.view().slots[0][1]] == ["doomed"]
    time.sleep(0.5)  # time after the last heartbeat does not count
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    grant = queue.wait_turn(job("next"), threading.Event())
    assert grant is not None
    used = queue.view().usage[entries.current_user()]
    assert 0.45 < used < 0.9  # the dead job's time, until its last heartbeat
    assert all(e.name != "doomed" for e in entries.read_all(folder)[1])  # swept into a usage record


# -- chat models and cancel requests ----------------------------------------------------------


def test_a_loaded_chat_model_keeps_fine_tunes_off_its_gpu(folder: QueueFolder) -> None:
    queue = GpuQueue(folder, slots=two_gpus)
    chat = queue.hold_for_chat("demo-chat", 1)
    assert chat is not None and chat.entry.kind == "chat"
    grant = queue.wait_turn(job("tune"), threading.Event())
    assert grant is not None and grant.visible_devices == "GPU-a"
    with pytest.raises(UsageError, match=r"GPU 0 is held by .* finetune 'tune'"):
        queue.hold_for_chat("second-chat", 0)
    colleague = queue.hold_for_chat("colleague-chat", 1)  # chat models share a GPU
    assert colleague is not None
    assert GpuQueue(folder, slots=lambda: [Slot("cpu")]).hold_for_chat("cpu", 0) is None


def test_a_cancel_request_counts_only_from_the_owner_root_or_an_admin(folder: QueueFolder) -> None:
    queue = GpuQueue(folder, slots=lambda: [Slot("cpu")])
    entry = Entry(user="someone", kind="finetune", name="x", uid=4242)
    request = folder.sub("cancel") / f"{entry.id}.anything"
    request.write_text("")
    os.chown(request, 5151, 5151)  # a stranger's request
    assert not queue.cancel_requested(entry)
    os.chown(request, 4242, 4242)
    assert queue.cancel_requested(entry)
    os.chown(request, 0, 0)
    assert queue.cancel_requested(entry)


def test_records_that_lie_about_their_owner_are_ignored(folder: QueueFolder) -> None:
    queue = GpuQueue(folder, slots=lambda: [Slot("cpu")])
    forged = Entry(user="victim", kind="finetune", name="fake", uid=4242, state="running", devices=["cpu"])
    (folder.sub("entries") / f"{forged.id}.json").write_text(json.dumps(forged.__dict__))
    (folder.sub("entries") / f"{forged.id}.lock").touch()
    assert entries.read_all(folder) == ([], [])
    (folder.sub("usage") / "4242.jsonl").write_text(json.dumps({"start": 0, "end": time.time(), "gpus": 8}) + "\n")
    mine = folder.sub("usage") / f"{os.geteuid()}.jsonl"
    mine.write_text(
        '{"start": "x"}\nnot json\n' + json.dumps({"start": time.time() - 10, "end": time.time(), "gpus": 1})
    )
    usage = queue.view().usage
    assert set(usage) == {entries.current_user()} and 9.0 < usage[entries.current_user()] < 12.0


def test_a_playground_model_on_the_gpu_is_registered_until_the_models_close(
    folder: QueueFolder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_llama_folder: Path
) -> None:
    from services.chat import local
    from services.chat.local import LocalModels
    from services.chat.variant import Variant

    queue = GpuQueue(folder, slots=two_gpus)
    monkeypatch.setattr(local, "on_gpu", lambda load_4bit: True)  # this machine has no CUDA to load onto
    models = LocalModels(cache_dir=tmp_path, hold_gpu=lambda name: queue.hold_for_chat(name, device_index=0))
    models.get(Variant(name="base", model=str(tiny_llama_folder)))
    [(_, holders), (_, nobody)] = queue.view().slots
    assert [(e.kind, e.name) for e in holders] == [("chat", str(tiny_llama_folder))] and nobody == []
    tune = queue.wait_turn(job("tune", gpus=1), threading.Event())
    assert tune is not None and tune.visible_devices == "GPU-b"  # not into the chat model's memory
    tune.release()
    models.close()
    assert all(not held for _, held in queue.view().slots)


def test_a_released_grant_is_gone_for_good_even_if_a_heartbeat_publishes_late(folder: QueueFolder) -> None:
    queue = GpuQueue(folder, slots=lambda: [Slot("cpu")])
    grant = queue.wait_turn(job("done"), threading.Event())
    assert grant is not None
    grant.release()
    grant.publish(1.0, 0.0)  # the heartbeat thread, one beat too late
    grant.release()
    assert entries.read_all(folder) == ([], [])
    assert len(queue.view().usage) == 1  # counted once, from the usage record
