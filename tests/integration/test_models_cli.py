"""`workbench models ...` and `workbench demo init` end to end: real processes, real client, local hub."""

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fakehub import FakeHub

CANARY = "hf_CANARY_d41d8cd98f00b204e9800998ecf8427e"

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def run(tmp_path: Path) -> Run:
    """Run the CLI in a subprocess with its cache, workspace and config under tmp_path."""

    def run(
        *args: str, env: dict[str, str] | None = None, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        full_env = {
            **os.environ,
            "HF_HUB_CACHE": str(tmp_path / "hub"),
            "HF_HOME": str(tmp_path / "hf-home"),
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "XDG_CONFIG_HOME": str(tmp_path / "config"),
            "WORKBENCH_WORKSPACE__DATA_DIR": str(tmp_path / "data"),
            **(env or {}),
        }
        full_env.pop("HF_TOKEN", None) if "HF_TOKEN" not in (env or {}) else None
        return subprocess.run(
            [sys.executable, "-m", "workbench", *args],
            cwd=tmp_path,
            env=full_env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    return run


def hub_env(hub: FakeHub) -> dict[str, str]:
    return {"WORKBENCH_HUB__ENDPOINT": hub.endpoint}


def test_search_json_is_stable(fake_hub: FakeHub, run: Run) -> None:
    fake_hub.add_synthetic_models(200, seed=3)
    result = run("models", "search", "", "--task", "text-generation", "--limit", "5", "--json", env=hub_env(fake_hub))
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert len(rows) == 5
    assert set(rows[0]) == {"id", "task", "library", "downloads", "likes", "params", "license", "gated", "updated"}
    assert [r["downloads"] for r in rows] == sorted((r["downloads"] for r in rows), reverse=True)


def test_info_download_ls_rm_round_trip(tiny_llama_hub: FakeHub, run: Run, tmp_path: Path) -> None:
    env = hub_env(tiny_llama_hub)
    info = run("models", "info", "workbench-demo/tiny-llama", "--json", "--seq-len", "256", env=env)
    assert info.returncode == 0, info.stderr
    details = json.loads(info.stdout)
    assert details["fit"]["badge"] == "fits" and details["fit"]["seq_len"] == 256
    assert {s["name"] for s in details["fit"]["scenarios"]} >= {"inference bf16", "LoRA bf16", "QLoRA 4-bit"}
    download = run("models", "download", "workbench-demo/tiny-llama", env=env)
    assert download.returncode == 0, download.stderr
    assert "100%" in download.stderr and "/s" in download.stderr  # progress with rate
    listed = json.loads(run("models", "ls", "--json").stdout)
    assert [m["id"] for m in listed] == ["workbench-demo/tiny-llama"]
    assert listed[0]["revisions"][0]["refs"] == ["main"]
    refused = run("models", "rm", "workbench-demo/tiny-llama")  # no tty, no --yes
    assert refused.returncode == 2 and "--yes" in refused.stderr
    assert run("models", "rm", "workbench-demo/tiny-llama", "--yes").returncode == 0
    assert json.loads(run("models", "ls", "--json").stdout) == []


def test_what_hf_downloads_shows_up_and_ours_loads_with_transformers(
    tiny_llama_hub: FakeHub, run: Run, tmp_path: Path
) -> None:
    hf = Path(sys.executable).with_name("hf")
    env = {**os.environ, "HF_ENDPOINT": tiny_llama_hub.endpoint, "HF_HUB_CACHE": str(tmp_path / "hub")}
    got = subprocess.run(
        [str(hf), "download", "workbench-demo/tiny-llama"], env=env, capture_output=True, text=True, check=False
    )
    assert got.returncode == 0, got.stderr
    listed = json.loads(run("models", "ls", "--json").stdout)
    assert [m["id"] for m in listed] == ["workbench-demo/tiny-llama"]
    # and the other way round: a fresh cache filled by us loads offline with from_pretrained
    ours = run(
        "models",
        "download",
        "workbench-demo/tiny-llama",
        env={**hub_env(tiny_llama_hub), "HF_HUB_CACHE": str(tmp_path / "ours")},
    )
    assert ours.returncode == 0, ours.stderr
    load = (
        "from transformers import AutoModelForCausalLM, AutoTokenizer as T;"
        "AutoModelForCausalLM.from_pretrained('workbench-demo/tiny-llama');T.from_pretrained('workbench-demo/tiny-llama')"
    )
    offline = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "ours"), "HF_HUB_OFFLINE": "1"}
    loaded = subprocess.run([sys.executable, "-c", load], env=offline, capture_output=True, text=True, check=False)
    assert loaded.returncode == 0, loaded.stderr


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("models", "info", "acme/missing"), 1, "not found"),
        (("models", "download", "acme/missing"), 1, "not found"),
        (("models", "search", "--limit", "0"), 2, "Invalid value"),
        (("models", "rm", "acme/never-downloaded", "--yes"), 1, "not in the cache"),
    ],
)
def test_exit_codes(fake_hub: FakeHub, run: Run, args: tuple[str, ...], code: int, message: str) -> None:
    result = run(*args, env=hub_env(fake_hub))
    assert result.returncode == code
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_gated_download_gives_next_step(fake_hub: FakeHub, run: Run) -> None:
    fake_hub.add_repo("meta/gated", {"config.json": b"{}"}, gated="auto")
    result = run("models", "download", "meta/gated", env=hub_env(fake_hub))
    assert result.returncode == 1
    assert "gated" in result.stderr and "HF_TOKEN" in result.stderr


