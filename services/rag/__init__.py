"""RAG collections on ChromaDB: load files, chunk by tokens, embed, store incrementally, retrieve.

Heavy libraries (chromadb, sentence-transformers, pypdf, bs4) load inside the functions that use them.
"""
