"""One team member's side of the GPU queue, run by tests/integration/test_gpu_server.py as a real Unix user.

It needs only the standard library and `services.gpuqueue` (copied to a folder every user can read):
    run NAME [GPUS]   wait a turn, publish progress and an ETA, hold until stdin says release, SIGTERM
                      or an accepted cancel request; prints "started DEVICES" / "cancelled" / "released"
    view              the queue as JSON, as this user sees it
    cancel ID         ask the queue to cancel entry ID; prints the answer or "refused: ..."
    forge-cancel ID   leave a cancel request for ID by hand (the owner must ignore it)
    tamper ID         try to overwrite and delete another member's entry; prints what the kernel said
"""

from __future__ import annotations

import json
import signal
import sys
import tempfile
import threading
from pathlib import Path

from services.errors import WorkbenchError
from services.gpuqueue import entries
from services.gpuqueue.entries import Entry
from services.gpuqueue.folder import open_folder
from services.gpuqueue.queue import GpuQueue


def main(state_dir: Path, command: str, *args: str) -> None:
    queue = GpuQueue(open_folder(state_dir, Path(tempfile.mkdtemp())))
    assert queue.folder.shared, "this user is not on the shared queue"
    if command == "run":
        run(queue, args[0], int(args[1]) if len(args) > 1 else 1)
    elif command == "view":
        print(json.dumps(view(queue)), flush=True)
    elif command == "cancel":
        try:
            print(queue.cancel(args[0]), flush=True)
        except WorkbenchError as exc:
            print(f"refused: {exc.message} ({exc.hint})", flush=True)
    elif command == "forge-cancel":
        (queue.folder.sub("cancel") / f"{args[0]}.forged").write_text("please")
        print("forged", flush=True)
    elif command == "tamper":
        print(tamper(queue, args[0]), flush=True)


def run(queue: GpuQueue, name: str, gpus: int) -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    threading.Thread(target=lambda: (sys.stdin.readline(), stop.set()), daemon=True).start()
    entry = Entry(user=entries.current_user(), kind="finetune", name=name, gpus=gpus)
    print(f"queued {entry.id}", flush=True)
    grant = queue.wait_turn(entry, stop)
    if grant is None:
        print("cancelled", flush=True)
        return
    grant.publish(0.25, 90.0)
    print(f"started {grant.visible_devices}", flush=True)
    while not stop.wait(0.2):
        if queue.cancel_requested(grant.entry):
            print("cancel accepted", flush=True)
            break
    grant.release()
    print("released", flush=True)


def view(queue: GpuQueue) -> dict[str, object]:
    shown = queue.view()
    return {
        "devices": {slot.id: [[e.user, e.name, e.progress, e.eta_s, e.id] for e in held] for slot, held in shown.slots},
        "waiting": [[e.user, e.name, shown.position(e.id), e.id] for e in shown.waiting],
    }


def tamper(queue: GpuQueue, entry_id: str) -> str:
    target = queue.folder.sub("entries") / f"{entry_id}.json"
    said = []
    mine = target.with_name(f"{entries.current_user()}-forged.json")
    mine.write_text("{}")
    for attempt in (lambda: target.write_text("{}"), target.unlink, lambda: mine.replace(target)):
        try:
            attempt()
            said.append("allowed")
        except OSError as exc:
            said.append(type(exc).__name__)
    return " ".join(said)


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], *sys.argv[3:])
