"""Renderers: one module per output format, each a pure function of a Report.

``text`` and ``json`` take the report only. The CI formats (``github``,
``azure``, ``gitlab``) share one signature, :data:`CIRender`: they also get
the path of ``poetry.lock`` as the CI system should show it and the line of
each package's entry in it (:func:`poetry_env_audit.lockfile.package_lines`).

This module is imported when the command is registered: it only defines
values and pure functions, and imports the renderers when they are used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from dataclasses import replace
from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Protocol

    from poetry_env_audit.findings import EnvFinding
    from poetry_env_audit.findings import Finding
    from poetry_env_audit.findings import Remedy
    from poetry_env_audit.policy import PolicyAction
    from poetry_env_audit.report import Report

    class CIRender(Protocol):
        def __call__(
            self,
            report: Report,
            *,
            lock_path: str | None,
            lock_lines: Mapping[str, int],
        ) -> str: ...


class Format(str, Enum):
    TEXT = "text"
    JSON = "json"
    GITHUB = "github"
    AZURE = "azure"
    GITLAB = "gitlab"

    def __str__(self) -> str:
        return self.value

    @property
    def annotates(self) -> bool:
        """Whether the format writes one annotation per finding (needs the lock lines)."""
        return self in (Format.GITHUB, Format.AZURE)


FORMATS = tuple(f.value for f in Format)
CI_FORMATS = (Format.GITHUB, Format.AZURE, Format.GITLAB)


class Level(str, Enum):
    """How a CI system shows a finding."""

    ERROR = "error"
    WARNING = "warning"
    NOTICE = "notice"

    def __str__(self) -> str:
        return self.value


_NOT_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

#: Environment findings that are information about the setting, not a problem.
NOTICE_KINDS = frozenset({"shared", "not-isolated"})


def level_of(policy: PolicyAction | None, kind: str | None = None) -> Level | None:
    """``block`` is an error, ``serialise``/``warn`` a warning, ``off`` nothing.

    The environment findings in :data:`NOTICE_KINDS` are notices unless their
    policy blocks (``not-isolated`` has no policy at all and is always a notice).
    """
    value = policy.value if policy is not None else None
    if value == "block":
        return Level.ERROR
    if kind in NOTICE_KINDS:
        return Level.NOTICE if value != "off" else None
    if value in ("serialise", "warn"):
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


def canonical_name(name: str) -> str:
    """PEP 503 normalised name, the key of :func:`lockfile.package_lines`."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _remedy_lines(remedies: tuple[Remedy, ...]) -> list[str]:
    return [
        f"Way out: {r.title}: {r.command}" if r.command else f"Way out: {r.title}"
        for r in remedies
    ]


def _finding_annotation(
    finding: Finding, level: Level, lock_path: str | None, lock_lines: Mapping[str, int]
) -> Annotation:
    what = (
        "breaks Poetry"
        if finding.verdict.value == "breaks"
        else "changes Poetry's environment"
    )
    requirers = [r for r in finding.required_by if not r.satisfied] or list(
        finding.required_by
    )
    lines = [f"{finding.detail}."]
    lines.extend(f"Required by: {r.describe()}" for r in requirers)
    policy = finding.policy.value if finding.policy is not None else "-"
    lines.append(f"Policy: {finding.kind} = {policy}")
    lines.extend(_remedy_lines(finding.remedies))
    line = lock_lines.get(canonical_name(finding.package)) if lock_path else None
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
        title=_NOT_TEXT.sub("\N{REPLACEMENT CHARACTER}", note.title),
        message=_NOT_TEXT.sub("\N{REPLACEMENT CHARACTER}", note.message),
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


# ------------------------------------------------------------ the whole output


@dataclass(frozen=True)
class Chunk:
    """A piece of the command's output: cleo markup, or ``raw`` text written as is."""

    text: str
    raw: bool = False


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_AZURE_COMMAND = re.compile(r"##(vso)?\[", re.IGNORECASE)


def guard_log(markup: str, fmt: Format) -> str:
    """The human report made inert for a CI log.

    Control characters (``\\r``, ``ESC``, ...) cannot reach the log, so no GitLab
    section marker or terminal sequence can come from data. Azure runs
    ``##vso[`` wherever it appears in a line, so that is broken up; GitHub
    gets the report between ``::stop-commands::`` and its token instead
    (see :func:`compose`).
    """
    text = _CONTROL.sub("\N{REPLACEMENT CHARACTER}", markup)
    if fmt is Format.AZURE:
        text = _AZURE_COMMAND.sub(lambda m: f"# #{m[1] or ''}[", text)
    return text


def compose(
    report: Report,
    fmt: Format,
    *,
    lock_path: str | None = None,
    lock_lines: Mapping[str, int] | None = None,
    now: int | None = None,
    token: str | None = None,
) -> tuple[Chunk, ...]:
    """Everything ``poetry env-audit`` prints for ``fmt``, in order.

    ``text`` and ``json`` are the report alone. A CI format is the text report
    made inert for the log (:func:`guard_log`) plus the CI system's own form:
    GitHub and Azure annotations after the report, the GitLab section around
    it. GitHub ignores commands between ``::stop-commands::TOKEN`` and
    ``::TOKEN::``; ``token`` is random unless given (golden tests), and so is
    ``now`` the clock unless given.
    """
    if fmt is Format.JSON:
        from poetry_env_audit.render.json import render as render_json

        return (Chunk(render_json(report), raw=True),)
    from poetry_env_audit.render.text import render as render_text

    text = render_text(report)
    if fmt is Format.TEXT:
        return (Chunk(text),)
    text = guard_log(text, fmt)
    lines = lock_lines or {}
    if fmt is Format.GITLAB:
        from poetry_env_audit.render import gitlab

        stamp = gitlab.timestamp(now)
        return (
            Chunk(gitlab.section_start(report, stamp), raw=True),
            Chunk(text),
            Chunk(gitlab.section_end(stamp), raw=True),
        )
    if fmt is Format.GITHUB:
        from poetry_env_audit.render import github

        stop = token or github.new_token()
        chunks = [
            Chunk(github.stop_commands(stop), raw=True),
            Chunk(text),
            Chunk(github.resume_commands(stop), raw=True),
        ]
        notes = github.render(report, lock_path=lock_path, lock_lines=lines)
    else:
        from poetry_env_audit.render import azure

        chunks = [Chunk(text)]
        notes = azure.render(report, lock_path=lock_path, lock_lines=lines)
    if notes:
        chunks.append(Chunk(notes, raw=True))
    return tuple(chunks)
