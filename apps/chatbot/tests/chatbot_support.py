"""Helpers and constants shared by the chatbot tests."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

CANARY_KEY = "sk-canary-7f3a9c1e5b2d4f60a8e1c3b5d7f9a2c4"
"""The only accepted key in the tests: it must never appear in a log line or an answer."""
OTHER_KEY = "sk-other-0000000000000000000000000000"
CANARY_PROMPT = "canary-prompt-6d1f0b7e: what is the rollback procedure?"
"""A prompt that must not reach the logs unless prompt logging is switched on."""


def ask(question: str, **fields: Any) -> dict[str, Any]:
    """A chat-completions request body for one user question."""
    return {"model": "chatbot", "messages": [{"role": "user", "content": question}], **fields}


def tree_digest(root: Path) -> str:
    """A digest of every file's path, size, mtime and content under `root`."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        stat = path.stat()
        digest.update(f"{path.relative_to(root)}:{stat.st_size}:{stat.st_mtime_ns}".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()
