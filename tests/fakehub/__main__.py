"""Serve a fake hub from its own process (benchmarks keep it off their own GIL).

python -m tests.fakehub [--synthetic N] [--big NAME=MB]... ; prints the endpoint, serves until killed.
"""

import argparse
import sys
import tempfile
import threading
from pathlib import Path

from tests.fakehub import FakeHub, big_file_repo


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--synthetic", type=int, default=0)
    parser.add_argument("--big", action="append", default=[], help="REPO_ID=MEGABYTES")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, FakeHub() as hub:
        hub.add_synthetic_models(args.synthetic, seed=7)
        for spec in args.big:
            repo_id, megabytes = spec.split("=")
            size = int(megabytes) * 1024**2
            files = big_file_repo(Path(tmp) / repo_id, size)
            hub.add_repo(repo_id, files, safetensors_params={"F32": size // 4})
        print(hub.endpoint, flush=True)
        sys.stdin.read()  # until the parent closes our stdin
        threading.Event().wait(0)


if __name__ == "__main__":
    main()
