"""Presentation: service results as rows, text and JSON, shared by the CLI and the TUI (no Textual, no click)."""
