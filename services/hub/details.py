"""One model on the hub: its files (checked before they become paths), card, config, parameters and access."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from services.errors import HubResponseError
from services.hub.connection import (
    MALFORMED_HINT,
    HubConnection,
    gated_error,
    head,
    hub_errors,
    malformed_answers,
    offline_error,
    offline_mode,
)
from services.hub.search import license_of

if TYPE_CHECKING:
    from huggingface_hub import HfApi
    from huggingface_hub.hf_api import ModelInfo


WEIGHT_FORMATS = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.h5", "*.msgpack", "*.ot", "*.onnx", "*.tflite")


@dataclass(frozen=True)
class RepoFile:
    """A file in a model repository."""

    path: str
    size: int
    selected: bool
    sha256: str | None = None
    """The content sha256 the hub publishes for an LFS file; None for files kept in git."""


@dataclass(frozen=True)
class ModelDetails:
    """What the detail pane and `models info` show."""

    id: str
    sha: str
    task: str | None
    library: str | None
    license: str | None
    gated: bool
    access: bool
    params: int | None
    files: tuple[RepoFile, ...]
    card: str
    config: dict[str, Any] | None

    @property
    def download_bytes(self) -> int:
        """Bytes of the files a default download actually fetches."""
        return sum(f.size for f in self.files if f.selected)


def model_details(
    conn: HubConnection,
    repo_id: str,
    *,
    revision: str | None = None,
    include: tuple[str, ...] = (),
    exclude: tuple[str, ...] = (),
) -> ModelDetails:
    """Files, sizes, parameter count, licence, gating and access, card and config of one model."""
    what = f"model '{repo_id}'" + (f" at revision '{revision}'" if revision else "")
    with hub_errors(conn, what, repo_id=repo_id), malformed_answers(what):
        if offline_mode():
            raise offline_error(conn)
        api = conn.api()
        info = api.model_info(repo_id, revision=revision, files_metadata=True)
        sha, files = _checked_listing(info, what)
        access = _has_access(conn, repo_id, sha, files, info)
        texts = _fetch_texts(conn, repo_id, sha, ("README.md", "config.json")) if access else {}
        return ModelDetails(
            id=info.id,
            sha=sha,
            task=info.pipeline_tag,
            library=info.library_name,
            license=license_of(info),
            gated=bool(info.gated),
            access=access,
            params=_param_count(api, info, access),
            files=select_files(files, include=include, exclude=exclude),
            card=_strip_front_matter(texts.get("README.md", "")),
            config=_config(texts, what),
        )


def _checked_listing(info: ModelInfo, what: str) -> tuple[str, list[RepoFile]]:
    """The commit id and files of a model answer, refused unless each is safe to use as a path."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    from services.transfer import check_commit

    try:
        validate_repo_id(info.id)
    except HFValidationError:
        raise HubResponseError(f"{what}: the hub named the model {info.id!r}", hint=MALFORMED_HINT) from None
    sha = check_commit(info.sha, what=what)
    return sha, [_repo_file(sibling, what) for sibling in info.siblings or []]


def _repo_file(sibling: Any, what: str) -> RepoFile:
    from services.transfer import check_name, check_size

    name = check_name(sibling.rfilename, what=what)
    size = sibling.size if sibling.size is not None else (sibling.lfs.size if sibling.lfs else 0)
    sha256 = sibling.lfs.sha256 if sibling.lfs else None
    if sha256 is not None and not (isinstance(sha256, str) and len(sha256) == 64):
        raise HubResponseError(f"{what}: the hub published {sha256!r} as sha256 of {name}", hint=MALFORMED_HINT)
    return RepoFile(name, check_size(size, what=f"{what}: {name}"), False, sha256)


def _config(texts: dict[str, str], what: str) -> dict[str, Any] | None:
    """The parsed config.json, None when the repo has none; `HubResponseError` when it is not a JSON object."""
    if "config.json" not in texts:
        return None
    try:
        config = json.loads(texts["config.json"])
    except ValueError:
        config = None
    if not isinstance(config, dict):
        raise HubResponseError(
            f"{what}: config.json is not a JSON object", hint="the repo's config.json is broken; try another revision"
        )
    return config


def select_files(
    files: list[RepoFile], *, include: tuple[str, ...] = (), exclude: tuple[str, ...] = ()
) -> tuple[RepoFile, ...]:
    """Mark the files a download fetches.

    With `include` patterns only matching files are fetched. Without them, when a repo has
    safetensors weights, the same weights in other formats (`.bin`, `.h5`, `.msgpack`, ONNX, ...)
    are skipped, like `from_pretrained` would. `exclude` patterns always apply.
    """
    from huggingface_hub.utils import filter_repo_objects

    names = [f.path for f in files]
    skip = list(exclude)
    if not include and any(n.endswith(".safetensors") for n in names):
        skip += [*WEIGHT_FORMATS, "onnx/*", "openvino/*", "coreml/*"]
    chosen = set(filter_repo_objects(names, allow_patterns=list(include) or None, ignore_patterns=skip))
    return tuple(replace(f, selected=f.path in chosen) for f in files)


def _has_access(conn: HubConnection, repo_id: str, sha: str, files: list[RepoFile], info: ModelInfo) -> bool:
    if not info.gated:
        return True
    from huggingface_hub import hf_hub_url
    from huggingface_hub.errors import GatedRepoError

    first = files[0].path if files else "config.json"
    try:
        head(conn, hf_hub_url(repo_id, first, revision=sha, endpoint=conn.url))
    except GatedRepoError:
        return False
    return True


def _fetch_texts(conn: HubConnection, repo_id: str, sha: str, names: tuple[str, ...]) -> dict[str, str]:
    """Small text files read straight over HTTP, so looking at a model leaves no trace in the cache."""
    from huggingface_hub import get_session, hf_hub_url
    from huggingface_hub.utils import build_hf_headers

    headers = build_hf_headers(token=conn.token)
    texts = {}
    for name in names:
        url = hf_hub_url(repo_id, name, revision=sha, endpoint=conn.url)
        response = get_session().get(url, headers=headers)
        if response.status_code == 200:
            texts[name] = response.text
    return texts


def _param_count(api: HfApi, info: ModelInfo, access: bool) -> int | None:
    if info.safetensors:
        return info.safetensors.total
    if not access or not any(s.rfilename.endswith(".safetensors") for s in info.siblings or []):
        return None
    from huggingface_hub.errors import NotASafetensorsRepoError, SafetensorsParsingError

    try:
        meta = api.get_safetensors_metadata(info.id, revision=info.sha)
    except (NotASafetensorsRepoError, SafetensorsParsingError):
        return None
    return sum(meta.parameter_count.values())


def _strip_front_matter(card: str) -> str:
    if card.startswith("---"):
        end = card.find("\n---", 3)
        if end != -1:
            return card[end + 4 :].lstrip("\n")
    return card


def require_access(conn: HubConnection, details: ModelDetails) -> None:
    """Raise `AccessDeniedError` (saying how to get access) when the token may not download the model."""
    if details.gated and not details.access:
        raise gated_error(conn, details.id)
