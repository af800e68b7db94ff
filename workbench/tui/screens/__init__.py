"""One package per mode of the terminal app (`<mode>/screen.py` holds its screen), plus the shared `base`.

Screens are thin adapters from UI events to use cases; they reach the services through the app context."""
