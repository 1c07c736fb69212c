"""``--format gitlab``: the text report in a collapsible GitLab CI log section.

GitLab's markers (docs.gitlab.com, "CI/CD job logs", custom collapsible
sections)::

    \\e[0Ksection_start:UNIX_TIME:SECTION_ID[collapsed=true]\\r\\e[0KHeader
    ...
    \\e[0Ksection_end:UNIX_TIME:SECTION_ID\\r\\e[0K

GitLab has no per-finding annotation in the log; the report itself is the
content (:func:`poetry_env_audit.render.compose.compose_lines` puts it between
the markers). The section id is reduced to ``[a-z0-9_]`` and the header is fixed
text, so no marker can come from data; the report inside the section holds
no control character (:func:`poetry_env_audit.render.compose.guard_log`), so it can
neither end the section nor start another one.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from poetry_env_audit.report import Report

SECTION_ID = "poetry_env_audit"
_ESC = "\x1b[0K"


def section_id(name: str) -> str:
    """``name`` as a section id GitLab accepts and cannot misread: ``[a-z0-9_]+``."""
    return re.sub(r"[^a-z0-9_]", "_", name.lower()) or "section"


def timestamp(now: int | None = None) -> int:
    if now is not None:
        return int(now)
    import time

    return int(time.time())


def header(report: Report) -> str:
    text = f"poetry env-audit: {report.verdict.value}"
    return re.sub(r"[^\x20-\x7e]", "?", text)


def section_start(
    report: Report, now: int, *, name: str = SECTION_ID, collapsed: bool = True
) -> str:
    options = "[collapsed=true]" if collapsed else ""
    return f"{_ESC}section_start:{int(now)}:{section_id(name)}{options}\r{_ESC}{header(report)}"


def section_end(now: int, *, name: str = SECTION_ID) -> str:
    return f"{_ESC}section_end:{int(now)}:{section_id(name)}\r{_ESC}"
