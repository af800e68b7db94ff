"""The trainer process: `python -m services.trainer JOB_DIR [--resume]`, and its ranks (`--rank`).

`services.finetune.jobs.launch` starts it detached. It runs the job (`services.finetune.runner`)
and registers the adapter a finished job saves as an artifact: the one place where fine-tuning
meets the artifact store, so neither domain imports the other to do it. A multi-process job's
parent starts `accelerate launch ... --module services.trainer JOB_DIR --rank`, which runs one
rank's share of the training (`services.finetune.worker`).
"""

from __future__ import annotations

import sys
from pathlib import Path

from services.finetune.runner import main
from services.finetune.worker import rank_main


def register(data_dir: Path, job_dir: Path) -> None:
    """Register the adapter as an artifact version (`<job name>@<job id>`) with its lineage.

    A failure is logged, not fatal: the adapter is saved, and the Artifacts mode registers it later.
    """
    from services.artifacts.sources import register_adapter
    from services.artifacts.workspace import Artifacts
    from services.errors import WorkbenchError

    try:
        register_adapter(Artifacts(data_dir), job_dir)
    except (WorkbenchError, OSError) as exc:
        print(f"warning: adapter not registered as an artifact: {exc}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    args = sys.argv[1:]
    sys.exit(rank_main(args) if "--rank" in args else main(args, on_adapter=register))
