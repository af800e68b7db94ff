"""The demo workspace builds the same model everywhere and loads offline."""

import os
import subprocess
import sys
from pathlib import Path

from services.demo import DEMO_MODEL, init_demo, instruction_rows, place_in_cache

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
