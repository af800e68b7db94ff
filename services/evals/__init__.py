"""Prompt suites: YAML cases with assertions, run against chat variants, stored, compared, JUnit for CI."""
