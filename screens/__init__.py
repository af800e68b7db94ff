"""One module per mode of the terminal app: thin adapters from UI events to service calls."""
