"""Helpers and constants shared by the classifier tests."""

from __future__ import annotations

CANARY_KEY = "sk-canary-3b8e1d6f0a2c4e5f7a9b1c3d5e7f9a0b"
"""The only accepted key in the tests: it must never appear in a log line or an answer."""
OTHER_KEY = "sk-other-1111111111111111111111111111"
CANARY_TEXT = "canary-text-4e2a9d: the service was great"
"""A text that must not reach the logs unless text logging is switched on."""
AUTH = {"Authorization": f"Bearer {CANARY_KEY}"}

POSITIVE = ["great service", "great model, great team", "this is great", "a great release"]
NEGATIVE = ["awful service", "awful model, awful team", "this is awful", "an awful release"]
