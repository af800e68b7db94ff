"""Hub search, details, download, resume, gating and offline through the real client and a local hub."""

import time
from pathlib import Path

import pytest

from services.errors import AccessDeniedError, CancelledError, HubUnavailableError, InsufficientDiskError, NotFoundError
from services.hub.connection import HubConnection, check_online
from services.hub.details import model_details
from services.hub.download import download_model
from services.hub.search import search_models
from services.progress import CancelToken, TransferProgress
from tests.fakehub import FakeHub, big_file_repo, dup_weights_files


def conn_for(hub: FakeHub, tmp_path: Path, token: str | None = None) -> HubConnection:
    return HubConnection(endpoint=hub.endpoint, token=token, cache_dir=tmp_path / "hub", timeout=5)


def test_search_filters_sort_and_pages(fake_hub: FakeHub, tmp_path: Path) -> None:
    fake_hub.add_synthetic_models(300, seed=1)
    pager = search_models(conn_for(fake_hub, tmp_path), "", task="text-generation", sort="likes", page_size=25)
    first, second = pager.next_page(), pager.next_page()
    assert len(first) == 25 and len(second) == 25
    assert {m.task for m in first + second} == {"text-generation"}
    likes = [m.likes for m in first + second]
    assert likes == sorted(likes, reverse=True)
    assert not {m.id for m in first} & {m.id for m in second}
    assert len(fake_hub.requests_to("/api/models")) == 2  # one HTTP page per next_page()


def test_search_by_text_and_licence(fake_hub: FakeHub, tmp_path: Path) -> None:
    fake_hub.add_repo("acme/chat-small", {"config.json": b"{}"}, license="mit", pipeline_tag="text-generation")
    fake_hub.add_repo("acme/classifier", {"config.json": b"{}"}, license="apache-2.0")
    found = search_models(conn_for(fake_hub, tmp_path), "CHAT", license="mit").next_page()
    assert [(m.id, m.license) for m in found] == [("acme/chat-small", "mit")]


def test_details_of_tiny_llama(tiny_llama_hub: FakeHub, tmp_path: Path) -> None:
    details = model_details(conn_for(tiny_llama_hub, tmp_path), "workbench-demo/tiny-llama")
    assert details.params and details.params > 10_000
    assert details.license == "apache-2.0"
    assert details.config and details.config["model_type"] == "llama"
    assert "tiny" in details.card.lower()
    assert details.download_bytes == sum(f.size for f in details.files if f.selected) > 0
    assert not (tmp_path / "hub").exists()  # looking leaves no trace in the cache


def test_default_patterns_skip_duplicate_weight_formats(fake_hub: FakeHub, tmp_path: Path) -> None:
    fake_hub.add_repo("acme/dup", dup_weights_files())
    details = model_details(conn_for(fake_hub, tmp_path), "acme/dup")
    selected = {f.path for f in details.files if f.selected}
    assert "model.safetensors" in selected
    assert "pytorch_model.bin" not in selected
    explicit = model_details(conn_for(fake_hub, tmp_path), "acme/dup", include=("*.bin",))
    assert {f.path for f in explicit.files if f.selected} == {"pytorch_model.bin"}


def test_download_is_loadable_and_reports_progress(tiny_llama_hub: FakeHub, tmp_path: Path) -> None:
    events: list[TransferProgress] = []
    conn = conn_for(tiny_llama_hub, tmp_path)
    result = download_model(conn, "workbench-demo/tiny-llama", on_progress=events.append)
    assert events and events[-1].done_bytes == events[-1].total_bytes == result.fetched_bytes
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(result.path))
    assert model.config.model_type == "llama"
    again = download_model(conn, "workbench-demo/tiny-llama")
    assert again.fetched_bytes == 0  # everything was already in the cache


