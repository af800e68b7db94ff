"""Helpers and constants shared by the chatbot tests."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path
from typing import Any

COLLECTION = "demo-docs"
DOCUMENTS = Path(__file__).resolve().parents[3] / "services" / "demo_data" / "documents"
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


class read_only:  # noqa: N801  (used as a context manager, like `open`)
    """`source` seen through a read-only bind mount when this process may mount (root), else chmod'ed."""

    def __init__(self, source: Path, mountpoint: Path) -> None:
        self.source, self.mountpoint, self.mounted = source, mountpoint, False

    def __enter__(self) -> Path:
        if os.geteuid() == 0 and _bind_read_only(self.source, self.mountpoint):
            self.mounted = True
            return self.mountpoint
        _chmod_tree(self.source, writable=False)
        return self.source

    def __exit__(self, *exc: object) -> None:
        if self.mounted:
            subprocess.run(["umount", str(self.mountpoint)], check=False)
        else:
            _chmod_tree(self.source, writable=True)


def _bind_read_only(source: Path, mountpoint: Path) -> bool:
    binds = subprocess.run(["mount", "--bind", str(source), str(mountpoint)], capture_output=True, check=False)
    if binds.returncode != 0:
        return False
    remount = ["mount", "-o", "remount,bind,ro", str(mountpoint)]
    if subprocess.run(remount, capture_output=True, check=False).returncode != 0:
        subprocess.run(["umount", str(mountpoint)], check=False)
        return False
    return True


def _chmod_tree(root: Path, *, writable: bool) -> None:
    for path in [root, *root.rglob("*")]:
        mode = path.stat().st_mode
        path.chmod(mode | 0o200 if writable else mode & ~0o222)
