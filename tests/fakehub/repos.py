"""Repository contents for the fake Hub: file records, metadata records and builders."""

from __future__ import annotations

import hashlib
import json
import os
import random
import struct
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from math import prod
from pathlib import Path
from typing import Literal

FileSource = bytes | Path
"""What a repo file holds: bytes in memory, or a path streamed from disk."""

Gated = Literal[False, "auto", "manual"]

EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
"""Default `lastModified` of repos, so that listings are reproducible."""

LFS_SUFFIXES = frozenset(
    {".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".onnx", ".gguf", ".model", ".zip"}
)
LFS_SIZE_THRESHOLD = 10 * 1024 * 1024
"""The Hub stores any file of 10 MiB or more in LFS."""

HEAD_BYTES = 8192
CHUNK = 8 * 1024 * 1024

HUB_GITATTRIBUTES = "".join(
    f"*{suffix} filter=lfs diff=lfs merge=lfs -text\n" for suffix in sorted(LFS_SUFFIXES)
).encode()


@dataclass(frozen=True)
class HubFile:
    """One file of a repo, hashed the way the Hub hashes it."""

    path: str
    size: int
    source: FileSource = field(repr=False)
    git_oid: str
    """Git blob sha1 of the content, or of the LFS pointer for LFS files."""
    sha256: str | None
    """Content sha256 for LFS files, None for files kept in git."""
    pointer_size: int = 0

    @property
    def is_lfs(self) -> bool:
        """Whether the Hub would store this file in LFS."""
        return self.sha256 is not None

    @property
    def etag(self) -> str:
        """The ETag the Hub sends on resolve: sha256 for LFS files, the git blob sha1 otherwise."""
        return self.sha256 or self.git_oid

    def read(self, start: int = 0, end: int | None = None) -> bytes:
        """Bytes `start` to `end` (exclusive) of the content."""
        stop = self.size if end is None else end
        if isinstance(self.source, bytes):
            return self.source[start:stop]
        with self.source.open("rb") as handle:
            handle.seek(start)
            return handle.read(stop - start)


def git_blob_sha1(data: bytes) -> str:
    """The sha1 git gives a blob holding `data`."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    """The git-lfs pointer file committed in place of an LFS file."""
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def _iter_chunks(source: FileSource) -> Iterator[bytes]:
    if isinstance(source, bytes):
        yield source
        return
    with source.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            yield chunk


def _head(source: FileSource) -> bytes:
    if isinstance(source, bytes):
        return source[:HEAD_BYTES]
    with source.open("rb") as handle:
        return handle.read(HEAD_BYTES)


def _size(source: FileSource) -> int:
    return len(source) if isinstance(source, bytes) else source.stat().st_size


def is_lfs(path: str, source: FileSource) -> bool:
    """Whether the Hub would keep `path` in LFS: weights, binary content or large files."""
    size = _size(source)
    if size == 0:
        return False
    suffix = Path(path).suffix.lower()
    return suffix in LFS_SUFFIXES or size >= LFS_SIZE_THRESHOLD or b"\0" in _head(source)


def hub_file(path: str, source: FileSource) -> HubFile:
    """Hash `source` into a `HubFile` as the Hub would store it under `path`."""
    size = _size(source)
    if not is_lfs(path, source):
        data = source if isinstance(source, bytes) else source.read_bytes()
        return HubFile(path, size, source, git_blob_sha1(data), None)
    digest = hashlib.sha256()
    for chunk in _iter_chunks(source):
        digest.update(chunk)
    pointer = lfs_pointer(digest.hexdigest(), size)
    return HubFile(path, size, source, git_blob_sha1(pointer), digest.hexdigest(), len(pointer))


def commit_sha(repo_id: str, files: Mapping[str, HubFile]) -> str:
    """A deterministic 40-hex commit sha for a repo's contents."""
    digest = hashlib.sha1(repo_id.encode())
    for path in sorted(files):
        digest.update(f"\0{path}\0{files[path].git_oid}".encode())
    return digest.hexdigest()


@dataclass(kw_only=True)
class Repo:
    """A model repo: Hub metadata plus files that may be built on first use."""

    repo_id: str
    sha: str
    sources: Callable[[], Mapping[str, FileSource]] = field(repr=False)
    pipeline_tag: str | None = None
    library_name: str | None = None
    license: str | None = None
    gated: Gated = False
    downloads: int = 0
    likes: int = 0
    trending_score: int = 0
    last_modified: datetime = EPOCH
    created_at: datetime | None = None
    tags: tuple[str, ...] = ()
    safetensors_params: dict[str, int] | None = None

    @property
    def author(self) -> str | None:
        """The namespace of the repo id, if any."""
        return self.repo_id.split("/")[0] if "/" in self.repo_id else None

    @cached_property
    def files(self) -> dict[str, HubFile]:
        """The repo's files, hashed on first use."""
        return {path: hub_file(path, src) for path, src in sorted(self.sources().items())}

    @cached_property
    def all_tags(self) -> list[str]:
        """Tags as the Hub reports them: explicit tags plus library, pipeline and licence tags."""
        extra = [self.library_name, self.pipeline_tag, f"license:{self.license}" if self.license else None]
        return list(dict.fromkeys([*self.tags, *(tag for tag in extra if tag)]))

    @property
    def card_data(self) -> dict[str, object] | None:
        """The model card metadata the Hub parses from the README front matter."""
        data: dict[str, object] = {
            "license": self.license,
            "library_name": self.library_name,
            "pipeline_tag": self.pipeline_tag,
            "tags": list(self.tags) or None,
        }
        present = {key: value for key, value in data.items() if value is not None}
        return present or None


def model_card(*, license: str | None, pipeline_tag: str | None, library_name: str | None, title: str) -> str:
    """A README.md with YAML front matter, as the Hub expects model cards."""
    meta = {"license": license, "pipeline_tag": pipeline_tag, "library_name": library_name}
    front = "".join(f"{key}: {value}\n" for key, value in meta.items() if value)
    return f"---\n{front}---\n\n# {title}\n\nA model served by the fake Hub for tests.\n"


def safetensors_parameters(files: Iterable[HubFile]) -> dict[str, int] | None:
    """Parameter counts per dtype read from the headers of `.safetensors` files, as the Hub reports them."""
    counts: Counter[str] = Counter()
    for file in files:
        if file.path.endswith(".safetensors"):
            for name, info in _safetensors_header(file).items():
                if name != "__metadata__" and isinstance(info, dict):
                    counts[str(info.get("dtype"))] += prod(info.get("shape", []))
    return dict(counts) or None


def _safetensors_header(file: HubFile) -> dict[str, object]:
    if file.size < 8:
        return {}
    (length,) = struct.unpack("<Q", file.read(0, 8))
    if length > min(file.size - 8, 100_000_000):
        return {}
    try:
        header = json.loads(file.read(8, 8 + length))
    except ValueError:
        return {}
    return header if isinstance(header, dict) else {}


# --- synthetic metadata-only repos -------------------------------------------------------------

AUTHORS = ("acme", "meta-llama", "mistralai", "google", "tinyorg", "openlab", "bigscience", "sam", "qwen", "nlp-u")
PIPELINES = (
    "text-generation",
    "text-classification",
    "feature-extraction",
    "text-to-image",
    "automatic-speech-recognition",
    "summarization",
    "sentence-similarity",
)
LIBRARIES = ("transformers", "sentence-transformers", "diffusers", "gguf", "peft", "timm")
LICENSES = ("apache-2.0", "mit", "llama3", "cc-by-4.0", "other", "openrail")
NAME_PARTS = ("llama", "bert", "gpt", "mistral", "phi", "t5", "whisper", "clip", "qwen", "gemma", "falcon", "mamba")
SIZES = ("tiny", "small", "base", "large", "1b", "3b", "7b", "13b", "70b")


def synthetic_repos(n: int, seed: int = 0) -> list[Repo]:
    """`n` varied metadata-only repos whose files are generated only when first requested."""
    rng = random.Random(seed)
    return [_synthetic_repo(index, rng) for index in range(n)]


def _synthetic_repo(index: int, rng: random.Random) -> Repo:
    name = f"{rng.choice(NAME_PARTS)}-{rng.choice(SIZES)}-{index:05d}"
    repo_id = f"{rng.choice(AUTHORS)}/{name}"
    meta = {
        "pipeline_tag": rng.choice(PIPELINES),
        "library_name": rng.choice(LIBRARIES),
        "license": rng.choice(LICENSES),
    }
    modified = EPOCH - timedelta(days=rng.randint(0, 900), seconds=rng.randint(0, 86399))
    params = rng.choice((None, 1_000_000, 125_000_000, 1_100_000_000, 7_000_000_000))
    return Repo(
        repo_id=repo_id,
        sha=hashlib.sha1(f"synthetic:{repo_id}".encode()).hexdigest(),
        sources=lambda: _synthetic_sources(repo_id, meta),
        gated=rng.choice((False, False, False, "auto", "manual")),
        downloads=int(rng.paretovariate(1.2) * 100),
        likes=int(rng.paretovariate(1.5) * 5),
        trending_score=rng.randint(0, 200),
        last_modified=modified,
        created_at=modified - timedelta(days=rng.randint(0, 300)),
        tags=tuple(rng.sample(("en", "fr", "code", "chat", "conversational", "4-bit", "endpoints"), 2)),
        safetensors_params={"F16": params} if params else None,
        **meta,
    )


def _synthetic_sources(repo_id: str, meta: Mapping[str, str]) -> dict[str, FileSource]:
    card = model_card(
        license=meta["license"],
        pipeline_tag=meta["pipeline_tag"],
        library_name=meta["library_name"],
        title=repo_id,
    )
    model_type = repo_id.rsplit("/", maxsplit=1)[-1].split("-", maxsplit=1)[0]
    config = json.dumps({"model_type": model_type}, indent=2)
    return {"README.md": card.encode(), "config.json": config.encode()}


# --- real repos built on disk --------------------------------------------------------------------


def tiny_llama_files(workdir: Path, *, seed: int = 0) -> dict[str, FileSource]:
    """The demo workspace's tiny Llama (real weights and tokenizer), built in `workdir`."""
    from services.demo import DEMO_SEED, build_tiny_llama

    workdir.mkdir(parents=True, exist_ok=True)
    return folder_files(build_tiny_llama(workdir, seed=seed or DEMO_SEED))


def folder_files(folder: Path) -> dict[str, FileSource]:
    """Every file under `folder`, keyed by its POSIX path relative to `folder`."""
    return {
        path.relative_to(folder).as_posix(): path
        for path in sorted(folder.rglob("*"))
        if path.is_file() and ".git" not in path.relative_to(folder).parts
    }


def big_file_repo(workdir: Path, size_bytes: int) -> dict[str, FileSource]:
    """A repo whose `model.safetensors` is `size_bytes` of random data written to `workdir`."""
    workdir.mkdir(parents=True, exist_ok=True)
    blob = workdir / "model.safetensors"
    with blob.open("wb") as handle:
        for start in range(0, size_bytes, CHUNK):
            handle.write(os.urandom(min(CHUNK, size_bytes - start)))
    return {"model.safetensors": blob, "config.json": b'{"model_type": "llama"}\n'}


def dup_weights_files(*, seed: int = 0) -> dict[str, FileSource]:
    """A small repo with weights both as `model.safetensors` and as `pytorch_model.bin`, plus `.gitattributes`."""
    import numpy as np
    from safetensors.numpy import save

    rng = np.random.default_rng(seed)
    tensors = {"embed.weight": rng.standard_normal((16, 8), dtype=np.float32)}
    weights = save(tensors, metadata={"format": "pt"})
    card = model_card(license="mit", pipeline_tag="feature-extraction", library_name="transformers", title="Dup")
    return {
        ".gitattributes": HUB_GITATTRIBUTES,
        "README.md": card.encode(),
        "config.json": b'{"model_type": "bert"}\n',
        "model.safetensors": weights,
        "pytorch_model.bin": b"PK\x03\x04" + rng.bytes(len(weights)),
    }