def test_unreachable_hub_is_one_line_and_exit_1(run: Run) -> None:
    result = run(
        "models",
        "search",
        "llama",
        env={"WORKBENCH_HUB__ENDPOINT": "http://127.0.0.1:9", "WORKBENCH_HUB__TIMEOUT": "2"},
    )
    assert result.returncode == 1
    assert result.stderr.splitlines()[0].startswith("error: hub unreachable")


def test_canary_token_never_leaks(fake_hub: FakeHub, run: Run, tmp_path: Path) -> None:
    fake_hub.tokens = frozenset({CANARY})
    fake_hub.add_repo("meta/gated", {"config.json": b'{"hidden_size": 8, "num_hidden_layers": 1}'}, gated="manual")
    fake_hub.grant("meta/gated", CANARY)
    env = {**hub_env(fake_hub), "HF_TOKEN": CANARY}
    outputs = [
        run("models", "search", "gated", env=env),
        run("models", "info", "meta/gated", "--json", env=env),
        run("models", "download", "meta/gated", env=env),
        run("--debug", "models", "info", "meta/missing", env=env),  # an exception with traceback
        run("config", "show", env={**env, "WORKBENCH_HUB__TOKEN": CANARY}),
    ]
    assert [o.returncode for o in outputs[:3]] == [0, 0, 0], [o.stderr for o in outputs]
    assert json.loads(outputs[1].stdout)["access"] is True
    assert "Traceback" in outputs[3].stderr
    for out in outputs:
        assert CANARY not in out.stdout + out.stderr
    assert all(r.authorized for r in fake_hub.requests if "/resolve/" in r.path)  # the token was really used
    for path in tmp_path.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert CANARY.encode() not in path.read_bytes(), path


def test_demo_init_json_and_idempotent(run: Run, tmp_path: Path) -> None:
    first = run("demo", "init", "--json")
    assert first.returncode == 0, first.stderr
    made = json.loads(first.stdout)
    assert made["model"] == "workbench-demo/tiny-llama"
    assert Path(made["dataset"]).is_file() and any(Path(made["documents"]).iterdir())
    assert len(made["created"]) == 6
    assert Path(made["finetune_job"]).read_text().startswith("# Fine-tune job")
    assert made["suite"] in made["created"] and "cases:" in Path(made["suite"]).read_text()
    again = json.loads(run("demo", "init", "--json").stdout)
    assert again["created"] == [] and again["model_path"] == made["model_path"]
    listed = {m["id"] for m in json.loads(run("models", "ls", "--json").stdout)}
    assert listed == {"workbench-demo/tiny-llama", "sentence-transformers/all-MiniLM-L6-v2"}


def lfs_repo(hub: FakeHub) -> None:
    hub.add_repo("acme/bad", {"config.json": b'{"model_type": "llama"}', "model.safetensors": b"\0" * 64})


MALFORMED: dict[str, Callable[[FakeHub], None]] = {
    "config.json is not JSON": lambda hub: hub.add_repo("acme/bad", {"config.json": b"{not json"}),
    "config.json is a list": lambda hub: hub.add_repo("acme/bad", {"config.json": b"[1, 2]"}),
    "model info is not JSON": lambda hub: (lfs_repo(hub), setattr(hub.tamper, "info_body", b"<html>oops</html>")),
    "model info has the wrong shape": lambda hub: (
        lfs_repo(hub),
        setattr(hub.tamper, "info_body", b'{"id": "acme/bad", "sha": 7, "siblings": "none"}'),
    ),
    "commit header is not a commit id": lambda hub: (lfs_repo(hub), hub.tamper.headers.update({"X-Repo-Commit": "zz"})),
    "no ETag": lambda hub: (lfs_repo(hub), hub.tamper.headers.update({"ETag": "", "X-Linked-Etag": ""})),
    "size is not a number": lambda hub: (lfs_repo(hub), hub.tamper.headers.update({"X-Linked-Size": "lots"})),
    "size is negative": lambda hub: (lfs_repo(hub), hub.tamper.headers.update({"X-Linked-Size": "-64"})),
}


@pytest.mark.parametrize("fault", sorted(MALFORMED))
def test_malformed_hub_answers_are_one_line_and_exit_1(fake_hub: FakeHub, run: Run, fault: str) -> None:
    MALFORMED[fault](fake_hub)
    result = run("models", "download", "acme/bad", "--quiet", env=hub_env(fake_hub))
    assert_one_error_line(result)


def test_malformed_search_page_is_one_line_and_exit_1(fake_hub: FakeHub, run: Run) -> None:
    fake_hub.tamper.info_body = b'{"not": "a list"}'
    result = run("models", "search", "x", env=hub_env(fake_hub))
    assert_one_error_line(result)


def assert_one_error_line(result: subprocess.CompletedProcess[str]) -> None:
    """Exit 1 with one `error:` line (and at most a hint and a next step, as `hint:` lines), no traceback."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1, result.stderr
    assert lines[0].startswith("error: ") and len(lines) <= 3, result.stderr
    assert all(line.startswith("hint: ") for line in lines[1:]), result.stderr
