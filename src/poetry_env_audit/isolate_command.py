"""``poetry self isolate``: options to the steps of :mod:`poetry_env_audit.isolate_run`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING
from typing import ClassVar

from cleo.formatters.formatter import Formatter
from cleo.helpers import option
from poetry.console.commands.command import Command

if TYPE_CHECKING:
    from poetry_env_audit.isolate import Layout
    from poetry_env_audit.isolate_run import Plan

EXIT_REFUSED = 1
escape = Formatter.escape
PREFIX = "poetry-env-audit"


class SelfIsolateCommand(Command):
    name = "self isolate"
    description = (
        "Move the running Poetry into a virtual environment of its own"
        " (same interpreter, same versions, offline)."
    )
    help = (
        "Creates <c1>isolated-venv</c1> in Poetry's data directory from the base"
        " interpreter, copies Poetry, its dependencies and every plugin into it at"
        " their installed versions (from the installed files, never an index),"
        " checks that it starts, then points the <c1>poetry</c1> launcher at it."
        " The packages of the original environment stay where they are, so"
        " <c1>virtualenvs.create = false</c1> still installs into that interpreter"
        " without touching Poetry.\n\n<c1>--undo</c1> points the launcher back."
    )
    options: ClassVar[list] = [  # type: ignore[type-arg]
        option("undo", None, "Point the launcher back at the original Poetry."),
        option("dry-run", None, "Say what would be done; change nothing."),
    ]

    def handle(self) -> int:
        from poetry_env_audit.isolate import CannotIsolateError
        from poetry_env_audit.isolate import Layout
        from poetry_env_audit.seams.isolation import data_dir

        layout = Layout(os.path.realpath(data_dir()))
        try:
            if self.option("undo"):
                return self._undo(layout)
            return self._isolate(layout)
        except CannotIsolateError as refusal:
            what = "undo the isolation" if self.option("undo") else "isolate Poetry"
            text = escape(f"{PREFIX}: cannot {what}: {refusal}.")
            self.line_error(f"<error>{text}</error>")
            return EXIT_REFUSED

    def _isolate(self, layout: Layout) -> int:
        from poetry_env_audit import isolate_run
        from poetry_env_audit.isolate import Outcome
        from poetry_env_audit.poetry_env import inspect_poetry_environment

        own = inspect_poetry_environment()
        if self.option("dry-run"):
            outcome, plan, where = isolate_run.plan(own, layout)
            if outcome is Outcome.ALREADY or plan is None:
                self._say(f"Poetry is already isolated ({where}).")
                return 0
            self._describe(plan, own.installation.describe(), own.prefix)
            return 0
        with _exclusive(layout):
            outcome, plan, where = isolate_run.plan(own, layout)
            if outcome is Outcome.ALREADY or plan is None:
                self._say(f"Poetry is already isolated ({where}).")
                return 0
            isolate_run.isolate(plan)
        self._say(
            f"Poetry {plan.poetry} is isolated: {plan.launcher.path} now runs it from"
            f" {layout.venv} ({len(plan.dists)} distributions copied from the"
            " installed files, nothing downloaded)."
        )
        self._say(
            f"The packages in {own.prefix} stay where they are;"
            " `poetry self isolate --undo` points the launcher back."
        )
        return 0

    def _undo(self, layout: Layout) -> int:
        from poetry_env_audit import isolate_run

        if self.option("dry-run"):
            state = isolate_run.read_state(layout)
            if state is None:
                self._say("Poetry is not isolated by `poetry self isolate`.")
            else:
                self._say(
                    f"Would point {state.launcher} back at {state.original_prefix}"
                    f" and remove {layout.venv}. Nothing was changed (--dry-run)."
                )
            return 0
        with _exclusive(layout):
            message = isolate_run.undo(layout)
        self._say(message)
        # Last: this process may be running from it.
        isolate_run.remove_venv(layout)
        return 0

    def _say(self, text: str) -> None:
        """One line of plain text: paths and names are not cleo markup."""
        self.line(escape(text))

    def _describe(self, plan: Plan, installation: str, prefix: str) -> None:
        sources = sorted({d.source for d in plan.dists if not d.from_wheel})
        wheels = [d for d in plan.dists if d.from_wheel]
        scripts = sorted({s.name for d in plan.dists for s in d.scripts})
        skipped = sum(len(d.skipped) for d in plan.dists)
        layout = plan.layout
        self._say(
            f"Would isolate Poetry {plan.poetry}, which runs from {prefix}"
            f" ({installation}):"
        )
        for text in (
            f"create the virtual environment {layout.venv} from {plan.base_python}",
            f"copy {len(plan.dists)} distributions ({plan.files} files) from"
            f" {', '.join(sources)}, without an index:",
            "    " + ", ".join(d.describe for d in plan.dists),
            *(
                f"install {d.describe} (it has no RECORD) from Poetry's cache: {d.source}"
                for d in wheels
            ),
            f"write their console scripts ({', '.join(scripts)})"
            + (
                f"; {skipped} other files outside site-packages are left out"
                if skipped
                else ""
            ),
            "check that it imports Poetry and loads every plugin"
            + (f" ({', '.join(plan.plugins)})" if plan.plugins else ""),
            f"keep {plan.launcher.path} as {layout.backup} and point it at {layout.python}",
            f"record the state in {layout.state}",
        ):
            self._say(text if text.startswith("    ") else f"  - {text}")
        self._say("Nothing was changed (--dry-run).")


class _exclusive:  # noqa: N801 - a context manager, named as one is used
    """One ``poetry self isolate`` at a time per data directory."""

    def __init__(self, layout: Layout) -> None:
        self._path = layout.lock
        self._lock: object = None

    def __enter__(self) -> None:
        from filelock import FileLock
        from filelock import Timeout

        from poetry_env_audit.isolate import CannotIsolateError

        Path(self._path).parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(self._path, timeout=0)
        try:
            lock.acquire()
        except Timeout as error:
            raise CannotIsolateError(
                f"another `poetry self isolate` is running (lock {self._path})"
            ) from error
        self._lock = lock

    def __exit__(self, *exc: object) -> None:
        lock = self._lock
        if lock is not None:
            lock.release()  # type: ignore[attr-defined]
