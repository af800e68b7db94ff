"""The fake Hub, exercised through the real `huggingface_hub` client."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx2
import pytest
from huggingface_hub import HfApi, constants, hf_hub_download, snapshot_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from tests.fakehub import FakeHub, dup_weights_files, tiny_llama_files

TINY = "tiny/llama"
URL = "/org/weights/resolve/main/model.safetensors"


@pytest.fixture(autouse=True)
def no_telemetry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the client from contacting the real Hub for its agent registry."""
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)


@pytest.fixture(scope="module")
def tiny_llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tiny-llama")
    tiny_llama_files(folder)
    return folder


@pytest.fixture
def tiny_hub(fake_hub: FakeHub, tiny_llama_dir: Path) -> FakeHub:
    meta = {"pipeline_tag": "text-generation", "library_name": "transformers", "license": "apache-2.0"}
    fake_hub.add_folder_repo(TINY, tiny_llama_dir, **meta)
    return fake_hub


@pytest.fixture
def api(fake_hub: FakeHub) -> HfApi:
    return HfApi(endpoint=fake_hub.endpoint, token=False)


def test_list_models_filters_sorts_and_limits(fake_hub: FakeHub, api: HfApi) -> None:
    fake_hub.add_synthetic_models(2500, seed=1)

    found = list(api.list_models(search="LLAMA", filter="text-generation", sort="downloads", limit=20))

    assert len(found) == 20
    assert all("llama" in model.id and model.pipeline_tag == "text-generation" for model in found)
    downloads = [model.downloads or 0 for model in found]
    assert downloads == sorted(downloads, reverse=True)
    assert len(fake_hub.requests_to("/api/models")) == 1


def test_list_models_by_author_licence_and_gating(fake_hub: FakeHub, api: HfApi) -> None:
    fake_hub.add_synthetic_models(500, seed=2)

    found = list(api.list_models(author="acme", filter="license:mit", gated=False, cardData=True))

    assert found
    assert all(model.id.startswith("acme/") and not model.gated for model in found)
    assert all(model.card_data is not None and model.card_data.license == "mit" for model in found)


def test_list_models_without_limit_follows_link_pages(fake_hub: FakeHub, api: HfApi) -> None:
    fake_hub.add_synthetic_models(2500, seed=3)

    ids = [model.id for model in api.list_models()]

    assert len(ids) == len(set(ids)) == 2500
    assert len(fake_hub.requests_to("/api/models")) == 3
    assert "cursor" in fake_hub.requests[-1].query


def test_list_models_limit_stops_after_needed_pages(fake_hub: FakeHub, api: HfApi) -> None:
    fake_hub.add_synthetic_models(2500, seed=4)

    found = list(api.list_models(limit=1500, sort="last_modified"))

    assert len(found) == 1500
    assert len(fake_hub.requests_to("/api/models")) == 2


def test_model_info_with_files_metadata(tiny_hub: FakeHub, api: HfApi) -> None:
    info = api.model_info(TINY, files_metadata=True)

    siblings = {sibling.rfilename: sibling for sibling in info.siblings or []}
    weights = siblings["model.safetensors"]
    assert info.sha == tiny_hub.repo(TINY).sha and len(info.sha) == 40
    assert info.pipeline_tag == "text-generation" and info.gated is False
    assert {"config.json", "tokenizer.json", "README.md"} <= siblings.keys()
    assert weights.lfs is not None and weights.lfs.size == weights.size
    assert siblings["config.json"].lfs is None
    assert info.safetensors is not None and info.safetensors.total > 0


def test_tree_listing_recursive_and_by_folder(fake_hub: FakeHub, api: HfApi) -> None:
    fake_hub.add_repo("org/nested", {"a.txt": b"a", "sub/b.txt": b"b", "sub/deep/c.bin": b"\0c"})

    top = {entry.path for entry in api.list_repo_tree("org/nested")}
    everything = {entry.path for entry in api.list_repo_tree("org/nested", recursive=True)}
    sub = {entry.path for entry in api.list_repo_tree("org/nested", path_in_repo="sub")}

    assert top == {"a.txt", "sub"}
    assert everything == {"a.txt", "sub", "sub/b.txt", "sub/deep", "sub/deep/c.bin"}
    assert sub == {"sub/b.txt", "sub/deep"}


