"""Run every benchmark (or the ones named): `python -m bench [startup] [search] [download]`."""

import importlib
import sys

BENCHES = {
    "startup": "bench.startup",
    "search": "bench.search",
    "download": "bench.download",
    "finetune": "bench.finetune",
    "stream": "bench.stream",
    "ingest": "bench.ingest",
    "query": "bench.query",
    "images": "bench.images",
    "artifacts": "bench.artifacts",
    "deploy": "bench.deploy",
    "chatbot": "bench.chatbot",
    "classifier": "bench.classifier",
    "serving": "bench.serving",
}


def main() -> None:
    names = sys.argv[1:] or list(BENCHES)
    for name in names:
        print(f"== {name}", flush=True)
        importlib.import_module(BENCHES[name]).main()


main()
