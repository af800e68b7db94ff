"""The command line: `main` is the click group; one module per command group, `output` for printers and prompts."""
