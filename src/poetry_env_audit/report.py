"""The result of one audit: an immutable value that renderers turn into text."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from poetry_env_audit.policy import PolicyAction
from poetry_env_audit.values import StrEnum

if TYPE_CHECKING:
    from poetry_env_audit.assumed import Assumed
    from poetry_env_audit.findings import EnvFinding
    from poetry_env_audit.findings import Finding
    from poetry_env_audit.plan import PlannedChange
    from poetry_env_audit.poetry_env import PoetryEnvironment
    from poetry_env_audit.target import TargetEnvironment


class RunVerdict(StrEnum):
    BLOCK = "block"
    SERIALISE = "serialise"
    WARN = "warn"
    OK = "ok"


EXIT_OK = 0
EXIT_BLOCK = 1
EXIT_ERROR = 2


@dataclass(frozen=True)
class Report:
    """Everything one audit found: the plan, the findings, the verdict and the ways
    out."""

    project: str | None
    poetry: PoetryEnvironment
    target: TargetEnvironment
    sync: bool
    changes: tuple[PlannedChange, ...]
    findings: tuple[Finding, ...]
    environment: tuple[EnvFinding, ...]
    verdict: RunVerdict
    #: What was assumed instead of looked at (``--assume-shared``, ``--poetry``).
    assumed: Assumed | None = None
    #: Ownership by file in ``poetry env-audit``: planned wheels whose files
    #: were checked against Poetry's (from Poetry's cache or a local file),
    #: and those that could not be without downloading or building.
    wheels_checked: int = 0
    wheels_unchecked: int = 0

    @property
    def exit_code(self) -> int:
        return EXIT_BLOCK if self.verdict is RunVerdict.BLOCK else EXIT_OK

    @property
    def blocking(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.policy is PolicyAction.BLOCK)
