"""The report a person reads in five seconds: header, table, remedies.

Returns cleo markup; every piece of data is escaped, so a package name or a
path can never open a style tag. Cleo drops the styling when the output is
not a terminal or ``NO_COLOR`` is set, as Poetry does for its own output.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from poetry_env_audit.controls import replace_controls
from poetry_env_audit.findings import EnvKind
from poetry_env_audit.findings import Verdict
from poetry_env_audit.policy import PolicyAction
from poetry_env_audit.target import TargetKind

if TYPE_CHECKING:
    from collections.abc import Sequence

    from poetry_env_audit.findings import Finding
    from poetry_env_audit.findings import Remedy
    from poetry_env_audit.report import Report

#: Beyond this many rows the table keeps the most important ones and counts the rest.
MAX_ROWS = 12
#: The table fits a terminal this wide: the "Required by" cell gets what is left.
WIDTH = 100
#: The least the "Required by" cell gets, however wide the other cells are.
MIN_REQUIRED_BY = 24
HEADERS = ("Package", "Poetry has", "Lock wants", "Action", "Required by", "Verdict")
VERDICT_STYLE = {
    Verdict.BREAKS: "error",
    Verdict.CHANGES: "warning",
    Verdict.UNVERIFIED: "error",
}
KIND_STYLE = {
    EnvKind.SHARED: "warning",
    EnvKind.EXTERNALLY_MANAGED: "warning",
    EnvKind.INCONSISTENT: "error",
}


def escape(text: str) -> str:
    """Cleo's escaping: a ``<`` can never start a tag, a trailing ``\\`` is kept."""
    text = re.sub(r"([^\\]?)<", "\\1\\<", text)
    return text + " " if text.endswith("\\") else text


def _one_line(text: str) -> str:
    """One line, no terminal control sequences from data."""
    return replace_controls(" ".join(text.split()))


_NOT_NAME = re.compile(r"[^A-Za-z0-9._-]")


def safe_name(name: str) -> str:
    """A distribution name as PEP 508 allows it; anything else becomes ``?``.

    A table row starts with the package name, and ``Name`` comes from metadata a
    package controls: no ``::`` or ``##[`` may start a CI command from there.
    """
    return _NOT_NAME.sub("?", name) or "?"


def header(report: Report) -> str:
    """The first line; with an assumption, the line that says what was assumed
    comes first."""
    first = _header(report)
    if report.assumed is None:
        return first
    return f"<comment>{escape(_one_line(report.assumed.describe()))}</comment>\n{first}"


def _header(report: Report) -> str:
    poetry, target = report.poetry, report.target
    where = escape(_one_line(target.path))
    why = escape(_one_line(target.reason))
    if target.shared:
        return (
            f"<error>Poetry {escape(poetry.version)} shares the target environment</error>"
            f" {where} ({why}): this install changes what Poetry runs on."
        )
    if target.kind is TargetKind.NEW_VENV:
        return (
            f"<info>Poetry {escape(poetry.version)} is isolated:</info> {why} at {where};"
            " nothing Poetry runs on is touched."
        )
    return (
        f"<info>Poetry {escape(poetry.version)} is isolated</info> from the target"
        f" environment {where} ({why}); nothing Poetry runs on is touched."
    )


def _required_by(finding: Finding, budget: int) -> str:
    """Who requires the package, unsatisfied requirers first, in ``budget``
    columns: as many as fit, then ``+N`` for the rest (the verdict line and
    ``--format json`` list them all)."""
    if not finding.required_by:
        return "-"
    shown = [r for r in finding.required_by if not r.satisfied] or list(
        finding.required_by
    )
    entries = [_one_line(f"{r.package} {r.version} ({r.requirement})") for r in shown]
    total = len(finding.required_by)
    # One requirer is always shown whole, however long: it says what breaks.
    text, used = entries[0], 1
    for entry in entries[1:2]:
        more = total - used - 1
        candidate = f"{text}, {entry}"
        if len(candidate) + (len(f" +{more}") if more > 0 else 0) > budget:
            break
        text, used = candidate, used + 1
    more = total - used
    return text + (f" +{more}" if more > 0 else "")


def table(findings: Sequence[Finding]) -> list[str]:
    fixed = [
        (
            safe_name(f.package),
            _one_line(f.current or "-"),
            _one_line(f.planned or "-"),
            f.action.value,
            f.verdict.value,
        )
        for f in findings
    ]
    others = [
        max(len(HEADERS[i]), *(len(r[k]) for r in fixed))
        for i, k in ((0, 0), (1, 1), (2, 2), (3, 3), (5, 4))
    ]
    budget = max(MIN_REQUIRED_BY, WIDTH - sum(others) - 2 * (len(HEADERS) - 1))
    rows = [(*r[:4], _required_by(f, budget), r[4]) for r, f in zip(fixed, findings)]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(HEADERS)]
    lines = [
        "  ".join(f"<b>{h.ljust(w)}</b>" for h, w in zip(HEADERS, widths)).rstrip()
    ]
    for row, finding in zip(rows, findings):
        cells = [escape(c.ljust(w)) for c, w in zip(row[:-1], widths)]
        style = VERDICT_STYLE[finding.verdict]
        cells.append(f"<{style}>{row[-1]}</{style}>")
        lines.append("  ".join(cells))
    return lines


