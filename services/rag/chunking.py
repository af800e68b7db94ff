"""Token-based chunking with LangChain's recursive splitter, counting tokens with the embedding
model's own tokenizer, so a chunk never exceeds what the model reads."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from services.errors import UsageError

if TYPE_CHECKING:
    from langchain_text_splitters import TextSplitter

    from services.rag.embeddings import Embedder


def check_sizes(chunk_size: int, overlap: int, *, max_tokens: int, model_id: str) -> None:
    """UsageError unless 0 <= overlap < chunk_size <= the model's input length."""
    if chunk_size < 1 or overlap < 0 or overlap >= chunk_size:
        raise UsageError(
            f"chunk size {chunk_size} with overlap {overlap} is not valid",
            hint="the overlap must be at least 0 and smaller than the chunk size",
        )
    if chunk_size > max_tokens:
        raise UsageError(
            f"chunk size {chunk_size} exceeds {model_id}'s input length of {max_tokens} tokens",
            hint=f"use a chunk size of {max_tokens} or less (longer chunks would be cut off when embedded)",
        )


def make_splitter(embedder: Embedder, *, chunk_size: int, overlap: int) -> TextSplitter:
    """A splitter whose chunks, with the model's special tokens added, fit its input length."""
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    check_sizes(chunk_size, overlap, max_tokens=embedder.max_tokens, model_id=embedder.model_id)
    budget = min(chunk_size, embedder.max_tokens - embedder.special_tokens)
    tokenizer: Any = embedder.tokenizer
    return RecursiveCharacterTextSplitter.from_huggingface_tokenizer(
        tokenizer, chunk_size=budget, chunk_overlap=min(overlap, budget - 1)
    )
