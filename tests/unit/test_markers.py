"""The cost markers follow what a test uses through the code, not what its names look like.

The samples sit in a class: the markers do not look into classes, so these tests stay unmarked.
"""

from __future__ import annotations

from services.finetune import jobs
from tests import markers
from tests.testbed import read_testbed


def reads_the_testbed() -> object:
    return read_testbed()


class Samples:
    @staticmethod
    def through_a_helper() -> object:
        return reads_the_testbed()

    @staticmethod
    def launches_a_trainer(folder: object) -> object:
        return jobs.launch(folder)  # type: ignore[arg-type]

    @staticmethod
    def only_named_like_one() -> object:
        def read_testbed() -> None:  # a local of the same name is not the test bed
            return None

        return read_testbed()


def test_helpers_in_tests_are_followed() -> None:
    assert "tests.testbed:read_testbed" in markers.reached(Samples.through_a_helper)  # type: ignore[arg-type]


def test_module_attributes_are_resolved() -> None:
    assert "services.finetune.jobs:launch" in markers.reached(Samples.launches_a_trainer)  # type: ignore[arg-type]


def test_a_name_alone_earns_nothing() -> None:
    assert not markers.reached(Samples.only_named_like_one) & markers.COSTS["testbed"]  # type: ignore[arg-type]
