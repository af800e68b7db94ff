"""The demo workspace builds the same model everywhere and loads offline."""

import os
import subprocess
import sys
from pathlib import Path

from services.demo import DEMO_MODEL, init_demo, instruction_rows, place_in_cache


def test_tiny_llama_is_deterministic(tiny_llama_folder: Path, tmp_path: Path) -> None:
    from services.demo import build_tiny_llama

    again = build_tiny_llama(tmp_path / "again")
    first = place_in_cache(tmp_path / "c1", DEMO_MODEL, tiny_llama_folder)
    second = place_in_cache(tmp_path / "c2", DEMO_MODEL, again)
    assert first.name == second.name  # same content, same commit


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