def test_get_safetensors_metadata_uses_range_requests(tiny_hub: FakeHub, api: HfApi) -> None:
    metadata = api.get_safetensors_metadata(TINY)

    assert metadata.sharded is False
    assert "model.embed_tokens.weight" in metadata.weight_map
    assert metadata.parameter_count == tiny_hub.repo(TINY).safetensors_params
    assert any(request.range == "bytes=0-100000" for request in tiny_hub.requests)


def test_downloads_load_with_transformers(tiny_hub: FakeHub, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cache = tmp_path / "cache"
    config = hf_hub_download(TINY, "config.json", endpoint=tiny_hub.endpoint, cache_dir=cache, token=False)
    folder = snapshot_download(TINY, endpoint=tiny_hub.endpoint, cache_dir=cache, token=False)

    assert Path(config).parent == Path(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    logits = model(**tokenizer("the cat runs", return_tensors="pt")).logits
    assert logits.shape[-1] == model.config.vocab_size


def test_missing_repo_revision_and_file_raise_hub_errors(tiny_hub: FakeHub, api: HfApi, tmp_path: Path) -> None:
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("nobody/nothing")
    with pytest.raises(RevisionNotFoundError):
        api.model_info(TINY, revision="v9")
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(TINY, "missing.txt", endpoint=tiny_hub.endpoint, cache_dir=tmp_path, token=False)
    assert tiny_hub.requests_to("/api/agent-harnesses") == []


def test_gated_repo_needs_a_granted_token(tmp_path: Path) -> None:
    with FakeHub(tokens={"hf_valid", "hf_other"}) as hub:
        hub.add_repo("org/gated", {"config.json": b"{}"}, gated="manual")

        def download(token: str | bool) -> str:
            return hf_hub_download("org/gated", "config.json", endpoint=hub.endpoint, cache_dir=tmp_path, token=token)

        assert HfApi(endpoint=hub.endpoint, token=False).model_info("org/gated").gated == "manual"
        with pytest.raises(GatedRepoError, match="401"):
            download(False)
        with pytest.raises(GatedRepoError, match="403"):
            download("hf_other")
        hub.grant("org/gated", "hf_valid")
        assert Path(download("hf_valid")).read_bytes() == b"{}"
        with pytest.raises(HfHubHTTPError, match="401"):
            HfApi(endpoint=hub.endpoint, token="hf_wrong").model_info("org/gated")

        assert [request.authorized for request in hub.requests[-2:]] == [True, True]
        assert all("hf_" not in repr(request) for request in hub.requests)


def test_truncated_download_resumes_with_range(fake_hub: FakeHub, tmp_path: Path) -> None:
    # The client writes in 10 MiB chunks, so only a cut after the first chunk leaves bytes to resume from.
    chunk = constants.DOWNLOAD_CHUNK_SIZE
    blob = bytes(range(256)) * (chunk // 256 + 8192)
    fake_hub.add_repo("org/weights", {"model.safetensors": blob})
    fake_hub.fail_next_download("model.safetensors", after_bytes=chunk + 1000)

    path = hf_hub_download(
        "org/weights", "model.safetensors", endpoint=fake_hub.endpoint, cache_dir=tmp_path, token=False
    )

    assert hashlib.sha256(Path(path).read_bytes()).hexdigest() == hashlib.sha256(blob).hexdigest()
    ranges = [request.range for request in fake_hub.requests_to(URL)]
    assert ranges == [None, None, f"bytes={chunk}-"]  # HEAD, the cut GET, the resumed GET


def test_offline_hub_refuses_connections(fake_hub: FakeHub, api: HfApi) -> None:
    fake_hub.add_repo("org/small", {"config.json": b"{}"})
    fake_hub.offline = True

    with pytest.raises(httpx2.ConnectError):
        api.model_info("org/small")
    fake_hub.offline = False
    assert api.model_info("org/small").id == "org/small"


def test_delay_makes_client_time_out(fake_hub: FakeHub, api: HfApi) -> None:
    fake_hub.add_repo("org/slow", {"config.json": b"{}"})
    fake_hub.delay = 0.5

    with pytest.raises(httpx2.ReadTimeout):
        api.model_info("org/slow", timeout=0.1)


def test_duplicate_weight_repo_has_both_formats(fake_hub: FakeHub, api: HfApi) -> None:
    fake_hub.add_repo("org/dup", dup_weights_files())

    files = set(api.list_repo_files("org/dup"))

    assert {".gitattributes", "model.safetensors", "pytorch_model.bin"} <= files
