"""What the team's LLM apps share: API keys, body limits, JSON logs and Prometheus metrics, the
background load behind `/readyz`, error shapes, and the RAG prompt contract the workbench's
Playground uses too (so a deployed chatbot sees the prompts it was tried on)."""
