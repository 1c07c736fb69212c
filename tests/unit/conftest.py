from __future__ import annotations

# Fixtures shared by the unit tests.
import os
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from poetry_env_audit.report import Report

#: Variables by which a CI system (or a terminal's wish) changes the output.
CI_VARIABLES = (
    "GITHUB_ACTIONS",
    "GITLAB_CI",
    "TF_BUILD",
    "CI",
    "GITHUB_WORKSPACE",
    "NO_COLOR",
)


@pytest.fixture(autouse=True)
def _no_outside_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """No unit test sees the CI system or a ``POETRY_ENV_AUDIT_*`` variable of
    the shell that runs it (``scripts/dev.py test`` sets
    ``POETRY_ENV_AUDIT_TEST_*``, which the plugin's policy rejects as unknown)."""
    for name in CI_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name in [v for v in os.environ if v.startswith("POETRY_ENV_AUDIT_")]:
        monkeypatch.delenv(name)


class _FakePoetry:
    def __init__(self, project: Path) -> None:
        self.pyproject_path = project / "pyproject.toml"


@pytest.fixture
def env_audit_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., tuple[int, str, str]]:
    """``run(report, ARGS, **environ)``: ``poetry env-audit ARGS`` through cleo's
    CommandTester, with the audit answering ``report`` and the environment given.

    Returns the exit code, stdout and stderr. The project has a ``poetry.lock``
    whose ``urllib3`` entry is on line 23.
    """
    from cleo.testers.command_tester import CommandTester

    from poetry_env_audit import audit
    from poetry_env_audit.command import EnvAuditCommand
    from poetry_env_audit.seams import project as seams_project

    project = tmp_path / "project"
    project.mkdir()
    lock_text = "\n" * 22 + '[[package]]\nname = "urllib3"\nversion = "3.0.0"\n'
    (project / "poetry.lock").write_text(lock_text, encoding="utf-8")
    for name in (v for v in os.environ if v.startswith("POETRY_ENV_AUDIT_")):
        monkeypatch.delenv(name)
    for name in CI_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(
        seams_project, "load_poetry", lambda command: _FakePoetry(project)
    )
    monkeypatch.setattr(seams_project, "project_table", lambda poetry: None)
    monkeypatch.setattr(
        seams_project, "activated_groups", lambda command: frozenset({"main"})
    )

    def run(report: Report, args: str = "", **environ: str) -> tuple[int, str, str]:
        monkeypatch.setattr(audit, "audit_project", lambda *args: report)
        for name, value in environ.items():
            monkeypatch.setenv(name, value)
        tester = CommandTester(EnvAuditCommand())
        code = tester.execute(args, decorated=False)
        return code, tester.io.fetch_output(), tester.io.fetch_error()

    return run
