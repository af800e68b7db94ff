"""Shared pytest fixtures."""

from collections.abc import Iterator

import pytest

from tests.fakehub import FakeHub


@pytest.fixture
def fake_hub() -> Iterator[FakeHub]:
    """A running fake Hugging Face Hub on 127.0.0.1; pass `fake_hub.endpoint` to the client."""
    with FakeHub() as hub:
        yield hub
