"""The demo workspace builds the same model everywhere and loads offline."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from services.demo import (
    DEMO_JOB_NAME,
    DEMO_MODEL,
    DEMO_PROMPT,
    demo_tokenizer,
    init_demo,
    instruction_rows,
    place_in_cache,
)
from services.evals.suite import load_suite
from services.finetune.data import load_rows
from services.finetune.spec import load_spec
from services.finetune.worker import split

SUITE = Path(__file__).parents[2] / "services" / "demo_data" / "suite.yaml"
DEMO_COMMIT = "4dd8bf117625049a80eac2269bd745f62a64af94"
"""The demo model's commit, the same on every machine and library version (snapshots show it)."""


def test_tiny_llama_has_the_same_commit_everywhere(tiny_llama_folder: Path, tmp_path: Path) -> None:
    snapshot = place_in_cache(tmp_path / "cache", DEMO_MODEL, tiny_llama_folder)
    assert snapshot.name == DEMO_COMMIT


def test_tiny_llama_files_carry_no_library_version(tiny_llama_folder: Path) -> None:
    for config in tiny_llama_folder.glob("*.json"):
        assert "_version" not in config.read_text(), config.name


def test_instruction_rows_have_checkable_answers() -> None:
    rows = instruction_rows(count=8)
    upper = next(r for r in rows if r["instruction"].startswith("Convert"))
    assert upper["output"] == upper["input"].upper()
    count = next(r for r in rows if r["instruction"].startswith("How many"))
    assert count["output"] == str(len(count["input"].split()))


def test_demo_loads_offline(tmp_path: Path) -> None:
    made = init_demo(cache_dir=tmp_path / "hub", data_dir=tmp_path / "data")
    code = (
        "from transformers import AutoModelForCausalLM as M, AutoTokenizer as T\n"
        f"t = T.from_pretrained('{made.model}')\n"
        f"m = M.from_pretrained('{made.model}')\n"
        "ids = t.apply_chat_template([{'role': 'user', 'content': 'hi'}], add_generation_prompt=True)\n"
        "print(len(ids['input_ids'] if hasattr(ids, 'keys') else ids), m.config.num_hidden_layers)"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": made.cache_dir}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=True)
    tokens, layers = map(int, out.stdout.split())
    assert tokens > 3 and layers == 2


def test_the_demo_job_trains_on_the_chat_format_the_suite_and_playground_ask_in(tmp_path: Path) -> None:
    made = init_demo(cache_dir=tmp_path / "hub", data_dir=tmp_path / "data")
    spec = load_spec(Path(made.finetune_job))
    assert spec.name == DEMO_JOB_NAME and spec.dataset.prompt_template == DEMO_PROMPT
    assert {"embed_tokens", "lm_head"} <= set(spec.lora.target_modules)  # the frozen random head cannot learn alone
    turn = [{"role": "user", "content": "{instruction} {input}"}]
    assert demo_tokenizer().apply_chat_template(turn, tokenize=False, add_generation_prompt=True) == DEMO_PROMPT


def test_the_suites_learned_cases_are_rows_the_demo_job_trains_on(tmp_path: Path) -> None:
    made = init_demo(cache_dir=tmp_path / "hub", data_dir=tmp_path / "data")
    spec = load_spec(Path(made.finetune_job))
    train, held_out = split(load_rows(spec.dataset.path), spec.dataset.eval_split, spec.training.seed)
    answers = {f"{r['instruction']} {r['input']}": r["output"] for r in train}
    suite = load_suite(SUITE)
    learned = [c for c in suite.cases if "tuned" in (c.variants or [])]
    assert len(learned) == 4 and len({answers[c.question] for c in learned}) == 4
    for case in learned:
        assert [a.model_dump(exclude_none=True) for a in case.asserts] == [
            {"type": "equals", "value": answers[case.question]}
        ]
    assert not {f"{r['instruction']} {r['input']}" for r in held_out} & {c.question for c in learned}


def finished_adapter(jobs: Path, job_id: str, mtime: int, *, weights: bool = True) -> Path:
    adapter = jobs / job_id / "adapter"
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text("{}")
    if weights:
        (adapter / "adapter_model.safetensors").write_bytes(b"")
    os.utime(adapter / "adapter_config.json", (mtime, mtime))
    return adapter


def test_the_tuned_variant_finds_the_newest_finished_run_of_the_demo_job(tmp_path: Path) -> None:
    suite_file = tmp_path / "data" / "demo" / "suite.yaml"
    suite_file.parent.mkdir(parents=True)
    suite_file.write_bytes(SUITE.read_bytes())
    jobs = tmp_path / "data" / "jobs"
    unmatched = load_suite(suite_file).variant("tuned").adapter  # its cases fail, the others run
    assert unmatched == str(suite_file.parent / "../jobs/demo-tiny-llama-*/adapter")
    finished_adapter(jobs, "demo-tiny-llama-20260101-120000-000000", 1_000)
    newest = finished_adapter(jobs, "demo-tiny-llama-20260102-120000-000000", 2_000)
    finished_adapter(jobs, "demo-tiny-llama-20260103-120000-000000", 3_000, weights=False)  # still saving
    finished_adapter(jobs, "other-20260104-120000-000000", 4_000)
    assert load_suite(suite_file).variant("tuned").adapter == str(newest.resolve())


def test_a_relative_adapter_is_relative_to_the_suite_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    suite_file = tmp_path / "suites" / "team.yaml"
    suite_file.parent.mkdir()
    suite_file.write_text(
        "variants:\n  - {name: tuned, model: m, adapter: adapters/v1}\n  - {name: home, model: m, adapter: ~/a}\n"
        "cases:\n  - {name: one, question: hi}\n"
    )
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    suite = load_suite(Path("suites/team.yaml"))
    assert suite.variant("tuned").adapter == str(tmp_path / "suites" / "adapters" / "v1")
    assert suite.variant("home").adapter == str(tmp_path / "home" / "a")
