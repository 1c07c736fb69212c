"""``poetry env-audit``: map options to the engine, a report to an exit code."""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING
from typing import ClassVar

from cleo.helpers import option
from poetry.console.commands.group_command import GroupCommand

from poetry_env_audit.render.formats import FORMATS
from poetry_env_audit.report import EXIT_ERROR

if TYPE_CHECKING:
    from poetry.poetry import Poetry

    from poetry_env_audit.render.formats import Format
    from poetry_env_audit.report import Report


class EnvAuditCommand(GroupCommand):
    name = "env-audit"
    description = (
        "Show what installing the lock would do to the packages Poetry itself runs on."
    )
    help = (
        "Compares what <c1>poetry install</c1> would change in the target environment"
        " with the packages Poetry and its plugins need, without changing anything.\n\n"
        "With <c1>--assume-shared</c1> or <c1>--poetry VERSION</c1> it judges the lock"
        " as a deploy image would see it (Poetry pip-installed next to the project),"
        " for pull requests and pre-commit.\n\n"
        "Exit codes: 0 nothing would be blocked, 1 at least one change would be blocked,"
        " 2 the audit could not run."
    )
    options: ClassVar[list] = [  # type: ignore[type-arg]
        *GroupCommand._group_dependency_options(),
        option("all-groups", None, "Include all dependency groups."),
        option(
            "extras",
            "E",
            "Extra sets of dependencies to include.",
            flag=False,
            multiple=True,
        ),
        option("all-extras", None, "Include all extras."),
        option(
            "sync",
            None,
            "Plan as <c1>poetry sync</c1> would (remove what the lock lacks).",
        ),
        option(
            "format",
            "f",
            f"Output format: {', '.join(FORMATS)} (default: text, and in GitHub"
            " Actions, GitLab CI or Azure Pipelines also that system's own form"
            " unless <c1>ci-output</c1> is off).",
            flag=False,
        ),
        option(
            "output",
            None,
            "Also write the JSON report to this file (for CI to archive).",
            flag=False,
        ),
        option(
            "assume-shared",
            None,
            "Judge the lock as if Poetry shared the target environment (the image"
            " recipe: Poetry pip-installed, <c1>virtualenvs.create false</c1>),"
            " whatever the real setup.",
        ),
        option(
            "poetry",
            None,
            "Judge against the environment <c1>pip install poetry==VERSION</c1>"
            " would make today (implies --assume-shared).",
            flag=False,
        ),
        option(
            "python",
            None,
            "With --poetry: the image's Python, X.Y or X.Y.Z (default: this one's).",
            flag=False,
        ),
        option(
            "index-url",
            None,
            "With --poetry: resolve Poetry's closure from this simple index"
            " (default: the project's sources).",
            flag=False,
        ),
        option(
            "with-plugin",
            None,
            "With --poetry: a plugin the image installs, NAME or NAME==VERSION.",
            flag=False,
            multiple=True,
        ),
    ]

    def handle(self) -> int:
        from poetry_env_audit.errors import AuditError

        try:
            return self._handle()
        except AuditError as error:
            self._fail(str(error))
            return EXIT_ERROR
        except Exception as error:
            if self.io.is_debug():
                raise
            self._fail(
                f"internal error: {type(error).__name__}: {error} (run with -vvv for details)"
            )
            return EXIT_ERROR

    def _fail(self, message: str) -> None:
        from poetry_env_audit.render.text import escape

        # Poetry's own messages (GroupNotFoundError...) carry cleo markup.
        plain = re.sub(r"</?[a-z][^<>]*>|</>", "", " ".join(message.split()))
        self.line_error(f"<error>env-audit: {escape(plain)}</error>")

    def _handle(self) -> int:
        from poetry_env_audit import ci
        from poetry_env_audit.assumed import assumption_from_options
        from poetry_env_audit.audit import AuditOptions
        from poetry_env_audit.audit import audit_project
        from poetry_env_audit.errors import AuditError
        from poetry_env_audit.policy import load_policy
        from poetry_env_audit.seams.command import install_flags
        from poetry_env_audit.seams.project import activated_groups
        from poetry_env_audit.seams.project import load_poetry
        from poetry_env_audit.seams.project import project_table

        raw_fmt = self.option("format")
        fmt = str(raw_fmt).strip().lower() if raw_fmt is not None else None
        if fmt is not None and fmt not in FORMATS:
            raise AuditError(
                f"unknown format {fmt!r} (choose from {', '.join(FORMATS)})."
            )
        if self.option("extras") and self.option("all-extras"):
            raise AuditError("--extras and --all-extras cannot be used together.")
        assumption = assumption_from_options(
            assume_shared=bool(self.option("assume-shared")),
            poetry=_text(self.option("poetry")),
            python=_text(self.option("python")),
            index_url=_text(self.option("index-url")),
            plugins=[str(p) for p in self.option("with-plugin") or []],
        )
        poetry = load_poetry(self)
        policy = load_policy(project_table(poetry), os.environ)  # type: ignore[arg-type]
        extras: list[str] = []
        if self.option("all-extras"):
            extras = [str(e) for e in poetry.package.extras]
        else:
            for value in self.option("extras") or []:
                extras.extend(value.split())
        options = AuditOptions(
            groups=activated_groups(self),
            extras=tuple(extras),
            sync=bool(self.option("sync")),
            flags=install_flags(self.io),
        )
        report = audit_project(poetry, self.io, options, policy, assumption)
        self._write(report, ci.choose_format(fmt, policy.ci_output, os.environ), poetry)
        return report.exit_code

    def _write(self, report: Report, fmt: Format, poetry: Poetry) -> None:
        """``--output`` first (a path that cannot be written is exit 2), then ``fmt``."""
        from poetry_env_audit import ci
        from poetry_env_audit.console import write_chunks
        from poetry_env_audit.render.compose import compose
        from poetry_env_audit.seams.project import project_dir

        if self.option("output"):
            from poetry_env_audit.render.json import render as render_json

            ci.write_report_file(str(self.option("output")), render_json(report) + "\n")
        lock = project_dir(poetry) / "poetry.lock"
        lock_path, lock_lines = ci.lock_lines_for(fmt, lock, os.environ)
        chunks = compose(report, fmt, lock_path=lock_path, lock_lines=lock_lines)
        write_chunks(self.io, chunks, stderr=False)


def _text(value: object) -> str | None:
    return None if value is None else str(value)
