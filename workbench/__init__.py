"""LLM Workbench: the app shell (CLI entry, Textual app, settings, workspace store)."""
