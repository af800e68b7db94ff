"""The status bar's GPU line: the queue's holders are read (and their formatter loaded) only when a job holds a
device."""

from __future__ import annotations

import pytest

from services.gpuqueue import entries
from services.gpuqueue.entries import Entry
from services.gpuqueue.slots import CPU_SLOT
from tests.ui.conftest import SettingsFactory, make_app, wait_for


async def test_the_gpu_line_names_who_holds_the_device(
    make_settings: SettingsFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("services.gpu.detect_gpus", lambda: [])
    monkeypatch.setattr("workbench.tui.app.detect_gpus", lambda: [])
    app = make_app(make_settings(), gpus=None)
    queue = app.context.services.gpu_queue()
    job = Entry(user="me", kind="finetune", name="demo-lora", state="running", started_at=1.0, devices=[CPU_SLOT])
    life = entries.hold(queue.folder, job)
    entries.write(queue.folder, job)
    try:
        async with app.run_test(size=(140, 42)) as pilot:
            await wait_for(pilot, lambda: app.status.gpu != "detecting GPU…")
            assert app.status.gpu == "CPU only · cpu: you demo-lora"
    finally:
        life.release()
