"""The addresses `scripts/testbed up` wrote to STATE/testbed.json, for tests that use the real services.

Without the file a test skips on a developer machine and fails under CI=true, where the test bed
must have been started.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

STATE = Path(os.environ.get("WORKBENCH_TESTBED_DIR", "/var/lib/workbench-testbed"))


def read_testbed() -> dict[str, str]:
    path = STATE / "testbed.json"
    if not path.is_file():
        message = f"{path} missing: run `scripts/testbed up` first"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return dict(json.loads(path.read_text()))
