"""The install guard's messages: one line each, except the refusal.

:func:`report_lines` is everything the guard says about a report, in order;
the other functions are the single lines it writes on its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from poetry_env_audit.findings import EnvKind
from poetry_env_audit.findings import Verdict
from poetry_env_audit.policy import PolicyAction
from poetry_env_audit.render.text import escape
from poetry_env_audit.render.text import remedies
from poetry_env_audit.report import RunVerdict

if TYPE_CHECKING:
    from collections.abc import Sequence

    from poetry_env_audit.findings import EnvFinding
    from poetry_env_audit.findings import Finding
    from poetry_env_audit.ownership import Collision
    from poetry_env_audit.report import Report
    from poetry_env_audit.target import TargetEnvironment

PREFIX = "poetry-env-audit"


def flat(text: str) -> str:
    """Data on one line, escaped for cleo markup."""
    return escape(" ".join(text.split()))


def _versions(finding: Finding) -> str:
    if finding.current and finding.planned and finding.current != finding.planned:
        return f"{finding.current} -> {finding.planned}"
    return finding.planned or finding.current or "?"


def _why(finding: Finding) -> str:
    if finding.verdict is Verdict.UNVERIFIED or finding.by:
        return finding.detail
    broken = [r for r in finding.required_by if not r.satisfied]
    shown = broken or list(finding.required_by)
    return "; ".join(r.describe() for r in shown[:3]) or "Poetry needs it"


def report_lines(report: Report, *, dry_run: bool) -> list[str]:
    """What the guard says about ``report``: warnings, serialise notes, the refusal."""
    blocking = report.verdict is RunVerdict.BLOCK
    lines: list[str] = []
    for env in report.environment:
        if env.policy is PolicyAction.WARN:
            if env.kind is EnvKind.SHARED:
                if not blocking:  # else the refusal says it already
                    lines.append(notice(report.poetry.version, report.target))
            else:
                lines.append(env_warning(env))
    lines.extend(warning(f) for f in report.findings if f.policy is PolicyAction.WARN)
    if blocking:
        lines.append(blocked(report, dry_run=dry_run))
    else:
        lines.extend(
            serialised(f, dry_run=dry_run)
            for f in report.findings
            if f.policy is PolicyAction.SERIALISE
        )
    return lines


def notice(version: str, target: TargetEnvironment) -> str:
    return (
        f"<comment>{PREFIX}: Poetry {flat(version)} shares the environment"
        f" it installs into ({flat(target.path)}, {flat(target.reason)}); the packages"
        " it runs on are guarded.</comment>"
    )


def serialised(finding: Finding, *, dry_run: bool = False) -> str:
    verb = "would serialise" if dry_run else "serialising"
    if finding.by:
        return (
            f"<comment>{PREFIX}: {verb} {flat(finding.by)}: {flat(finding.detail)};"
            " it is installed after all other operations, alone.</comment>"
        )
    return (
        f"<comment>{PREFIX}: {verb} {flat(finding.package)} {flat(_versions(finding))}"
        f" ({flat(_why(finding))}): Poetry runs on it, so it is swapped after all other"
        " operations, alone.</comment>"
    )


def warning(finding: Finding) -> str:
    return (
        f"<warning>{PREFIX}: {flat(finding.package)} {flat(_versions(finding))}"
        f" ({finding.action.value}) {_verb(finding)}:"
        f" {flat(_why(finding))}.</warning>"
    )


def _verb(finding: Finding) -> str:
    if finding.verdict is Verdict.UNVERIFIED:
        return "is unverified"
    return f"{finding.verdict.value} Poetry"


def env_warning(finding: EnvFinding) -> str:
    return f"<warning>{PREFIX}: {flat(finding.message)}</warning>"


def blocked(report: Report, *, dry_run: bool = False) -> str:
    target = report.target
    lead = "would refuse" if dry_run else "refusing"
    lines = [
        f"<error>{PREFIX}: {lead} to run this install: it would break Poetry"
        f" {flat(report.poetry.version)}, which runs from the target environment"
        f" {flat(target.path)} ({flat(target.reason)}).</error>"
    ]
    for finding in report.findings:
        if finding.policy is PolicyAction.BLOCK:
            lines.append(
                f"  {flat(finding.package)} {flat(_versions(finding))}"
                f" ({finding.action.value}): {flat(_why(finding))}"
            )
    for env in report.environment:
        if env.policy is PolicyAction.BLOCK:
            lines.append(f"  {flat(env.message)}")
    fixes = remedies(report)
    if fixes:
        lines.append("Ways out:")
        lines.extend(fixes)
    if not dry_run:
        lines.append(
            "Nothing was installed, removed or written."
            " `poetry env-audit` shows the full report."
        )
    return "\n".join(lines)


def externally_managed(path: str, marker: str, *, refused: bool = True) -> str:
    if refused:
        return (
            f"<error>{PREFIX}: refusing to install into {flat(path)}: it is externally"
            f" managed (PEP 668). {flat(marker)}</error>\n"
            "Let Poetry create a virtualenv (`poetry config virtualenvs.create true"
            " --local`), or opt out with POETRY_ENV_AUDIT_EXTERNALLY_MANAGED=warn."
        )
    return (
        f"<warning>{PREFIX}: {flat(path)} is externally managed (PEP 668);"
        f" installing anyway as configured. {flat(marker)}</warning>"
    )


def audit_error(error: BaseException) -> str:
    """An error the user can act on (configuration, lock): one line."""
    return f"<error>{PREFIX}: {flat(str(error))}</error>"


def comment(text: str) -> str:
    return f"<comment>{PREFIX}: {flat(text)}</comment>"


def missing_seam(seam: str, fallback: str) -> str:
    return f"<warning>{PREFIX}: this Poetry lacks {seam}; {fallback}.</warning>"


def unguarded(*, strict: bool) -> str:
    return (
        f"<warning>{PREFIX}: this Poetry gives the plugin no installer"
        " (InstallerCommand._installer), so this command is NOT guarded"
        f"{'; strict mode stops here' if strict else ''}.</warning>"
    )


def internal_error(error: BaseException, *, strict: bool) -> str:
    what = flat(f"{type(error).__name__}: {error}")
    if strict:
        return (
            f"<error>{PREFIX}: internal error ({what}); strict mode stops here.</error>"
        )
    return (
        f"<warning>{PREFIX}: internal error ({what}); Poetry carries on without the"
        " guard.</warning>"
    )


def internal_error_refused(error: BaseException, touched: Sequence[str]) -> str:
    """The plugin failed while deciding on changes to Poetry's own packages."""
    what = flat(f"{type(error).__name__}: {error}")
    names = flat(", ".join(touched[:5]) + (", ..." if len(touched) > 5 else ""))
    return (
        f"<error>{PREFIX}: internal error ({what}) while deciding on changes to"
        f" packages Poetry runs on ({names}); refusing them. To install anyway:"
        " POETRY_ENV_AUDIT_UNVERIFIED=warn, or --no-plugins.</error>"
    )


def _collision_text(found: Sequence[Collision]) -> tuple[str, str]:
    """What a wheel would overwrite, and the policy variable that lets it."""
    first = found[0]
    more = f" (and {len(found) - 1} more files)" if len(found) > 1 else ""
    if all(c.identical for c in found):
        what = "with the same bytes; its wheel is built during the install, too late to serialise it"
        key = "CHANGES"
    else:
        what = "with other content"
        key = "BREAKS"
    return f"{first.describe()}{more} {what}", key


def plain_collision(found: Sequence[Collision]) -> str:
    """One line, no markup: what a wheel would overwrite."""
    text, key = _collision_text(found)
    return (
        f"{text}, which Poetry runs on; to install it anyway:"
        f" POETRY_ENV_AUDIT_{key}=warn"
    )


def file_collision(found: Sequence[Collision], *, refused: bool) -> str:
    if refused:
        return f"<error>{PREFIX}: refusing to install {flat(plain_collision(found))}.</error>"
    text, _ = _collision_text(found)
    return (
        f"<warning>{PREFIX}: {flat(text)}, which Poetry runs on;"
        " installing anyway as configured.</warning>"
    )
