"""A suite's regex assertion runs against model output under a time limit (suites are not trusted)."""

import pytest
from pydantic import TypeAdapter

from services.chat.session import Answer
from services.evals.assertions import REGEX_TIMEOUT_S, Assertion, check


def answer(text: str) -> Answer:
    return Answer(text, "prompt", [], 0.1, 0.01, 3, 30.0)


def regex_assertion(pattern: str) -> Assertion:
    return TypeAdapter(Assertion).validate_python({"type": "regex", "value": pattern})


def no_embed(texts: object) -> list[list[float]]:
    raise AssertionError("not used")


@pytest.mark.timeout(30)
def test_catastrophic_pattern_is_a_failed_assertion_not_a_hang() -> None:
    failure = check(regex_assertion("^(a+)+$"), answer("a" * 40 + "b"), reference=None, embed=no_embed)
    assert failure is not None and failure.startswith('regex "^(a+)+$": ')


@pytest.mark.timeout(30)
def test_a_pattern_past_the_time_limit_fails_with_the_reason() -> None:
    # Fibonacci-many paths over 80 characters: no engine finishes this; only the limit ends it
    rule = regex_assertion("^(a|aa)+$")
    failure = check(rule, answer("a" * 80 + "b"), reference=None, embed=no_embed)
    assert failure is not None and failure.startswith('regex "^(a|aa)+$": ')
    assert f"stopped after {REGEX_TIMEOUT_S:g} s" in failure
