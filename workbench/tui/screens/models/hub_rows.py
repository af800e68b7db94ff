"""What the Hub tab shows: its filters, a result row, the results line and the download question."""

from __future__ import annotations

from dataclasses import dataclass

from services.fit import FitEstimate, Workload, estimate_on_host
from services.gpu import Gpu
from services.hub.details import ModelDetails
from services.hub.download import DownloadResult
from services.hub.search import SortKey
from services.units import human_bytes

TASKS = (
    "text-generation",
    "text2text-generation",
    "text-classification",
    "token-classification",
    "feature-extraction",
    "sentence-similarity",
    "summarization",
    "translation",
    "question-answering",
    "fill-mask",
    "automatic-speech-recognition",
    "text-to-image",
    "image-classification",
)
LIBRARIES = ("transformers", "sentence-transformers", "peft", "gguf", "diffusers", "safetensors", "mlx", "timm")
LICENCES = ("apache-2.0", "mit", "llama3", "llama3.1", "gemma", "cc-by-4.0", "cc-by-nc-4.0", "openrail", "other")
SORTS: tuple[SortKey, ...] = ("downloads", "likes", "trending", "modified")
COLUMNS = ("Model", "Task", "Downloads", "Likes", "Params", "Licence", "Gated", "Updated")


@dataclass(frozen=True)
class SearchQuery:
    """What the search box and the filters ask for."""

    text: str = ""
    task: str | None = None
    library: str | None = None
    license: str | None = None
    gated: bool | None = None
    sort: SortKey = "downloads"


def results_line(count: int, exhausted: bool) -> str:
    if not count:
        return "no models match"
    more = "" if exhausted else " · more load when the cursor reaches the end"
    return f"{count} model{'s' if count != 1 else ''}{more}"


def fit_for(details: ModelDetails, workload: Workload, gpus: list[Gpu] | None) -> FitEstimate | None:
    return estimate_on_host(details.config, details.params, workload, gpus=gpus)


def download_question(details: ModelDetails, free: int, cache: str) -> str:
    chosen = sum(f.selected for f in details.files)
    return (
        f"{details.id} @ {details.sha[:12]}\n\n"
        f"download   {human_bytes(details.download_bytes)} ({chosen} of {len(details.files)} files)\n"
        f"free disk  {human_bytes(free)} at {cache}\n\n"
        "Files already in the cache are skipped; an interrupted download resumes."
    )


def download_line(r: DownloadResult) -> str:
    """What a finished download fetched, and how fast."""
    rate = r.fetched_bytes / r.seconds if r.seconds else 0.0
    return (
        f"{r.repo_id}: {len(r.files)} files, {human_bytes(r.fetched_bytes)} fetched "
        f"in {r.seconds:.1f} s ({human_bytes(rate)}/s)"
    )
