"""Attacks by a hostile hub or mirror, through the real client, real files and a local hub.

Each test makes the hub answer as an attacker would (names with `..`, forged commit ids and ETags,
bytes that do not match their published sha256, redirects to another origin) and checks that the
download writes nothing outside the repo's cache folder and sends the token nowhere else.
"""

from pathlib import Path

import pytest

from services.errors import HubResponseError, IntegrityError
from services.hub.connection import HubConnection
from services.hub.download import download_model
from services.hub.search import search_models
from tests.fakehub import FakeHub, RecordingCdn, big_file_repo

CANARY = "hf_CANARY_0123456789abcdef0123456789abcdef"


def conn_for(hub: FakeHub, tmp_path: Path, token: str | None = None) -> HubConnection:
    return HubConnection(endpoint=hub.endpoint, token=token, cache_dir=tmp_path / "hub", timeout=5)


def written_outside_cache(tmp_path: Path, *keep: Path) -> list[Path]:
    """Everything under tmp_path that is neither in the cache nor one of `keep`."""
    cache = tmp_path / "hub"
    return [p for p in tmp_path.rglob("*") if cache not in (p, *p.parents) and p not in keep]


def test_file_name_with_dotdot_writes_nothing_outside_the_cache(fake_hub: FakeHub, tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("mine")
    fake_hub.add_repo("acme/evil", {"config.json": b"{}", "../../../../victim.txt": b"the server's bytes"})
    with pytest.raises(HubResponseError, match=r"victim\.txt"):
        download_model(conn_for(fake_hub, tmp_path), "acme/evil")
    assert not victim.is_symlink() and victim.read_text() == "mine"
    assert written_outside_cache(tmp_path, victim) == []


@pytest.mark.parametrize("name", ["{tmp}/absolute.txt", "C:\\victim.txt", "a\\..\\..\\victim.txt"])
def test_anchored_and_backslash_names_are_refused(fake_hub: FakeHub, tmp_path: Path, name: str) -> None:
    fake_hub.add_repo("acme/evil", {"config.json": b"{}", name.format(tmp=tmp_path): b"x"})
    with pytest.raises(HubResponseError):
        download_model(conn_for(fake_hub, tmp_path), "acme/evil")
    assert written_outside_cache(tmp_path) == []


def test_commit_id_must_be_40_hex(fake_hub: FakeHub, tmp_path: Path) -> None:
    fake_hub.add_repo("acme/evil", {"config.json": b"{}"})
    fake_hub.tamper.sha = "../../../../escape"
    with pytest.raises(HubResponseError, match="commit"):
        download_model(conn_for(fake_hub, tmp_path), "acme/evil")
    assert written_outside_cache(tmp_path) == []


def test_etag_must_be_a_hash(fake_hub: FakeHub, tmp_path: Path) -> None:
    fake_hub.add_repo("acme/evil", {"config.json": b"{}"})
    fake_hub.tamper.etag = "../../../pwned"
    with pytest.raises(HubResponseError, match="ETag"):
        download_model(conn_for(fake_hub, tmp_path), "acme/evil")
    assert written_outside_cache(tmp_path) == []


def test_lfs_bytes_must_match_the_published_sha256(fake_hub: FakeHub, tmp_path: Path) -> None:
    fake_hub.add_repo("acme/big", big_file_repo(tmp_path / "src", 200_000), safetensors_params={"F32": 50_000})
    fake_hub.tamper.swapped["model.safetensors"] = b"\0" * 200_000
    etag = fake_hub.repo("acme/big").files["model.safetensors"].etag
    with pytest.raises(IntegrityError, match="sha256"):
        download_model(conn_for(fake_hub, tmp_path), "acme/big")
    assert not list((tmp_path / "hub").rglob("snapshots/*/model.safetensors"))
    # a rerun fetches the bad file anew (other files' partials, if the failure cut them short, resume)
    assert not list((tmp_path / "hub").rglob(f"blobs/{etag}*"))


def test_oversized_partial_file_is_not_taken_as_complete(fake_hub: FakeHub, tmp_path: Path) -> None:
    fake_hub.add_repo("acme/big", big_file_repo(tmp_path / "src", 300_000), safetensors_params={"F32": 75_000})
    etag = fake_hub.repo("acme/big").files["model.safetensors"].etag
    partial = tmp_path / "hub" / "models--acme--big" / "blobs" / f"{etag}.incomplete"
    partial.parent.mkdir(parents=True)
    partial.write_bytes(b"\1" * 400_000)
    result = download_model(conn_for(fake_hub, tmp_path), "acme/big")
    source = next((tmp_path / "src").rglob("*.safetensors")).read_bytes()
    assert (result.path / "model.safetensors").read_bytes() == source


def test_size_that_differs_from_the_listing_is_refused(fake_hub: FakeHub, tmp_path: Path) -> None:
    fake_hub.add_repo("acme/big", big_file_repo(tmp_path / "src", 100_000), safetensors_params={"F32": 25_000})
    fake_hub.tamper.swapped["model.safetensors"] = b"\0" * 10_000_000
    with pytest.raises(HubResponseError, match="size"):
        download_model(conn_for(fake_hub, tmp_path), "acme/big")
    assert not list((tmp_path / "hub").rglob("blobs/*"))


def test_token_goes_only_to_the_hubs_own_host(fake_hub: FakeHub, tmp_path: Path) -> None:
    fake_hub.tokens = frozenset({CANARY})
    fake_hub.add_repo("acme/big", big_file_repo(tmp_path / "src", 300_000), safetensors_params={"F32": 75_000})
    weights = fake_hub.repo("acme/big").files["model.safetensors"]
    with RecordingCdn() as cdn:
        cdn.blobs[weights.etag] = weights.read()
        fake_hub.tamper.redirect_to = cdn.base_url
        result = download_model(conn_for(fake_hub, tmp_path, token=CANARY), "acme/big")
    assert (result.path / "model.safetensors").read_bytes() == weights.read()
    assert [r.method for r in cdn.requests] == ["GET"]  # the download really went to the other origin
    assert [r for r in cdn.requests if "authorization" in r.headers] == []
    assert all(r.authorized for r in fake_hub.requests if "/resolve/" in r.path)  # the hub still got it


def test_next_page_on_another_host_gets_no_token(fake_hub: FakeHub, tmp_path: Path) -> None:
    fake_hub.add_synthetic_models(6, seed=2)
    with RecordingCdn() as cdn:
        fake_hub.tamper.next_page = f"{cdn.base_url}/api/models?cursor=stolen"
        pager = search_models(conn_for(fake_hub, tmp_path, token=CANARY), "", page_size=3)
        assert len(pager.next_page()) == 3
        with pytest.raises(HubResponseError, match="another host"):
            pager.next_page()
    assert [r for r in cdn.requests if "authorization" in r.headers] == []


def test_body_longer_than_announced_is_cut_off_and_refused(fake_hub: FakeHub, tmp_path: Path) -> None:
    fake_hub.add_repo("acme/big", big_file_repo(tmp_path / "src", 100_000), safetensors_params={"F32": 25_000})
    fake_hub.tamper.padding["model.safetensors"] = 5_000_000  # a server that keeps sending would fill the disk
    with pytest.raises(HubResponseError, match="more than"):
        download_model(conn_for(fake_hub, tmp_path), "acme/big")
    assert sum(p.stat().st_size for p in (tmp_path / "hub").rglob("blobs/*")) <= 100_000


def test_resumed_range_must_start_where_the_partial_file_ends(fake_hub: FakeHub, tmp_path: Path) -> None:
    fake_hub.add_repo("acme/big", big_file_repo(tmp_path / "src", 300_000), safetensors_params={"F32": 75_000})
    source = next((tmp_path / "src").rglob("*.safetensors")).read_bytes()
    etag = fake_hub.repo("acme/big").files["model.safetensors"].etag
    partial = tmp_path / "hub" / "models--acme--big" / "blobs" / f"{etag}.incomplete"
    partial.parent.mkdir(parents=True)
    partial.write_bytes(source[:100_000])
    fake_hub.tamper.headers["Content-Range"] = "bytes 0-299999/300000"  # but sends bytes 100000-
    with pytest.raises(HubResponseError, match="bytes 100000-"):
        download_model(conn_for(fake_hub, tmp_path), "acme/big")
    assert not list((tmp_path / "hub").rglob("snapshots/*/model.safetensors"))
