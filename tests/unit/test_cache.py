"""The local HF cache listing and deletion, on cache folders laid out like huggingface_hub's."""

from pathlib import Path

import pytest

from services.cache import delete_cached_model, list_cached_models
from services.demo import place_in_cache
from services.errors import NotFoundError


def model_folder(root: Path, text: str) -> Path:
    root.mkdir(parents=True)
    (root / "config.json").write_text('{"model_type": "llama"}')
    (root / "weights.safetensors").write_text(text * 1000)
    return root


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    cache = tmp_path / "hub"
    place_in_cache(cache, "acme/one", model_folder(tmp_path / "v1", "a"))
    place_in_cache(cache, "acme/one", model_folder(tmp_path / "v2", "bb"), ref="dev")
    place_in_cache(cache, "acme/two", model_folder(tmp_path / "t", "c"))
    return cache


def test_lists_repos_revisions_and_sizes(cache: Path) -> None:
    listing = list_cached_models(cache)
    assert [m.repo_id for m in listing.models] == ["acme/one", "acme/two"]  # largest first
    one = listing.models[0]
    assert sorted(r.refs for r in one.revisions) == [("dev",), ("main",)]
    assert one.size == 23 + 1000 + 2000  # config.json is shared by both revisions: counted once
    assert listing.size == sum(m.size for m in listing.models)


def test_delete_one_revision_by_ref_then_the_repo(cache: Path) -> None:
    freed = delete_cached_model(cache, "acme/one", revision="dev")
    assert freed >= 2000
    [one] = [m for m in list_cached_models(cache).models if m.repo_id == "acme/one"]
    assert [r.refs for r in one.revisions] == [("main",)]
    delete_cached_model(cache, "acme/one")
    assert [m.repo_id for m in list_cached_models(cache).models] == ["acme/two"]


def test_delete_by_commit_prefix(cache: Path) -> None:
    [two] = [m for m in list_cached_models(cache).models if m.repo_id == "acme/two"]
    delete_cached_model(cache, "acme/two", revision=two.revisions[0].commit[:10])
    assert "acme/two" not in {m.repo_id for m in list_cached_models(cache).models}


def test_unknown_repo_or_revision(cache: Path) -> None:
    with pytest.raises(NotFoundError, match="acme/nope"):
        delete_cached_model(cache, "acme/nope")
    with pytest.raises(NotFoundError, match="revision 'v9'"):
        delete_cached_model(cache, "acme/one", revision="v9")


def test_missing_cache_is_empty_not_an_error(tmp_path: Path) -> None:
    assert list_cached_models(tmp_path / "absent").models == ()


def test_corrupted_entry_is_reported_not_fatal(cache: Path) -> None:
    (cache / "models--acme--broken").mkdir()  # no snapshots folder
    listing = list_cached_models(cache)
    assert {m.repo_id for m in listing.models} == {"acme/one", "acme/two"}
    assert any("broken" in w for w in listing.warnings)
