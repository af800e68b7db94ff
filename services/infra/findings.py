"""What offline validation reports: findings (file, key, problem) and policy violations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from services.infra.policy import Violation

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Finding:
    """One problem found offline: where (file and key) and what."""

    severity: Severity
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.severity}: {self.where}: {self.message}"


@dataclass(frozen=True)
class ValidationReport:
    """Offline validation of one environment: findings and policy violations."""

    env: str
    findings: tuple[Finding, ...]
    violations: tuple[Violation, ...]

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors and not self.violations
