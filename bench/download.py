"""`workbench models download` vs `hf download` of the same files from the same local hub.

Both run as separate processes against one FakeHub serving a 256 MB repo (4 × 60 MB shards plus
a few small files); each run gets an empty cache. Goal: throughput ratio >= 0.9.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import report, timed
from tests.fakehub import FakeHub

SHARD_BYTES = 60 * 1024**2
SHARDS = 4
RUNS = 5


def make_repo(folder: Path) -> dict[str, Path | bytes]:
    files: dict[str, Path | bytes] = {"config.json": b'{"model_type": "llama"}', "README.md": b"# bench\n"}
    for i in range(SHARDS):
        shard = folder / f"model-{i + 1:05d}-of-{SHARDS:05d}.safetensors"
        with shard.open("wb") as out:
            for _ in range(SHARD_BYTES // (1 << 20)):
                out.write(os.urandom(1 << 20))
        files[shard.name] = shard
    return files


def run(cmd: list[str], cache: Path, endpoint: str) -> float:
    env = {**os.environ, "HF_ENDPOINT": endpoint, "HF_HUB_CACHE": str(cache), "HF_HUB_DISABLE_TELEMETRY": "1"}
    env["WORKBENCH_HUB__ENDPOINT"] = endpoint

    def go() -> None:
        subprocess.run(cmd, env=env, check=True, capture_output=True)

    return timed(go)


def main() -> None:
    bindir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory() as tmp, FakeHub() as hub:
        root = Path(tmp)
        (root / "src").mkdir()
        hub.add_repo("bench/big", make_repo(root / "src"), safetensors_params={"F32": SHARDS * SHARD_BYTES // 4})
        total = SHARDS * SHARD_BYTES
        counter = iter(range(1000))

        def ours() -> float:
            cmd = [str(bindir / "workbench"), "models", "download", "bench/big", "--quiet"]
            return run(cmd, root / f"c{next(counter)}", hub.endpoint)

        def peer() -> float:
            return run([str(bindir / "hf"), "download", "bench/big"], root / f"c{next(counter)}", hub.endpoint)

        pairs = [(peer(), ours()) for _ in range(RUNS)]  # interleaved, so drift hits both alike
        peer_s, ours_s = statistics.median(p for p, _ in pairs), statistics.median(o for _, o in pairs)
    mb = total / 1e6
    report("download throughput", mb / ours_s, mb / peer_s, "MB/s", goal=">= 0.9", higher_is_better=True)


if __name__ == "__main__":
    main()
