"""The install guard's messages: one line each, except the refusal."""

from __future__ import annotations

from typing import TYPE_CHECKING

from poetry_env_audit.render.text import escape
from poetry_env_audit.render.text import remedies

if TYPE_CHECKING:
    from poetry_env_audit.findings import EnvFinding
    from poetry_env_audit.findings import Finding
    from poetry_env_audit.report import Report

PREFIX = "poetry-env-audit"


def _flat(text: str) -> str:
    return escape(" ".join(text.split()))


def _versions(finding: Finding) -> str:
    if finding.current and finding.planned and finding.current != finding.planned:
        return f"{finding.current} -> {finding.planned}"
    return finding.planned or finding.current or "?"


def _why(finding: Finding) -> str:
    broken = [r for r in finding.required_by if not r.satisfied]
    shown = broken or list(finding.required_by)
    return "; ".join(r.describe() for r in shown[:3]) or "Poetry needs it"


def notice(report: Report) -> str:
    target = report.target
    return notice_for(report.poetry.version, target.path, target.reason)


def notice_for(version: str, path: str, reason: str) -> str:
    return (
        f"<comment>{PREFIX}: Poetry {_flat(version)} shares the environment"
        f" it installs into ({_flat(path)}, {_flat(reason)}); the packages"
        " it runs on are guarded.</comment>"
    )


def serialised(finding: Finding, *, dry_run: bool = False) -> str:
    verb = "would serialise" if dry_run else "serialising"
    return (
        f"<comment>{PREFIX}: {verb} {_flat(finding.package)} {_flat(_versions(finding))}"
        f" ({_flat(_why(finding))}): Poetry runs on it, so it is swapped after all other"
        " operations, alone.</comment>"
    )


def warning(finding: Finding) -> str:
    return (
        f"<warning>{PREFIX}: {_flat(finding.package)} {_flat(_versions(finding))}"
        f" ({finding.action.value}) {finding.verdict.value} Poetry:"
        f" {_flat(_why(finding))}.</warning>"
    )


def env_warning(finding: EnvFinding) -> str:
    return f"<warning>{PREFIX}: {_flat(finding.message)}</warning>"


def blocked(report: Report, *, dry_run: bool = False) -> str:
    target = report.target
    lead = "would refuse" if dry_run else "refusing"
    lines = [
        f"<error>{PREFIX}: {lead} to run this install: it would break Poetry"
        f" {_flat(report.poetry.version)}, which runs from the target environment"
        f" {_flat(target.path)} ({_flat(target.reason)}).</error>"
    ]
    for finding in report.findings:
        if finding.policy is not None and finding.policy.value == "block":
            lines.append(
                f"  {_flat(finding.package)} {_flat(_versions(finding))}"
                f" ({finding.action.value}): {_flat(_why(finding))}"
            )
    for env in report.environment:
        if env.policy is not None and env.policy.value == "block":
            lines.append(f"  {_flat(env.message)}")
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
            f"<error>{PREFIX}: refusing to install into {_flat(path)}: it is externally"
            f" managed (PEP 668). {_flat(marker)}</error>\n"
            "Let Poetry create a virtualenv (`poetry config virtualenvs.create true"
            " --local`), or opt out with POETRY_ENV_AUDIT_EXTERNALLY_MANAGED=warn."
        )
    return (
        f"<warning>{PREFIX}: {_flat(path)} is externally managed (PEP 668);"
        f" installing anyway as configured. {_flat(marker)}</warning>"
    )


def internal_error(error: BaseException, *, strict: bool) -> str:
    what = _flat(f"{type(error).__name__}: {error}")
    if strict:
        return (
            f"<error>{PREFIX}: internal error ({what}); strict mode stops here.</error>"
        )
    return (
        f"<warning>{PREFIX}: internal error ({what}); Poetry carries on without the"
        " guard.</warning>"
    )
