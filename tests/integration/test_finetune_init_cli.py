"""`workbench finetune init` starts a newcomer from the demo job, the one that visibly learns."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from services.demo import DEMO_JOB_NAME, init_demo
from services.finetune.spec import load_spec
from workbench.cli.main import cli


def test_bare_init_writes_the_demo_job_and_other_models_get_general_defaults(tmp_path: Path) -> None:
    made = init_demo(cache_dir=tmp_path / "hub", data_dir=tmp_path / "data")
    env = {
        "WORKBENCH_HUB__CACHE_DIR": made.cache_dir,
        "WORKBENCH_WORKSPACE__DATA_DIR": str(tmp_path / "data"),
        "HF_HUB_OFFLINE": "1",
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }
    bare, other = tmp_path / "bare.toml", tmp_path / "other.toml"
    assert CliRunner().invoke(cli, ["finetune", "init", "-o", str(bare)], env=env).exit_code == 0
    assert bare.read_text() == Path(made.finetune_job).read_text()  # the same job `demo init` wrote
    assert load_spec(bare).name == DEMO_JOB_NAME

    own_data = tmp_path / "mine.jsonl"
    result = CliRunner().invoke(cli, ["finetune", "init", "--dataset", str(own_data), "-o", str(other)], env=env)
    assert result.exit_code == 0, result.output
    spec = load_spec(other)
    assert spec.name == "tiny-llama-lora" and "embed_tokens" not in spec.lora.target_modules