def big_repo(hub: FakeHub, tmp_path: Path, size: int) -> None:
    hub.add_repo("acme/big", big_file_repo(tmp_path / "src", size), safetensors_params={"F32": size // 4})


def test_dropped_connection_is_resumed_within_the_run(fake_hub: FakeHub, tmp_path: Path) -> None:
    big_repo(fake_hub, tmp_path, 5_000_000)
    fake_hub.fail_next_download("model.safetensors", after_bytes=3_000_000)
    result = download_model(conn_for(fake_hub, tmp_path), "acme/big")
    assert (result.path / "model.safetensors").stat().st_size == 5_000_000
    offsets = [int(r.range.split("=")[1].split("-")[0]) for r in fake_hub.requests if r.range]
    assert offsets and offsets[-1] >= 1 << 20  # the retry asked only for the rest


def test_interrupted_download_resumes_in_a_later_run(
    fake_hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("services.transfer.RETRIES", 0)
    big_repo(fake_hub, tmp_path, 5_000_000)
    fake_hub.fail_next_download("model.safetensors", after_bytes=3_000_000)
    conn = conn_for(fake_hub, tmp_path)
    with pytest.raises(HubUnavailableError):
        download_model(conn, "acme/big")
    kept = max(p.stat().st_size for p in (tmp_path / "hub").rglob("*.incomplete"))
    assert 0 < kept < 5_000_000
    config_kept = any((tmp_path / "hub").rglob("config.json"))  # the failure may cut it off too
    result = download_model(conn, "acme/big")
    config = 0 if config_kept else (result.path / "config.json").stat().st_size
    assert result.fetched_bytes == 5_000_000 - kept + config
    assert fake_hub.requests[-1].range == f"bytes={kept}-"
    source = (tmp_path / "src").rglob("*.safetensors")
    assert (result.path / "model.safetensors").read_bytes() == next(source).read_bytes()


def test_cancel_stops_the_download_and_a_rerun_finishes(fake_hub: FakeHub, tmp_path: Path) -> None:
    big_repo(fake_hub, tmp_path, 8_000_000)
    conn, cancel = conn_for(fake_hub, tmp_path), CancelToken()
    with pytest.raises(CancelledError):
        download_model(conn, "acme/big", cancel=cancel, on_progress=lambda p: cancel.cancel())
    assert not list((tmp_path / "hub").rglob("snapshots/*/model.safetensors"))
    result = download_model(conn, "acme/big")
    assert (result.path / "model.safetensors").stat().st_size == 8_000_000


def test_gated_model_without_access_is_refused_with_a_next_step(fake_hub: FakeHub, tmp_path: Path) -> None:
    fake_hub.tokens = frozenset({"hf_granted", "hf_other"})
    fake_hub.add_repo("meta/gated", {"config.json": b"{}", "model.safetensors": b"\0" * 16}, gated="manual")
    details = model_details(conn_for(fake_hub, tmp_path, token="hf_other"), "meta/gated")
    assert details.gated and not details.access
    with pytest.raises(AccessDeniedError) as err:
        download_model(conn_for(fake_hub, tmp_path, token="hf_other"), "meta/gated")
    assert "HF_TOKEN" in str(err.value) and "meta/gated" in str(err.value)
    fake_hub.grant("meta/gated", "hf_granted")
    assert model_details(conn_for(fake_hub, tmp_path, token="hf_granted"), "meta/gated").access


def test_unknown_model_and_revision(fake_hub: FakeHub, tmp_path: Path) -> None:
    fake_hub.add_repo("acme/known", {"config.json": b"{}"})
    with pytest.raises(NotFoundError, match="acme/missing"):
        model_details(conn_for(fake_hub, tmp_path), "acme/missing")
    with pytest.raises(NotFoundError, match="revision"):
        model_details(conn_for(fake_hub, tmp_path), "acme/known", revision="v9")


def test_download_refused_when_disk_is_short(
    tiny_llama_hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(InsufficientDiskError, match="free"):
        download_model(conn_for(tiny_llama_hub, tmp_path), "workbench-demo/tiny-llama", disk=lambda path: 1000)
    assert not list((tmp_path / "hub").rglob("*.safetensors"))


def test_offline_within_timeout(fake_hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_hub.stop()
    started = time.monotonic()
    with pytest.raises(HubUnavailableError, match="unreachable"):
        check_online(conn_for(fake_hub, tmp_path))
    with pytest.raises(HubUnavailableError, match="unreachable"):
        search_models(conn_for(fake_hub, tmp_path), "x").next_page()
    assert time.monotonic() - started < 5  # well within the configured timeout, no retry back-off
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HubUnavailableError, match="HF_HUB_OFFLINE"):
        search_models(HubConnection(endpoint="http://127.0.0.1:9", timeout=1), "x")
