"""Choosing the engine: settings, the upstream key, the vLLM sidecar's naming and command line."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import ValidationError

from chatbot.engine import LoadError
from chatbot.engines import load_upstream, upstream_key
from chatbot.settings import Settings
from chatbot.vllm_engine import lora_name, main, max_lora_rank, vllm_command


def test_transformers_is_the_default_and_needs_the_model(make_settings: Callable[..., Settings]) -> None:
    assert make_settings().engine == "transformers"
    with pytest.raises(ValidationError, match="CHATBOT_MODEL_PATH is required"):
        make_settings(model_path=None)


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"engine": "openai"}, "CHATBOT_UPSTREAM_URL is required"),
        ({"engine": "openai", "upstream_url": "http://up/v1"}, "CHATBOT_UPSTREAM_MODEL is required"),
        ({"engine": "vllm", "upstream_url": "http://up/v1", "adapter_path": None}, "CHATBOT_UPSTREAM_MODEL"),
        ({"engine": "openai", "upstream_url": "ftp://up", "upstream_model": "m"}, "must start with http"),
    ],
)
def test_an_upstream_engine_needs_its_address_and_model(
    make_settings: Callable[..., Settings], overrides: dict[str, object], problem: str
) -> None:
    with pytest.raises(ValidationError, match=problem):
        make_settings(**overrides)


def test_vllm_names_the_adapter_as_its_lora_module(make_settings: Callable[..., Settings], demo_adapter: Path) -> None:
    settings = make_settings(engine="vllm", upstream_url="http://vllm:8000/v1")
    engine = load_upstream(settings)

    assert settings.upstream_name() == lora_name(demo_adapter) == demo_adapter.name
    assert engine.config.model == demo_adapter.name and engine.adapter == demo_adapter.name
    assert engine.counter() is not None and engine.max_positions == 512  # the adapter's tokenizer budgets
    command = vllm_command(Path("/models/base"), demo_adapter, port=8001, max_model_len=512)
    assert command[:3] == ["vllm", "serve", "/models/base"]
    assert f"{demo_adapter.name}={demo_adapter}" in command and "--enable-lora" in command
    assert command[command.index("--max-lora-rank") + 1] == str(max_lora_rank(demo_adapter)) == "8"


def test_the_sidecar_command_is_printed(capsys: pytest.CaptureFixture[str]) -> None:
    main(["/models/base", "/models/adapter"])

    assert capsys.readouterr().out.strip().endswith("--lora-modules adapter=/models/adapter --max-lora-rank 16")


def test_the_upstream_key_comes_from_a_file_or_a_named_variable(
    make_settings: Callable[..., Settings], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, log_lines: io.StringIO
) -> None:
    secret = "sk-upstream-file-canary-91"
    key_file = tmp_path / "key"
    key_file.write_text(f"# comment\n{secret}\n")
    monkeypatch.setenv("UPSTREAM_KEY_VAR", "sk-upstream-env-canary-92")
    common = {"engine": "openai", "upstream_url": "http://up/v1", "upstream_model": "m"}

    from_file = upstream_key(make_settings(**common, upstream_api_key_file=key_file))
    from_env = upstream_key(make_settings(**common, upstream_api_key_env="UPSTREAM_KEY_VAR"))
    engine = load_upstream(make_settings(**common, upstream_api_key_file=key_file, model_path=None, adapter_path=None))
    key_file.write_text(f"{secret}\n{secret}x\n")
    with pytest.raises(LoadError, match="exactly one key") as two:
        upstream_key(make_settings(**common, upstream_api_key_file=key_file))
    with pytest.raises(LoadError, match="MISSING_VAR"):
        upstream_key(make_settings(**common, upstream_api_key_env="MISSING_VAR"))

    assert from_file is not None and from_file.get_secret_value() == secret
    assert from_env is not None and from_env.get_secret_value() == "sk-upstream-env-canary-92"
    assert engine.counter() is None and engine.max_positions is None  # no tokenizer: no budget
    assert secret not in repr(engine) + str(two.value) + log_lines.getvalue()
