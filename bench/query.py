"""RAG query latency at 100k chunks.

A workbench collection (cosine HNSW, embedded Chroma) is filled with 100,000 precomputed 384-dim
embeddings (clustered random unit vectors, with documents and chunk metadata) through
`collection.add` in batches of the client's maximum batch size. Then 200 real questions are timed:

- `retrieve()`: embed the question with all-MiniLM-L6-v2 on the query runtime of the collection's
  recorded one (new collections get torch-bf16 or ONNX; questions then embed on ONNX unless its
  export fails; printed) and query top 4 (what the CLI, chat and suites call). Goal: p95 <= 28 ms
  (the figure before the ONNX runtime).
- peer: the same two steps with no workbench code, sentence-transformers' `model.encode` (torch)
  then `collection.query`.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from bench.common import report

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
CHUNKS, DIM, CLUSTERS = 100_000, 384, 256
QUESTIONS = [
    f"{q} {topic}?"
    for q in ("How do I", "Who approves", "Where is", "When does", "What limits")
    for topic in (
        "the GPU budget", "a release", "the registry", "fine-tuning", "the deploy server", "RAG datasets",
        "access to storage", "rollback", "the prompt suite", "adapters",
    )
] * 4  # fmt: skip


def fill(collection: object, batch: int) -> float:
    import numpy as np

    rng = np.random.default_rng(11)
    centres = rng.standard_normal((CLUSTERS, DIM)).astype(np.float32)
    started = time.perf_counter()
    for start in range(0, CHUNKS, batch):
        n = min(batch, CHUNKS - start)
        vectors = centres[rng.integers(0, CLUSTERS, n)] + 0.5 * rng.standard_normal((n, DIM)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        ids = [f"c{start + i}" for i in range(n)]
        metas = [{"source": f"/corpus/doc-{(start + i) // 8}.md", "chunk_index": (start + i) % 8} for i in range(n)]
        documents = [f"chunk {i}" for i in ids]
        collection.add(ids=ids, embeddings=vectors, documents=documents, metadatas=metas)  # type: ignore[attr-defined]
    return time.perf_counter() - started


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    from services.rag.chroma import persistent_client
    from services.rag.embeddings import load_embedder, preferred_runtime, query_runtime
    from services.rag.ingest import writable_collection
    from services.rag.query import retrieve

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        client = persistent_client(root / "chroma")
        embedder = load_embedder(MODEL, cache_dir=root / "hub", runtime=preferred_runtime())
        peer_model = load_embedder(MODEL, cache_dir=root / "hub", runtime="torch").model
        print(f"collection runtime: {embedder.runtime}; questions on {query_runtime(embedder.runtime)}", flush=True)
        collection = writable_collection(client, "bench", embedder, chunk_size=256, overlap=32)
        fill_s = fill(collection, client.get_max_batch_size())
        print(f"filled {collection.count()} chunks in {fill_s:.1f} s", flush=True)
        for question in QUESTIONS[:50]:  # warm up (and let the store settle after the fill)
            retrieve(client, "bench", question, k=4, cache_dir=root / "hub")
            peer_model.encode([question], show_progress_bar=False)
        ours, peer, search = [], [], []
        for question in QUESTIONS:
            started = time.perf_counter()
            hits = retrieve(client, "bench", question, k=4, cache_dir=root / "hub")
            ours.append(1000 * (time.perf_counter() - started))
            started = time.perf_counter()
            vector = peer_model.encode([question], show_progress_bar=False)
            encoded = time.perf_counter()
            collection.query(query_embeddings=vector, n_results=4, include=["documents", "metadatas", "distances"])
            peer.append(1000 * (time.perf_counter() - started))
            search.append(1000 * (time.perf_counter() - encoded))
            assert len(hits) == 4
    for name, q in (("p50", 0.5), ("p95", 0.95)):
        report(f"query latency {name} at 100k chunks", percentile(ours, q), percentile(peer, q), "ms",
               goal="p95 <= 28 ms, no regression", higher_is_better=False)  # fmt: skip
    p50, p95 = statistics.median(ours), percentile(ours, 0.95)
    print(f"retrieve() p50 {p50:.1f} ms, p95 {p95:.1f} ms (goal p95 <= 28 ms)")
    print(f"Chroma search alone: p50 {statistics.median(search):.1f} ms, p95 {percentile(search, 0.95):.1f} ms")


if __name__ == "__main__":
    main()
