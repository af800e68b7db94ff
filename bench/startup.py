"""Cold start of the workbench TUI to its first rendered frame vs a minimal Textual app.

Each run is a new process that builds the app and runs it headless at 140×42; as soon as the
first frame is rendered it prints the wall-clock time and exits. Cold start = that time minus
the moment the parent spawned the process; median of 9 alternating runs. Goal: ratio <= 1.5.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time

from bench.common import report

PROBE = """
import sys
import time
if sys.argv[1] == "minimal":
    from textual.app import App
    from textual.widgets import Footer, Header, Static

    class Minimal(App):
        def compose(self):
            yield Header()
            yield Static("hello")
            yield Footer()

    app = Minimal()
else:
    from workbench.tui.app import WorkbenchApp
    from workbench.settings import load_settings

    app = WorkbenchApp(load_settings(), init_demo_on_empty=False)


async def first_frame(pilot):
    await pilot.pause()
    print(time.time(), flush=True)
    pilot.app.exit()


app.run(headless=True, size=(140, 42), auto_pilot=first_frame)
"""
RUNS = 9


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "HF_HUB_CACHE": os.path.join(tmp, "hub"),
            "XDG_CONFIG_HOME": tmp,
            "WORKBENCH_WORKSPACE__DATA_DIR": tmp,
        }

        def start(kind: str) -> float:
            spawned = time.time()
            out = subprocess.run([sys.executable, "-c", PROBE, kind], env=env, check=True, capture_output=True)
            return float(out.stdout.split()[-1]) - spawned

        start("minimal"), start("workbench")  # warm the OS file cache for both
        pairs = [(start("minimal"), start("workbench")) for _ in range(RUNS)]
    peer, ours = statistics.median(p for p, _ in pairs), statistics.median(o for _, o in pairs)
    report("cold start to first frame", ours * 1000, peer * 1000, "ms", goal="<= 1.5", higher_is_better=False)


if __name__ == "__main__":
    main()
