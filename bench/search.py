"""Hub search over a 10,000-model local hub, and the event loop while a 200 MB download runs.

1. TUI: time from a search request to its first page rendered in Models > Hub (median of 10
   different queries; goal < 300 ms).
2. CLI: `workbench models search Q --limit 50 --json` vs `hf models ls --search Q --limit 50`,
   same server, whole process (median of 5 each).
3. TUI: the longest event-loop stall while Models > Hub downloads a 200 MB model (goal < 50 ms),
   measured by a 10 ms heartbeat task on the app's own loop.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.common import compile_sources, report, timed

QUERIES = ["llama", "bert", "qwen", "mistral", "gemma", "phi", "t5", "vit", "whisper", "clip"]


async def until(check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.perf_counter() + timeout
    while not check():
        if time.perf_counter() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.002)


async def tui(endpoint: str, root: Path) -> tuple[list[float], float]:
    from services.hub.connection import HubConnection
    from services.hub.details import model_details
    from workbench.settings import load_settings
    from workbench.tui.app import WorkbenchApp
    from workbench.tui.screens.models.hub import HubPane

    env = {
        "WORKBENCH_HUB__ENDPOINT": endpoint,
        "WORKBENCH_HUB__CACHE_DIR": str(root / "hub"),
        "WORKBENCH_WORKSPACE__DATA_DIR": str(root / "data"),
    }
    app = WorkbenchApp(
        load_settings(project_file=None, user_file=root / "none.toml", environ=env), init_demo_on_empty=False, gpus=[]
    )
    async with app.run_test(size=(140, 42)) as pilot:
        pane = app.screen.query_one(HubPane)
        await until(lambda: pane.table.row_count > 0)
        timings = []
        for query in QUERIES:
            started = time.perf_counter()
            pane.query_one("#hub-query").value = query
            pane.search_now(force=True)  # what the debounce timer calls
            await until(lambda: pane.pager is not None)
            await pilot.pause()  # one refresh: the page is on screen
            timings.append(time.perf_counter() - started)
        details = model_details(HubConnection(endpoint=endpoint, cache_dir=root / "hub"), "bench/big")
        worst = 0.0
        pane.start_download(details)

        async def heartbeat() -> None:
            nonlocal worst
            while pane.downloading:
                before = time.perf_counter()
                await asyncio.sleep(0.01)
                worst = max(worst, time.perf_counter() - before - 0.01)

        await heartbeat()
    return timings, worst


def cli_median(cmd: list[str], env: dict[str, str]) -> float:
    return statistics.median(
        timed(lambda: subprocess.run(cmd, env=env, check=True, capture_output=True)) for _ in range(5)
    )


def main() -> None:
    compile_sources()
    bindir = Path(sys.executable).parent
    serve = [sys.executable, "-m", "tests.fakehub", "--synthetic", "10000", "--big", "bench/big=200"]
    with (
        tempfile.TemporaryDirectory() as tmp,
        subprocess.Popen(serve, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as hub,
    ):
        root = Path(tmp)
        endpoint = hub.stdout.readline().strip()  # the hub runs in its own process, off our GIL
        timings, worst = asyncio.run(tui(endpoint, root))
        env = {
            **os.environ,
            "HF_ENDPOINT": endpoint,  # both read it
            "HF_HUB_DISABLE_TELEMETRY": "1",
        }
        ours = cli_median([str(bindir / "workbench"), "models", "search", "llama", "--limit", "50", "--json"], env)
        peer = cli_median([str(bindir / "hf"), "models", "ls", "--search", "llama", "--limit", "50"], env)
        hub.stdin.close()
    print(
        f"TUI search to first page rendered: median {statistics.median(timings) * 1000:.0f} ms, "
        f"max {max(timings) * 1000:.0f} ms over {len(timings)} queries on 10,000 models (goal < 300 ms)"
    )
    print(f"TUI longest event-loop stall during a 200 MB download: {worst * 1000:.1f} ms (goal < 50 ms)")
    report(
        "CLI search, 50 results", ours * 1000, peer * 1000, "ms", goal="<= 1 (faster than hf)", higher_is_better=False
    )


if __name__ == "__main__":
    main()
