"""JUnit XML for CI: one <testsuite> per variant, one <testcase> per case.

A failed assertion is a <failure> (message: the first failing assertion; text: all of them); an
answer that never came (endpoint down, model missing, timeout) is an <error>. Built with
xml.etree, so any JUnit reader (Jenkins, GitLab, GitHub reporters, junitparser) parses it.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from services.evals.runner import CaseResult, EvalRun

_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(text: str) -> str:
    """Text with the characters XML 1.0 forbids (control bytes a model may emit) replaced."""
    return _NOT_XML.sub("\ufffd", text)


def to_junit(run: EvalRun) -> str:
    """The run as a JUnit XML document (a <testsuites> root)."""
    name = Path(run.suite).stem
    root = ET.Element("testsuites", name=name, tests=str(len(run.results)))
    variants = list(dict.fromkeys(r.variant for r in run.results))
    for variant in variants:
        results = [r for r in run.results if r.variant == variant]
        root.append(_testsuite(name, variant, results, run.started))
    _totals(root)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _testsuite(suite: str, variant: str, results: list[CaseResult], started: str) -> ET.Element:
    element = ET.Element("testsuite", name=f"{suite}[{variant}]", timestamp=started, tests=str(len(results)))
    for result in results:
        element.append(_testcase(suite, result))
    _totals(element)
    return element


def _testcase(suite: str, result: CaseResult) -> ET.Element:
    answer = result.answer
    case = ET.Element("testcase", name=result.case, classname=f"{suite}.{result.variant}")
    case.set("time", f"{answer.latency_s:.3f}")
    if answer.error is not None:
        error = xml_text(answer.error)
        ET.SubElement(case, "error", message=error, type="BackendError").text = error
    elif result.failures:
        failure = ET.SubElement(case, "failure", message=xml_text(result.failures[0]), type="AssertionError")
        failure.text = xml_text("\n".join(result.failures))
    ET.SubElement(case, "system-out").text = xml_text(answer.text)
    return case


def _totals(element: ET.Element) -> None:
    cases = list(element.iter("testcase"))
    element.set("tests", str(len(cases)))
    element.set("failures", str(sum(c.find("failure") is not None for c in cases)))
    element.set("errors", str(sum(c.find("error") is not None for c in cases)))
    element.set("skipped", "0")
    element.set("time", f"{sum(float(c.get('time', 0)) for c in cases):.3f}")
