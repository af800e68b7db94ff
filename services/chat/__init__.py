"""Chat with local models (PEFT adapters unmerged) and OpenAI-compatible endpoints, with optional RAG."""
