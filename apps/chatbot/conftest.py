"""Makes the `chatbot` package importable for its tests without installing it."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
