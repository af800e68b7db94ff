"""Attacks on the artifact store, each through the real code path and real storage (Azurite, a folder).

A remote entry whose manifest names another artifact, a registered file changed in the workspace
after the fact (as a second merge did), and a merge that dies halfway through writing its files.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from services.artifacts.model import FileEntry, Manifest, parse_ref, scan_files
from services.artifacts.storage import Storage
from services.artifacts.workspace import Artifacts
from services.demo import DemoWorkspace, init_demo
from services.errors import IntegrityError
from tests.integration.artifact_support import azurite_storage, remote_env, storage_factory
from tests.integration.test_artifacts import adapter_folder, files_of, register, workspace


def plant(remote: Storage, location: str, claims: tuple[str, str, str], files: dict[str, bytes]) -> None:
    """Put a manifest under `location` (`kind/name/version`) whose identity is `claims`: a copy of the
    version's own manifest when it exists, else one listing `files`, written where `claims` says."""
    kind, name, version = claims
    existing = remote.read(f"{kind}/{name}/{version}/manifest.json")
    if existing is None:
        for path, data in files.items():
            remote.write(f"{kind}/{name}/{version}/{path}", data)
        entries = tuple(FileEntry(p, hashlib.sha256(b).hexdigest(), len(b)) for p, b in sorted(files.items()))
        existing = Manifest(*claims, files=entries, created_by="mallory@evil", created_at="2099-01-01").to_json()
    remote.write(f"{location}/manifest.json", existing)


def published_victim(tmp_path: Path, open_remote: Callable[[], Storage]) -> Manifest:
    """`victim@7`, registered and pushed by alice."""
    alice = workspace(tmp_path, "alice", open_remote)
    manifest = register(alice, adapter_folder(tmp_path / "victim-src", big=50_000), "7", name="victim")
    alice.push(parse_ref("victim@7"))
    return manifest


# ---------------------------------------------------------------- 7: identity from the location


@pytest.mark.parametrize(
    "claims", [("adapter", "victim", "7"), ("adapter", "junk", "2"), ("dataset", "junk", "1")], ids=str
)
def test_pull_refuses_a_manifest_naming_another_artifact(
    tmp_path: Path, open_remote: Callable[[], Storage], claims: tuple[str, str, str]
) -> None:
    published_victim(tmp_path, open_remote)
    plant(open_remote(), "adapter/junk/1", claims, {"adapter_model.safetensors": b"mallory's weights"})

    bob = workspace(tmp_path, "bob", open_remote, actor="bob@dev")
    with pytest.raises(IntegrityError, match=r"adapter/junk/1.*claims") as caught:
        bob.pull(parse_ref("junk@1"))
    assert f"{claims[1]}@{claims[2]}" in caught.value.message
    assert bob.local.versions() == []
    assert not (tmp_path / "bob" / "artifacts" / claims[0] / claims[1]).exists()
    # a pull of the real version still works and gets alice's bytes
    bob.pull(parse_ref("victim@7"))
    assert files_of(bob.folder(bob.local.resolve(parse_ref("victim@7")))) == files_of(tmp_path / "victim-src")


def test_listing_skips_and_reports_a_manifest_naming_another_artifact(
    tmp_path: Path, open_remote: Callable[[], Storage]
) -> None:
    published_victim(tmp_path, open_remote)
    plant(open_remote(), "adapter/junk/1", ("adapter", "victim", "7"), {"a.bin": b"x"})
    bob = workspace(tmp_path, "bob", open_remote)
    assert [v.manifest.ref for v in bob.remote.versions()] == ["victim@7"]
    assert [str(p) for p in bob.remote.rejected] == [str(bob.remote.rejected[0])]
    assert "adapter/junk/1" in bob.remote.rejected[0].message
    with pytest.raises(IntegrityError, match="adapter/junk/1"):
        bob.pull(parse_ref("junk"))  # newest version of junk: there is none it can trust


def test_label_pointing_outside_its_artifact_is_refused(tmp_path: Path, open_remote: Callable[[], Storage]) -> None:
    published_victim(tmp_path, open_remote)
    remote = open_remote()
    plant(remote, "adapter/junk/1", ("adapter", "junk", "1"), {"a.bin": b"x"})
    remote.write("adapter/junk/labels/prod", json.dumps({"version": "../victim/7"}).encode())
    bob = workspace(tmp_path, "bob", open_remote)
    with pytest.raises(IntegrityError, match="label prod"):
        bob.pull(parse_ref("junk:prod"))
    assert bob.local.versions() == []