def _remedy_line(remedy: Remedy) -> str:
    title = escape(_one_line(remedy.title))
    if remedy.command:
        return f"  - {title}:\n      <c1>{escape(_one_line(remedy.command))}</c1>"
    return f"  - {title}."


def remedies(report: Report) -> list[str]:
    """Each remedy once: the package-specific ones first, then the general ones."""
    seen: dict[Remedy, None] = {}
    counts: dict[Remedy, int] = {}
    for finding in report.findings:
        for remedy in finding.remedies:
            counts[remedy] = counts.get(remedy, 0) + 1
    for finding in report.findings:
        for remedy in finding.remedies:
            if counts[remedy] == 1 or len(report.findings) == 1:
                seen.setdefault(remedy, None)
    for finding in report.findings:
        for remedy in finding.remedies:
            seen.setdefault(remedy, None)
    for env in report.environment:
        if env.policy is not None and env.policy is not PolicyAction.OFF:
            for remedy in env.remedies:
                seen.setdefault(remedy, None)
    return [_remedy_line(r) for r in seen]


def _importance(finding: Finding) -> tuple[int, int, str]:
    direct = any(r.package == "poetry" for r in finding.required_by)
    return (
        finding.verdict is not Verdict.BREAKS,
        not (finding.package.lower() == "poetry" or direct),
        finding.package.lower(),
    )


def shown_findings(findings: Sequence[Finding]) -> tuple[list[Finding], list[Finding]]:
    """The rows to show, ``breaks`` first and Poetry's own requirements next,
    and the ones summarised in one line (big sync plans)."""
    ranked = sorted(findings, key=_importance)
    if len(ranked) <= MAX_ROWS:
        return ranked, []
    summarised = {id(f) for f in ranked[MAX_ROWS - 1 :]}
    return ranked[: MAX_ROWS - 1], [f for f in findings if id(f) in summarised]


def render(report: Report) -> str:
    lines = [header(report)]
    if report.findings:
        shown, rest = shown_findings(report.findings)
        lines.append("")
        lines.extend(table(shown))
        if rest:
            names = ", ".join(safe_name(f.package) for f in rest[:6]) + (
                ", ..." if len(rest) > 6 else ""
            )
            worst = (
                "breaks"
                if any(f.verdict is Verdict.BREAKS for f in rest)
                else "changes"
            )
            lines.append(
                f"... and {len(rest)} more ({escape(names)}): {worst}"
                " (all of them with --format json)"
            )
        lines.append("")
        for finding in shown:
            style = VERDICT_STYLE[finding.verdict]
            lines.append(
                f"<{style}>{finding.verdict.value}</{style}>:"
                f" {escape(_one_line(finding.detail))}."
            )
    elif report.target.shared:
        lines.append("The lock changes none of the packages Poetry runs on.")
    notes = [
        e
        for e in report.environment
        if e.kind is not EnvKind.SHARED and e.policy is not PolicyAction.OFF
    ]
    if notes:
        lines.append("")
        for env in notes:
            style = KIND_STYLE.get(env.kind, "comment")
            lines.append(
                f"<{style}>{env.kind}</{style}>: {escape(_one_line(env.message))}"
            )
    unchecked = unchecked_wheels(report)
    if unchecked:
        lines.append("")
        lines.append(f"<comment>{unchecked}</comment>")
    fixes = remedies(report)
    if fixes and (
        report.findings
        or report.target.shared
        or any(e.policy for e in report.environment)
    ):
        lines.append("")
        lines.append("<b>Ways out:</b>")
        lines.extend(fixes)
    lines.append("")
    lines.append(f"Verdict: <b>{report.verdict.value}</b>{_counts(report)}")
    return "\n".join(lines)


def unchecked_wheels(report: Report) -> str | None:
    """The one line on the planned wheels whose files were not checked."""
    count = report.wheels_unchecked
    if not count or not report.target.shared:
        return None
    total = count + report.wheels_checked
    wheels = "wheel" if count == 1 else "wheels"
    verb, its = ("is", "its") if count == 1 else ("are", "their")
    return (
        f"files: {count} planned {wheels} of {total} {verb} not in Poetry's cache,"
        f" so {its} files were not checked against Poetry's (nothing is"
        " downloaded); `poetry install` checks each wheel before it writes it"
    )


def _counts(report: Report) -> str:
    breaks = sum(1 for f in report.findings if f.verdict is Verdict.BREAKS)
    unverified = sum(1 for f in report.findings if f.verdict is Verdict.UNVERIFIED)
    changes = len(report.findings) - breaks - unverified
    parts = []
    if breaks:
        parts.append(f"{breaks} breaks")
    if unverified:
        parts.append(f"{unverified} unverified")
    if changes:
        parts.append(f"{changes} changes")
    return f" ({', '.join(parts)})" if parts else ""
