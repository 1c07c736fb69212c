"""Findings as CI systems annotate them: a level, a title, a message, a place.

The CI renderers (``github``, ``azure``) share one signature,
:data:`CIRender`: the report, the path of ``poetry.lock`` as the CI system
should show it and the line of each package's entry in it
(:func:`poetry_env_audit.lockfile.package_lines`).
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import replace
from typing import TYPE_CHECKING

from packaging.utils import canonicalize_name

from poetry_env_audit.controls import replace_controls
from poetry_env_audit.findings import EnvKind
from poetry_env_audit.findings import Verdict
from poetry_env_audit.policy import PolicyAction
from poetry_env_audit.values import StrEnum

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Protocol

    from poetry_env_audit.findings import EnvFinding
    from poetry_env_audit.findings import Finding
    from poetry_env_audit.findings import Remedy
    from poetry_env_audit.report import Report

    class CIRender(Protocol):
        def __call__(
            self,
            report: Report,
            *,
            lock_path: str | None,
            lock_lines: Mapping[str, int],
        ) -> str: ...


class Level(StrEnum):
    """How a CI system shows a finding."""

    ERROR = "error"
    WARNING = "warning"
    NOTICE = "notice"


#: Environment findings that are information about the setting, not a problem.
NOTICE_KINDS = frozenset({EnvKind.SHARED, EnvKind.NOT_ISOLATED})


def level_of(policy: PolicyAction | None, kind: EnvKind | None = None) -> Level | None:
    """``block`` is an error, ``serialise``/``warn`` a warning, ``off`` nothing.

    The environment findings in :data:`NOTICE_KINDS` are notices unless their
    policy blocks (``not-isolated`` has no policy at all and is always a notice).
    """
    if policy is PolicyAction.BLOCK:
        return Level.ERROR
    if kind in NOTICE_KINDS:
        return Level.NOTICE if policy is not PolicyAction.OFF else None
    if policy in (PolicyAction.SERIALISE, PolicyAction.WARN):
        return Level.WARNING
    return None


@dataclass(frozen=True)
class Annotation:
    """One finding as a CI system shows it; every field is still unescaped data."""

    level: Level
    title: str
    message: str
    file: str | None = None
    line: int | None = None


def _remedy_lines(remedies: tuple[Remedy, ...]) -> list[str]:
    return [
        f"Way out: {r.title}: {r.command}" if r.command else f"Way out: {r.title}"
        for r in remedies
    ]


def _finding_annotation(
    finding: Finding, level: Level, lock_path: str | None, lock_lines: Mapping[str, int]
) -> Annotation:
    what = {
        Verdict.BREAKS: "breaks Poetry",
        Verdict.UNVERIFIED: "cannot be checked against Poetry's requirements",
    }.get(finding.verdict, "changes Poetry's environment")
    requirers = [r for r in finding.required_by if not r.satisfied] or list(
        finding.required_by
    )
    lines = [f"{finding.detail}."]
    lines.extend(f"Required by: {r.describe()}" for r in requirers)
    policy = finding.policy.value if finding.policy is not None else "-"
    lines.append(f"Policy: {finding.kind} = {policy}")
    lines.extend(_remedy_lines(finding.remedies))
    # An overwrite is in the lock as the wheel that writes it, not as the owner.
    locked = canonicalize_name(finding.by or finding.package)
    line = lock_lines.get(locked) if lock_path else None
    return Annotation(
        level=level,
        title=f"env-audit: {finding.package} {what}",
        message="\n".join(lines),
        file=lock_path,
        line=line,
    )


def _env_annotation(finding: EnvFinding, level: Level) -> Annotation:
    lines = [finding.message]
    if finding.policy is not None:
        lines.append(f"Policy: {finding.kind} = {finding.policy.value}")
    lines.extend(_remedy_lines(finding.remedies))
    return Annotation(
        level=level, title=f"env-audit: {finding.kind}", message="\n".join(lines)
    )


def _printable(note: Annotation) -> Annotation:
    """Title and message without control characters but line breaks (escaped later)."""
    return replace(
        note,
        title=replace_controls(note.title, keep="\t\n\r"),
        message=replace_controls(note.message, keep="\t\n\r"),
    )


def annotations_of(
    report: Report, *, lock_path: str | None, lock_lines: Mapping[str, int]
) -> tuple[Annotation, ...]:
    """One annotation per finding that deserves one, package findings first.

    A package finding points at the package's entry in ``poetry.lock`` when
    the lock path is known (at the file only when the entry is not found);
    environment findings point at no file. Control characters other than line
    breaks and tabs in the title and the message become U+FFFD (no terminal
    sequence from data in an annotation); the file path is kept as it is, and
    every CI renderer escapes all of it.
    """
    out: list[Annotation] = []
    for finding in report.findings:
        level = level_of(finding.policy)
        if level is not None:
            out.append(_finding_annotation(finding, level, lock_path, lock_lines))
    for env in report.environment:
        level = level_of(env.policy, env.kind)
        if level is not None:
            out.append(_env_annotation(env, level))
    return tuple(_printable(n) for n in out)
