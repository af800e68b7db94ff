"""An OpenAI-compatible chatbot over a fine-tuned model, answering from a Chroma collection (RAG)."""
