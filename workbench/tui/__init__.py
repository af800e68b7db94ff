"""The terminal app (Textual): the app shell, the command palette, widgets, and one screen package per mode."""
