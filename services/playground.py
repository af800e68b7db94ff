"""What the Playground needs besides the chat, RAG and eval services: choices for its forms.

Which cached models can chat, which fine-tune adapters exist, where the demo suite lives, and the
parsing of the small text fields (metadata filters) the user types.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from services.cache import list_cached_models
from services.chat.variant import Variant
from services.errors import UsageError

if TYPE_CHECKING:
    from chromadb.api import ClientAPI

    from services.chat.remote import EndpointPolicy
    from services.chat.session import ChatEngine

DEMO_SUITE = Path("demo") / "suite.yaml"
"""Where `workbench demo init` writes the sample suite, relative to the data directory."""
DEMO_DOCUMENTS = Path("demo") / "documents"


def chat_models(cache_dir: Path) -> list[str]:
    """Repo ids of the cached models that can generate text (sentence-transformers models left out)."""
    listing = list_cached_models(cache_dir)
    return sorted(m.repo_id for m in listing.models if not _is_embedding_model(m.path))


def _is_embedding_model(repo_path: Path) -> bool:
    return any((snapshot / "modules.json").exists() for snapshot in (repo_path / "snapshots").glob("*"))


def demo_suite(data_dir: Path) -> Path:
    """The sample suite of the demo workspace (it may not exist yet)."""
    return data_dir / DEMO_SUITE


def demo_documents(data_dir: Path) -> Path:
    """The demo documents folder of the workspace (it may not exist yet)."""
    return data_dir / DEMO_DOCUMENTS


class PlaygroundSession:
    """The chat engine and the Chroma client the Playground's tabs share, opened on first use.

    Call `engine()` and `client()` from worker threads (they import and load heavy libraries).
    `lock` serialises generation: a chat turn and a suite run never use the loaded models at once.
    """

    def __init__(
        self, *, cache_dir: Path, client_factory: Callable[[], ClientAPI], endpoints: EndpointPolicy | None = None
    ) -> None:
        self.cache_dir = cache_dir
        self.endpoints = endpoints
        self.lock = threading.Lock()
        self._client_factory = client_factory
        self._client: ClientAPI | None = None
        self._engine: ChatEngine | None = None
        self._open = threading.RLock()

    def client(self) -> ClientAPI:
        """The Chroma client (embedded or HTTP, as the settings say)."""
        with self._open:
            if self._client is None:
                self._client = self._client_factory()
            return self._client

    def engine(self) -> ChatEngine:
        """The chat engine; local models stay loaded in it between turns."""
        from services.chat.session import ChatEngine

        with self._open:
            if self._engine is None:
                self._engine = ChatEngine(
                    cache_dir=self.cache_dir, rag_client_factory=self.client, endpoints=self.endpoints
                )
            return self._engine

    def close(self) -> None:
        """Free the loaded models."""
        with self._open:
            engine, self._engine = self._engine, None
        if engine is not None:
            engine.close()


ASSERT_KINDS: list[tuple[str, str]] = [
    ("answer contains the text (icontains)", "icontains"),
    ("answer similar to the text (similar)", "similar"),
    ("answer equals the text (equals)", "equals"),
]
"""The assertions a saved exchange can carry: (label, kind)."""
SIMILAR_THRESHOLD = 0.8


@dataclass(frozen=True)
class CaseRequest:
    """An exchange to append to a suite as a case."""

    suite: Path
    name: str
    question: str
    kind: str
    """One of the kinds in `ASSERT_KINDS`."""
    expected: str


def save_case(request: CaseRequest) -> None:
    """Append the exchange to its suite file as a case with one assertion (comments in the file kept)."""
    from services.evals.edit import append_case

    if not request.name:
        raise UsageError("the case needs a name", hint="type one in the case name field")
    if request.kind == "similar":
        asserts = [{"type": "similar", "threshold": SIMILAR_THRESHOLD}]
        append_case(
            request.suite, name=request.name, question=request.question, reference=request.expected, asserts=asserts
        )
        return
    asserts = [{"type": request.kind, "value": request.expected}]
    append_case(request.suite, name=request.name, question=request.question, reference=None, asserts=asserts)


def variant_of(values: dict[str, Any]) -> Variant:
    """The variant the Playground's form describes; UsageError naming the first bad field."""
    from pydantic import ValidationError

    try:
        return Variant.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or values.get("name", "variant")
        raise UsageError(f"variant {values.get('name')}: {where}: {first['msg']}") from None
