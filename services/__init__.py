"""Everything that does work. No Textual, no screens: usable from the CLI, the TUI, tests and scripts."""
