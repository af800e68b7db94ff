"""The demo proves the loop, as a newcomer runs it: `demo init`, the demo fine-tune, the sample suite.

The demo job really trains (a detached trainer process on the CPU: 20 s to 2 minutes here, with the machine's load), and
the suite's `tuned` variant finds its adapter through the wildcard path the suite ships with.
"""

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from services.chat.session import ChatEngine, collect
from services.chat.variant import Variant
from services.evals.assertions import Equals
from services.evals.suite import load_suite
from tests.integration.finetune_support import wait
from workbench.cli.main import cli

LEARNED = ("learned-upper-case", "learned-reverse", "learned-sort", "learned-count")

Run = Callable[..., Result]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo workspace whose demo job has run to completion, launched as `finetune run` launches it."""
    root = tmp_path_factory.mktemp("demo-learns")
    made = json.loads(invoke(root, "demo", "init", "--json").stdout)
    launched = invoke(root, "finetune", "run", made["finetune_job"])
    [folder] = (root / "data" / "jobs").glob("demo-tiny-llama-*")
    assert folder.name in launched.stdout
    status = wait(folder, timeout=600)
    assert status.state == "completed", (folder / "train.log").read_text()[-3000:]
    return root


def invoke(root: Path, *args: str) -> Result:
    env = {
        "WORKBENCH_HUB__CACHE_DIR": str(root / "hub"),
        "WORKBENCH_WORKSPACE__DATA_DIR": str(root / "data"),
        "WORKBENCH_HUB__ENDPOINT": "http://127.0.0.1:9",
        "WORKBENCH_SERVER__STATE_DIR": str(root / "gpu-queue"),  # never this machine's shared queue
        "HF_HUB_OFFLINE": "1",
        "XDG_CONFIG_HOME": str(root / "config"),
    }
    result = CliRunner().invoke(cli, list(args), env=env)
    assert result.exit_code in (0, 1), result.output
    return result


@pytest.mark.training  # `finetune run` launches the trainer behind the CLI, where the markers cannot look
def test_the_tuned_variant_passes_the_learned_cases_the_base_fails(workspace: Path) -> None:
    suite, report = workspace / "data" / "demo" / "suite.yaml", workspace / "run.json"
    result = invoke(
        workspace, "eval", "run", str(suite), "--variant", "base", "--variant", "tuned", "--json", str(report)
    )
    assert result.exit_code == 1  # fails-on-purpose and the learned cases on base
    verdicts = {(r["case"], r["variant"]): r["passed"] for r in json.loads(report.read_text())["results"]}
    assert {case: (verdicts[(case, "base")], verdicts[(case, "tuned")]) for case in LEARNED} == dict.fromkeys(
        LEARNED, (False, True)
    )
    adapter = json.loads(report.read_text())["inputs"]["variants"]["tuned"]["adapter"]["path"]
    [job] = (workspace / "data" / "jobs").glob("demo-tiny-llama-*")
    assert Path(adapter) == job.resolve() / "adapter"


@pytest.mark.training
def test_the_merged_demo_model_answers_as_the_adapter_does(workspace: Path) -> None:
    """The demo adapter changes the tied embeddings and head separately; the merge keeps both changes."""
    [job] = (workspace / "data" / "jobs").glob("demo-tiny-llama-*")
    merged = workspace / "merged"
    invoke(workspace, "finetune", "merge", job.name, "--output", str(merged))
    suite = load_suite(workspace / "data" / "demo" / "suite.yaml")
    engine = ChatEngine(cache_dir=workspace / "hub")
    model = Variant(name="merged", model=str(merged), params=suite.variant("tuned").params)
    try:
        for case in (c for c in suite.cases if c.name in LEARNED):
            expected = case.asserts[0]
            assert isinstance(expected, Equals)
            answer = collect(engine.stream(model, case.question))
            assert (answer.error, answer.text.strip()) == (None, expected.value), case.name
    finally:
        engine.close()
