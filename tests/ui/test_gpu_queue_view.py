"""The GPU queue in the app: the Fine-tune mode lists every user's jobs in the queue with your
position, the status bar says who holds the GPU, and `?` states the fairness rule."""

from __future__ import annotations

import json
import os

from services.gpuqueue import entries
from services.gpuqueue.entries import Entry
from services.gpuqueue.queue import GpuQueue
from services.gpuqueue.slots import Lock
from tests.ui.conftest import FIXED_GPU, SettingsFactory, make_app, wait_for
from workbench.tui.widgets.keys import KeysScreen

SIZE = (140, 42)
COLLEAGUE_UID = 4242


def colleague_holds_gpu0(queue: GpuQueue) -> Lock:
    """A colleague's running fine-tune on GPU 0: their record (owned by their uid) and a live lock."""
    entry = Entry(
        user="ignored", kind="finetune", name="their-job", uid=COLLEAGUE_UID, state="running",
        started_at=1.0, devices=[FIXED_GPU.visible_id],
        progress=0.5, eta_s=125.0,
    )  # fmt: skip
    life = entries.hold(queue.folder, entry)
    record = queue.folder.sub("entries") / f"{entry.id}.json"
    record.write_text(json.dumps(entry.__dict__))
    os.chown(record, COLLEAGUE_UID, COLLEAGUE_UID)
    return life


async def test_fine_tune_shows_every_users_jobs_and_your_place_in_the_queue(
    make_settings: SettingsFactory,
) -> None:
    app = make_app(make_settings())
    queue = app.context.services.gpu_queue()
    held = colleague_holds_gpu0(queue)
    mine = Entry(user="me", kind="finetune", name="my-job")
    mine_life = entries.hold(queue.folder, mine)
    entries.write(queue.folder, mine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        screen = app.screen
        summary = screen.query_one("#jobs-summary")
        await wait_for(pilot, lambda: "GPU queue" in str(summary.render()))
        text = str(summary.render())
        assert f"running GPU 0: {COLLEAGUE_UID} their-job ETA 2m05s" in text
        assert "waiting #1 you my-job" in text
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, KeysScreen))
        assert "least GPU time" in str(app.screen.query_one("#keys-hint").render())
    held.release()
    mine_life.release()