def test_cli_remote_rm_refuses_a_manifest_naming_another_artifact(
    tmp_path: Path, remote_kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workbench.cli.main import cli

    tag = uuid.uuid4().hex[:12]
    open_remote = (lambda: azurite_storage(tag)) if remote_kind == "azurite" else storage_factory("folder", tmp_path)
    victim = published_victim(tmp_path, open_remote)
    stored = open_remote().keys("adapter/victim/7")
    plant(open_remote(), "adapter/junk/1", ("adapter", "victim", "7"), {"a.bin": b"x"})

    monkeypatch.chdir(tmp_path)
    env = remote_env(remote_kind, tmp_path, tag) | {
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "WORKBENCH_WORKSPACE__DATA_DIR": str(tmp_path / "bob"),
    }
    result = CliRunner().invoke(cli, ["artifacts", "rm", "junk@1", "--remote", "--yes"], env=env)
    assert result.exit_code == 1, result.output
    assert "adapter/junk/1" in result.output and "victim@7" in result.output
    assert "Traceback" not in result.output

    remote = open_remote()
    assert remote.read("adapter/victim/7/manifest.json") == victim.to_json()
    assert remote.keys("adapter/victim/7") == stored
    listed = CliRunner().invoke(cli, ["artifacts", "ls", "--remote", "--json"], env=env)
    assert listed.exit_code == 0, listed.output
    assert [(v["name"], v["version"]) for v in json.loads(listed.stdout)] == [("victim", "7")]
    assert "warning: skipped" in listed.stderr and "adapter/junk/1" in listed.stderr
    pulled = CliRunner().invoke(cli, ["artifacts", "pull", "junk@1", "--quiet"], env=env)
    assert pulled.exit_code == 1 and "victim@7" in pulled.output, pulled.output
    assert not (tmp_path / "bob" / "artifacts" / "adapter" / "victim").exists()


# ---------------------------------------------------------------- 9: registered versions stay as registered


def merged_folder(root: Path) -> Path:
    """What a merge leaves in a job folder: weights, config, its own manifest."""
    root.mkdir(parents=True)
    (root / "model.safetensors").write_bytes(b"\x01" * 40_000)
    (root / "config.json").write_text('{"hidden_size": 64}')
    (root / "manifest.json").write_text('{"name": "demo", "kind": "merged-model"}')
    return root


def test_push_refuses_a_registered_file_changed_in_place(tmp_path: Path, open_remote: Callable[[], Storage]) -> None:
    from services.artifacts.sources import register_merged

    alice = workspace(tmp_path, "alice", open_remote)
    job_dir = tmp_path / "jobs" / "demo-1"
    manifest = register_merged(alice, job_dir, merged_folder(job_dir / "merged"))
    with (job_dir / "merged" / "config.json").open("r+") as fh:  # a second writer, in place
        fh.write('{"hidden_size": 99}')

    with pytest.raises(IntegrityError, match=r"config\.json") as caught:
        alice.push(parse_ref(manifest.ref))
    assert manifest.ref in caught.value.message
    remote = open_remote()
    prefix = f"merged-model/{manifest.name}/{manifest.version}"
    assert remote.read(f"{prefix}/manifest.json") is None
    assert f"{prefix}/config.json" not in remote.keys(prefix)
    assert alice.remote.versions() == []


def test_push_refuses_a_large_file_changed_in_place_and_commits_none_of_it(tmp_path: Path, remote_kind: str) -> None:
    """A file sent in blocks is hashed as it is read: the changed one is refused before its blocks are
    committed, so nothing of it becomes visible, even though most of its bytes were already sent."""
    from tests.integration.test_artifacts import BLOCK

    tag = uuid.uuid4().hex[:12]
    if remote_kind == "azurite":
        open_remote: Callable[[], Storage] = lambda: azurite_storage(tag, block_bytes=BLOCK)  # noqa: E731
    else:
        open_remote = storage_factory("folder", tmp_path)
    alice = workspace(tmp_path, "alice", open_remote)
    manifest = register(alice, adapter_folder(tmp_path / "src", big=5 * BLOCK))
    with (alice.folder(manifest) / "adapter_model.safetensors").open("r+b") as fh:  # a second writer, in place
        fh.seek(4 * BLOCK)
        fh.write(b"\0" * 16)

    with pytest.raises(IntegrityError, match=r"adapter_model\.safetensors") as caught:
        alice.push(parse_ref("chat-adapter@v1"))
    assert "chat-adapter@v1" in caught.value.message
    remote = open_remote()
    assert remote.read("adapter/chat-adapter/v1/manifest.json") is None
    assert "adapter/chat-adapter/v1/adapter_model.safetensors" not in remote.keys("adapter/chat-adapter/v1")
    assert "adapter/chat-adapter/v1/adapter_model.safetensors" not in remote.hashes("adapter/chat-adapter/v1")


# ---------------------------------------------------------------- 9 and 17: the real merge, twice, and killed


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoWorkspace:
    root = tmp_path_factory.mktemp("demo")
    return init_demo(cache_dir=root / "hub", data_dir=root / "data")


def adapter_job(demo: DemoWorkspace, data_dir: Path, *, seed: int) -> Path:
    """A finished job folder whose adapter has random (non-zero) LoRA weights, without training."""
    from services.finetune import jobs
    from services.finetune.spec import parse_spec
    from services.store import Store

    spec = parse_spec(
        {"name": "t", "model": {"id": demo.model}, "dataset": {"path": demo.dataset}, "lora": {"r": 4}},
        source="test",
    )
    job_dir = jobs.create_job(spec, data_dir=data_dir, store=Store(data_dir))
    save_adapter(demo, job_dir, seed=seed)
    return job_dir


def save_adapter(
    demo: DemoWorkspace, job_dir: Path, *, seed: int, chat_template: str | None = None, notes: str = ""
) -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    base = AutoModelForCausalLM.from_pretrained(demo.model_path)
    config = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    adapter = job_dir / "adapter"
    get_peft_model(base, config).save_pretrained(str(adapter))
    tokenizer = AutoTokenizer.from_pretrained(demo.model_path)
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    tokenizer.save_pretrained(adapter)
    manifest = {"kind": "adapter", "name": "t", "version": job_dir.name, "notes": notes}
    (adapter / "manifest.json").write_text(json.dumps(manifest))


def digests(folder: Path) -> dict[str, str]:
    """sha256 of every file directly in `folder` (short enough for a readable assertion)."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir() if p.is_file()}


def intact(arts: Artifacts, manifest: Manifest) -> bool:
    return scan_files(arts.folder(manifest)) == manifest.files


def test_a_second_merge_leaves_the_registered_version_intact(demo: DemoWorkspace, tmp_path: Path) -> None:
    from services.artifacts.sources import merge_job

    arts = Artifacts(tmp_path / "data")
    job_dir = adapter_job(demo, tmp_path / "data", seed=1)
    folder, first = merge_job(arts, job_dir, cache_dir=Path(demo.cache_dir))
    template = "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}"
    save_adapter(demo, job_dir, seed=2, chat_template=template)  # retrained with another template, merged again
    from services.finetune.merge import merge_adapter

    again = merge_adapter(job_dir, cache_dir=Path(demo.cache_dir))
    assert again == folder
    assert scan_files(folder) != first.files  # the job's folder has the new merge
    assert intact(arts, first)  # the registered version still has the first one


def test_a_merge_killed_while_writing_leaves_the_old_output_whole(demo: DemoWorkspace, tmp_path: Path) -> None:
    from services.artifacts.sources import merge_job

    arts = Artifacts(tmp_path / "data")
    job_dir = adapter_job(demo, tmp_path / "data", seed=1)
    folder, first = merge_job(arts, job_dir, cache_dir=Path(demo.cache_dir))
    before = digests(folder)
    # the second merge runs out of space (a file-size limit) while writing its long manifest, and dies
    limit = max(p.stat().st_size for p in folder.iterdir()) + 64 * 1024
    save_adapter(demo, job_dir, seed=2, notes="x" * (limit + 100_000))

    script = (
        "import resource, sys\n"
        "from pathlib import Path\n"
        "from services.finetune.merge import merge_adapter\n"
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))\n"
        "merge_adapter(Path(sys.argv[1]), cache_dir=Path(sys.argv[2]))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script, str(job_dir), demo.cache_dir],
        check=False,
        capture_output=True,
        timeout=120,
    )
    assert run.returncode != 0, "the merge fitted under the limit: raise the weights' size or lower the limit"
    assert digests(folder) == before
    json.loads((folder / "manifest.json").read_text())
    assert intact(arts, first)


def test_a_trainer_killed_while_saving_leaves_the_old_adapter_whole(demo: DemoWorkspace, tmp_path: Path) -> None:
    from services.artifacts.sources import register_adapter

    arts = Artifacts(tmp_path / "data")
    job_dir = adapter_job(demo, tmp_path / "data", seed=1)
    registered = register_adapter(arts, job_dir)
    adapter = job_dir / "adapter"
    before = digests(adapter)
    limit = max(p.stat().st_size for p in adapter.iterdir()) + 64 * 1024

    # the trainer saves the adapter again (a resumed job) and runs out of space writing its manifest
    script = (
        "import resource, sys\n"
        "from pathlib import Path\n"
        "from types import SimpleNamespace\n"
        "from peft import LoraConfig, get_peft_model\n"
        "from transformers import AutoModelForCausalLM, AutoTokenizer\n"
        "from services.finetune.worker import save_adapter\n"
        "from services.finetune.spec import load_spec\n"
        "job, model = Path(sys.argv[1]), sys.argv[2]\n"
        "peft = get_peft_model(AutoModelForCausalLM.from_pretrained(model), LoraConfig(r=4, init_lora_weights=False))\n"
        "resolved = SimpleNamespace(id='demo', revision='abc')\n"
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))\n"
        "save_adapter(job, load_spec(job / 'job.toml'), peft, AutoTokenizer.from_pretrained(model), resolved, [],"
        f" ['x' * {limit + 100_000}])\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script, str(job_dir), demo.model_path], check=False, capture_output=True, timeout=120
    )
    assert run.returncode != 0, run.stderr[-2000:]
    assert b"File too large" in run.stderr
    assert digests(adapter) == before
    json.loads((adapter / "manifest.json").read_text())
    assert intact(arts, registered)
