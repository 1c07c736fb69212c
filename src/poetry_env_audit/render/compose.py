"""The one composer of everything written for a format.

``poetry env-audit`` composes its report (:func:`compose`), the install guard
its lines (:func:`compose_lines`); both go through :func:`compose_lines`, so
a CI log gets the same form from either: the human text made inert
(:func:`guard_log`), the GitLab section around it, the GitHub
``::stop-commands::`` fence around it and the annotations after it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from poetry_env_audit.controls import replace_controls
from poetry_env_audit.render.formats import Format

if TYPE_CHECKING:
    from collections.abc import Mapping
    from collections.abc import Sequence

    from poetry_env_audit.report import Report


@dataclass(frozen=True)
class Chunk:
    """A piece of output: cleo markup, or ``raw`` text written as is.

    ``annotations`` marks the CI system's per-finding commands, which the
    guard writes to stdout while its other lines go to stderr.
    """

    text: str
    raw: bool = False
    annotations: bool = False


_AZURE_COMMAND = re.compile(r"##(vso)?\[", re.IGNORECASE)


def guard_log(markup: str, fmt: Format) -> str:
    """The human report made inert for a CI log.

    Control characters (``\\r``, ``ESC``, ...) cannot reach the log, so no GitLab
    section marker or terminal sequence can come from data. Azure runs
    ``##vso[`` wherever it appears in a line, so that is broken up; GitHub
    gets the report between ``::stop-commands::`` and its token instead
    (see :func:`compose_lines`).
    """
    text = replace_controls(markup, keep="\t\n")
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

    ``json`` is the report alone; every other format is the text report as
    :func:`compose_lines` writes it for that format.
    """
    if fmt is Format.JSON:
        from poetry_env_audit.render.json import render as render_json

        return (Chunk(render_json(report), raw=True),)
    from poetry_env_audit.render.text import render as render_text

    return compose_lines(
        [render_text(report)],
        fmt,
        report,
        lock_path=lock_path,
        lock_lines=lock_lines,
        now=now,
        token=token,
    )


def compose_lines(
    lines: Sequence[str],
    fmt: Format | None,
    report: Report | None,
    *,
    lock_path: str | None = None,
    lock_lines: Mapping[str, int] | None = None,
    now: int | None = None,
    token: str | None = None,
) -> tuple[Chunk, ...]:
    """Human ``lines`` (cleo markup) as ``fmt`` wants them.

    Text (or no CI format) keeps them as they are. A CI format makes them
    inert for the log (:func:`guard_log`); with a ``report`` it adds the CI
    system's own form: the GitLab section around them, GitHub's
    ``::stop-commands::TOKEN`` ... ``::TOKEN::`` fence around them and one
    annotation per finding after them (Azure: the annotations only). Without
    a report (the guard's no-op notice) there is nothing to annotate.
    ``token`` is random and ``now`` the clock unless given (golden tests).
    """
    if fmt is None or fmt in (Format.TEXT, Format.JSON):
        return tuple(Chunk(line) for line in lines)
    body = [Chunk(guard_log(line, fmt)) for line in lines]
    if report is None:
        return tuple(body)
    if fmt is Format.GITLAB:
        from poetry_env_audit.render import gitlab

        if not body:
            return ()
        stamp = gitlab.timestamp(now)
        return (
            Chunk(gitlab.section_start(report, stamp), raw=True),
            *body,
            Chunk(gitlab.section_end(stamp), raw=True),
        )
    chunks = body
    found = lock_lines or {}
    if fmt is Format.GITHUB:
        from poetry_env_audit.render import github

        if body:
            stop = token or github.new_token()
            chunks = [
                Chunk(github.stop_commands(stop), raw=True),
                *body,
                Chunk(github.resume_commands(stop), raw=True),
            ]
        notes = github.render(report, lock_path=lock_path, lock_lines=found)
    else:
        from poetry_env_audit.render import azure

        notes = azure.render(report, lock_path=lock_path, lock_lines=found)
    if notes:
        chunks.append(Chunk(notes, raw=True, annotations=True))
    return tuple(chunks)
