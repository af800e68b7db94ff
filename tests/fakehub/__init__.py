"""A local fake of the Hugging Face Hub HTTP API, driven through the real `huggingface_hub` client."""

from .cdn import CdnRequest, RecordingCdn
from .repos import (
    HubFile,
    Repo,
    big_file_repo,
    dup_weights_files,
    folder_files,
    synthetic_repos,
    tiny_llama_files,
)
from .server import FakeHub
from .tampering import Tampering
from .wire import HubError, RecordedRequest

__all__ = [
    "CdnRequest",
    "FakeHub",
    "HubError",
    "HubFile",
    "RecordedRequest",
    "RecordingCdn",
    "Repo",
    "Tampering",
    "big_file_repo",
    "dup_weights_files",
    "folder_files",
    "synthetic_repos",
    "tiny_llama_files",
]
