"""Writing to Poetry's console: composed chunks, and the guard's buffered lines."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from poetry_env_audit.render.compose import compose_lines

if TYPE_CHECKING:
    from collections.abc import Iterable

    from cleo.io.io import IO

    from poetry_env_audit.render.compose import Chunk
    from poetry_env_audit.report import Report


def write_chunks(io: IO, chunks: Iterable[Chunk], *, stderr: bool) -> None:
    """Each chunk on its own line; with ``stderr`` all but the annotations go there."""
    from cleo.io.outputs.output import Type

    for chunk in chunks:
        kind = Type.RAW if chunk.raw else Type.NORMAL
        if stderr and not chunk.annotations:
            io.write_error_line(chunk.text, type=kind)
        else:
            io.write_line(chunk.text, type=kind)


class GuardConsole:
    """The guard's lines: on stderr, and in CI also in the CI system's own form.

    ``ci_output`` is the policy's ``ci-output`` (``auto`` or ``off``).
    """

    def __init__(self, io: IO) -> None:
        self.io = io

    def line(self, markup: str) -> None:
        """One line now (errors, and anything said before a report exists)."""
        self.io.write_error_line(markup)

    def lines(
        self, lines: Iterable[str], report: Report | None, *, ci_output: str
    ) -> None:
        """``lines`` composed for the detected CI system (annotations of ``report``
        on stdout), or as they are outside CI."""
        from pathlib import Path

        from poetry_env_audit import ci

        fmt = ci.auto_format(os.environ, ci_output)
        lock_path: str | None = None
        lock_lines: dict[str, int] = {}
        if fmt is not None and report is not None:
            lock = Path(report.project or ".") / "poetry.lock"
            lock_path, lock_lines = ci.lock_lines_for(fmt, lock, os.environ)
        chunks = compose_lines(
            list(lines), fmt, report, lock_path=lock_path, lock_lines=lock_lines
        )
        write_chunks(self.io, chunks, stderr=True)
