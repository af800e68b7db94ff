"""`workbench models download` vs `hf download` of the same files from the same local hub.

Both run as separate processes against one FakeHub serving a 256 MB repo (4 × 60 MB shards plus
a few small files); each run gets an empty cache. Goal: throughput ratio >= 0.9.

Second figure, the reason `services/transfer.py` exists instead of `hf_hub_download`: each tool's
first run is killed once half the bytes are on disk (a crash, a closed laptop), then the same
command runs again. huggingface_hub deletes its partial files, so `hf download` starts over; ours
continues from the partial files. Goal: time of the second run, ours/peer < 0.75.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
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


def bench_env(cache: Path, endpoint: str) -> dict[str, str]:
    env = {**os.environ, "HF_ENDPOINT": endpoint, "HF_HUB_CACHE": str(cache), "HF_HUB_DISABLE_TELEMETRY": "1"}
    return {**env, "WORKBENCH_HUB__ENDPOINT": endpoint}


def run(cmd: list[str], cache: Path, endpoint: str) -> float:
    def go() -> None:
        subprocess.run(cmd, env=bench_env(cache, endpoint), check=True, capture_output=True)

    return timed(go)


def partial_bytes(cache: Path) -> int:
    """Bytes in partial files (`*.incomplete`, both tools name them so) under `cache`."""
    total = 0
    for path in cache.rglob("*.incomplete"):
        try:
            total += path.stat().st_size
        except FileNotFoundError:  # renamed into place meanwhile
            continue
    return total


def resumed(cmd: list[str], cache: Path, endpoint: str) -> float:
    """Seconds `cmd` needs after a first run of it was killed with half the bytes on disk."""
    first = subprocess.Popen(cmd, env=bench_env(cache, endpoint), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while first.poll() is None and partial_bytes(cache) < SHARDS * SHARD_BYTES // 2:
        time.sleep(0.002)
    first.kill()
    first.wait()
    return run(cmd, cache, endpoint)


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
        ours_cmd = [str(bindir / "workbench"), "models", "download", "bench/big", "--quiet"]
        peer_cmd = [str(bindir / "hf"), "download", "bench/big"]
        again = [
            (resumed(peer_cmd, root / f"r{i}p", hub.endpoint), resumed(ours_cmd, root / f"r{i}o", hub.endpoint))
            for i in range(RUNS)
        ]
        peer_again, ours_again = statistics.median(p for p, _ in again), statistics.median(o for _, o in again)
    mb = total / 1e6
    report("download throughput", mb / ours_s, mb / peer_s, "MB/s", goal=">= 0.9", higher_is_better=True)
    report("rerun after a kill at 50%", ours_again, peer_again, "s", goal="< 0.75", higher_is_better=False)


if __name__ == "__main__":
    main()
