"""``--format json``: one JSON object, documented in the README (JSON format)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING
from typing import Any

if TYPE_CHECKING:
    from poetry_env_audit.findings import EnvFinding
    from poetry_env_audit.findings import Finding
    from poetry_env_audit.findings import Remedy
    from poetry_env_audit.report import Report

SCHEMA_VERSION = 1


def _remedy(remedy: Remedy) -> dict[str, Any]:
    return {"title": remedy.title, "command": remedy.command}


def _finding(finding: Finding) -> dict[str, Any]:
    return {
        "package": finding.package,
        "current": finding.current,
        "planned": finding.planned,
        "action": finding.action.value,
        "verdict": finding.verdict.value,
        "policy": finding.policy.value if finding.policy else None,
        "required_by": [
            {
                "package": r.package,
                "version": r.version,
                "requirement": r.requirement,
                "satisfied": r.satisfied,
            }
            for r in finding.required_by
        ],
        "message": finding.detail,
        "remedies": [_remedy(r) for r in finding.remedies],
        "by": finding.by,
    }


def _env_finding(finding: EnvFinding) -> dict[str, Any]:
    return {
        "kind": finding.kind,
        "policy": finding.policy.value if finding.policy else None,
        "message": finding.message,
        "remedies": [_remedy(r) for r in finding.remedies],
    }


def _assumed(report: Report) -> dict[str, Any] | None:
    """What the report was judged against instead of the real setup (``null``:
    nothing was assumed)."""
    assumed = report.assumed
    if assumed is None:
        return None
    closure = assumed.closure
    if closure is None:
        return {"flags": assumed.flags, "poetry": None}
    return {
        "flags": assumed.flags,
        "poetry": closure.poetry,
        "python": closure.python,
        "plugins": list(closure.plugins),
        "sources": list(closure.sources),
        "resolved_at": closure.resolved_at,
        "cached": closure.cached,
        "closure": [
            {"package": p.display_name, "version": p.version} for p in closure.packages
        ],
    }


def to_dict(report: Report) -> dict[str, Any]:
    poetry = report.poetry
    target = report.target
    return {
        "schema": SCHEMA_VERSION,
        "project": report.project,
        "poetry": {
            "version": poetry.version,
            "python": poetry.python,
            "prefix": poetry.prefix,
            "base_prefix": poetry.base_prefix,
            "installation": poetry.installation.kind,
            "isolated": poetry.installation.isolated and not target.shared,
            "externally_managed": poetry.installation.externally_managed,
            "plugins": list(poetry.plugins),
            "needs": [
                {
                    "package": d.display_name,
                    "version": d.version,
                    "location": d.location,
                    "required_by": [
                        {
                            "package": r.package,
                            "version": r.version,
                            "requirement": r.requirement,
                        }
                        for r in d.required_by
                    ],
                }
                for d in poetry.needed
            ],
            "vendored": [
                {"package": v.name, "version": v.version, "location": v.location}
                for v in poetry.vendored
            ],
        },
        "target": {
            "path": target.path,
            "python": target.python,
            "kind": target.kind,
            "reason": target.reason,
            "shared": target.shared,
            "shared_paths": list(target.shared_dirs),
            "externally_managed": target.externally_managed is not None,
        },
        "sync": report.sync,
        "findings": [_finding(f) for f in report.findings],
        "environment": [_env_finding(e) for e in report.environment],
        "wheels": {
            "checked": report.wheels_checked,
            "unchecked": report.wheels_unchecked,
        },
        "verdict": report.verdict.value,
        "exit_code": report.exit_code,
        "assumed_shared": report.assumed is not None,
        "assumed": _assumed(report),
    }


def render(report: Report) -> str:
    return json.dumps(to_dict(report), indent=2, sort_keys=False)
