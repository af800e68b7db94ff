"""Cold start of the workbench TUI to its first rendered frame vs a minimal Textual app, the memory
each holds then, and the wall time of `workbench --help`.

Each run is a new process that builds the app and runs it headless at 140×42; as soon as the
first frame is rendered (the screen has processed its events and the process is idle) it prints
the wall-clock time and its resident memory (VmRSS) and exits. Cold start = that time minus the
moment the parent spawned the process; median of 15 alternating runs. Goals: start ratio <= 1.5,
memory ratio <= 2, `workbench --help` <= 0.25 s (beside `hf --help`, another CLI of the same venv).
Where the time goes, for both apps: interpreter and imports up to the built app, then compose and
mount, then the first layout and paint plus whatever runs until the process is idle (the idle
check counts the CPU time of every thread, so background work started at the first frame counts).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import compile_sources, report

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
    import gc

    gc.disable()  # as `workbench` does before it imports the app (cli.main); the app resumes collecting
    from workbench.tui.app import WorkbenchApp
    from workbench.settings import load_settings

    app = WorkbenchApp(load_settings(), init_demo_on_empty=False)
built = time.time()


def resident_kib():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


async def first_frame(pilot):
    mounted = time.time()  # the app is composed and mounted; its first layout comes next
    await pilot.pause()
    print(built, mounted, time.time(), resident_kib(), flush=True)
    pilot.app.exit()


app.run(headless=True, size=(140, 42), auto_pilot=first_frame)
"""
RUNS = 15
HELP_RUNS = 9
HELP_GOAL_S = 0.25


def cli(name: str) -> list[str]:
    """The console script `name` of this interpreter's environment."""
    found = Path(sys.executable).with_name(name)
    return [str(found)] if found.exists() else [shutil.which(name) or name]


def main() -> None:
    compile_sources()
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "HF_HUB_CACHE": os.path.join(tmp, "hub"),
            "XDG_CONFIG_HOME": tmp,  # no settings file, a fresh workspace: a first start
            "XDG_DATA_HOME": tmp,
        }

        def start(kind: str) -> tuple[float, float, tuple[float, float, float]]:
            """Seconds to the first frame, MiB resident then, and the seconds of each phase."""
            spawned = time.time()
            out = subprocess.run([sys.executable, "-c", PROBE, kind], env=env, check=True, capture_output=True)
            built, mounted, at, kib = (float(x) for x in out.stdout.split()[-4:])
            return at - spawned, kib / 1024, (built - spawned, mounted - built, at - mounted)

        def wall(command: list[str]) -> float:
            started = time.perf_counter()
            subprocess.run(command, env=env, check=True, capture_output=True)
            return time.perf_counter() - started

        start("minimal"), start("workbench")  # warm the OS file cache for both
        pairs = [(start("minimal"), start("workbench")) for _ in range(RUNS)]
        ours_help, hf_help = [*cli("workbench"), "--help"], [*cli("hf"), "--help"]
        wall(ours_help), wall(hf_help)
        helps = [(wall(ours_help), wall(hf_help)) for _ in range(HELP_RUNS)]
    peer, ours = statistics.median(p[0] for p, _ in pairs), statistics.median(o[0] for _, o in pairs)
    report("cold start to first frame", ours * 1000, peer * 1000, "ms", goal="<= 1.5", higher_is_better=False)
    for name, index in [("workbench", 1), ("minimal app", 0)]:
        phases = [statistics.median(pair[index][2][i] * 1000 for pair in pairs) for i in range(3)]
        print(
            f"  {name}: imports and app built {phases[0]:.0f} ms, compose and mount {phases[1]:.0f} ms, "
            f"first layout and paint until idle {phases[2]:.0f} ms (medians)"
        )
    peer_mib, ours_mib = statistics.median(p[1] for p, _ in pairs), statistics.median(o[1] for _, o in pairs)
    report("resident memory at first frame", ours_mib, peer_mib, "MiB", goal="<= 2", higher_is_better=False)
    ours_s, hf_s = statistics.median(o for o, _ in helps), statistics.median(p for _, p in helps)
    report(
        "`workbench --help` wall time (peer `hf --help`)",
        ours_s * 1000,
        hf_s * 1000,
        "ms",
        goal=f"workbench <= {HELP_GOAL_S * 1000:.0f} ms: {'met' if ours_s <= HELP_GOAL_S else 'NOT met'}",
        higher_is_better=False,
    )


if __name__ == "__main__":
    main()
