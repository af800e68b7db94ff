"""The Models mode: the screen, the Hub tab (search, details, download) and the Local tab (the HF cache)."""
