from __future__ import annotations

# CI output of the real Poetry commands: GitHub workflow commands, Azure
# logging commands and GitLab log sections, read from the log as a CI runner
# records it (stdout and stderr of one process, merged, as bytes).
import re
import subprocess
from typing import TYPE_CHECKING

import pytest

from harness.poetry import poetry_env
from harness.snapshot import installed_versions

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from harness.interpreters import Interpreter
    from harness.session import Projects

GITHUB = {"GITHUB_ACTIONS": "true"}
AZURE = {"TF_BUILD": "True"}
GITLAB = {"GITLAB_CI": "true"}
COMMANDS = ["install", "env-audit"]
BREAKING = "23.0"


def run_logged(
    interp: Interpreter, args: list[str], *, cwd: Path, env: Mapping[str, str]
) -> tuple[int, bytes]:
    """``python -m poetry ARGS`` with stderr merged into stdout: the CI log.

    Bytes, not text: universal newlines would turn GitLab's ``\\r`` into ``\\n``.
    """
    result = subprocess.run(
        [str(interp.python), "-m", "poetry", *args],
        cwd=cwd,
        env=poetry_env(interp, extra_env=env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        timeout=600,
        check=False,
    )
    return result.returncode, result.stdout


def lock_line(project: Path, name: str) -> int:
    """The 1-based line of ``name = "<name>"`` in the project's poetry.lock."""
    lines = (project / "poetry.lock").read_text(encoding="utf-8").splitlines()
    found = [n for n, line in enumerate(lines, 1) if line == f'name = "{name}"']
    assert len(found) == 1, found
    return found[0]


def lock_paths(project: Path) -> set[str]:
    """How an absolute lock path may be shown (as given, or resolved)."""
    return {str(project / "poetry.lock"), str(project.resolve() / "poetry.lock")}


def _unescape(text: str) -> str:
    for escaped, char in (("%0D", "\r"), ("%0A", "\n"), ("%3A", ":"), ("%2C", ",")):
        text = text.replace(escaped, char)
    return text.replace("%25", "%")


_COMMAND = re.compile(r"^::([a-z-]+)(?: ([^:]*))?::(.*)$")


def github_commands(log: str) -> tuple[list[tuple[str, dict[str, str], str]], str]:
    """The workflow commands GitHub's runner would act on, and the text it would
    not (between ``::stop-commands::TOKEN`` and ``::TOKEN::``)."""
    commands: list[tuple[str, dict[str, str], str]] = []
    stopped: list[str] = []
    token: str | None = None
    for line in log.splitlines():
        if token is not None:
            if line == f"::{token}::":
                token = None
            else:
                stopped.append(line)
            continue
        match = _COMMAND.match(line)
        if match is None:
            continue
        name, props, message = match.groups()
        if name == "stop-commands":
            token = message
            continue
        pairs = (p.partition("=") for p in (props or "").split(","))
        properties = {key: _unescape(value) for key, _, value in pairs if key}
        commands.append((name, properties, _unescape(message)))
    assert token is None, "::stop-commands:: never resumed"
    return commands, "\n".join(stopped)


def outside_sections(log: str) -> str:
    return re.sub(r"\x1b\[0Ksection_start:.*?section_end:[^\n]*", "", log, flags=re.S)


@pytest.mark.parametrize("command", COMMANDS)
def test_github_annotations_point_at_the_lock_entry(
    system_poetry: Interpreter, projects: Projects, command: str
) -> None:
    project = projects.locked("downgrade-breaks", system_poetry)
    current = installed_versions(system_poetry.site_packages())["packaging"]
    line = str(lock_line(project, "packaging"))
    workspaces = {
        "": lock_paths(project),  # outside any checkout: the absolute path
        str(project.parent): {f"{project.name}/poetry.lock"},
    }
    for workspace, files in workspaces.items():
        env = {**GITHUB, **({"GITHUB_WORKSPACE": workspace} if workspace else {})}
        code, raw = run_logged(system_poetry, [command], cwd=project, env=env)
        log = raw.decode()
        assert code == 1, log

        commands, stopped = github_commands(log)

        assert [(name, set(props)) for name, props, _ in commands] == [
            ("error", {"file", "line", "title"}),
            ("notice", {"title"}),
        ], log
        (_, error, message), (_, notice, _) = commands
        assert error["file"] in files, log
        assert error["line"] == line, log
        assert error["title"] == "env-audit: packaging breaks Poetry", log
        assert message.startswith(
            f"packaging would be downgraded ({current} -> {BREAKING}), but poetry"
            f" {system_poetry.poetry_version} requires packaging>="
        ), log
        assert "\nWay out: " in message, log
        assert notice["title"] == "env-audit: shared", log
        # The human report is in the log, where it cannot start a command.
        human = "refusing to run this install" if command == "install" else "Verdict"
        assert human in stopped, log
        assert "##vso[" not in log, log


def test_github_warning_for_a_serialised_swap(
    system_poetry: Interpreter, projects: Projects
) -> None:
    project = projects.locked("changes-in-place", system_poetry)
    line = str(lock_line(project, "shellingham"))
    code, raw = run_logged(system_poetry, ["install"], cwd=project, env=GITHUB)
    log = raw.decode()
    assert code == 0, log

    commands, stopped = github_commands(log)

    assert [(name, set(props)) for name, props, _ in commands] == [
        ("warning", {"file", "line", "title"}),
        ("notice", {"title"}),
    ], log
    (_, warning, _), (_, notice, _) = commands
    assert warning["file"] in lock_paths(project), log
    assert warning["line"] == line, log
    assert warning["title"] == "env-audit: shellingham changes Poetry's environment"
    assert notice["title"] == "env-audit: shared", log
    assert "poetry-env-audit: serialising shellingham" in stopped, log


@pytest.mark.parametrize("command", COMMANDS)
def test_azure_logs_one_issue_per_breaking_package(
    system_poetry: Interpreter, projects: Projects, command: str
) -> None:
    project = projects.locked("downgrade-breaks", system_poetry)
    line = lock_line(project, "packaging")
    code, raw = run_logged(system_poetry, [command], cwd=project, env=AZURE)
    log = raw.decode()
    assert code == 1, log

    issues = [ln for ln in log.splitlines() if "##vso[" in ln]

    assert len(issues) == 1, log
    match = re.fullmatch(
        r"##vso\[task\.logissue type=error;sourcepath=([^;]+);linenumber=(\d+);\]"
        r"env-audit: packaging breaks Poetry: packaging would be downgraded .*",
        issues[0],
    )
    assert match, log
    assert match.group(1) in lock_paths(project), log
    assert int(match.group(2)) == line, log
    assert not [ln for ln in log.splitlines() if ln.startswith("::")], log


@pytest.mark.parametrize("command", COMMANDS)
def test_gitlab_section_wraps_the_report(
    system_poetry: Interpreter, projects: Projects, command: str
) -> None:
    project = projects.locked("downgrade-breaks", system_poetry)
    current = installed_versions(system_poetry.site_packages())["packaging"]
    code, raw = run_logged(system_poetry, [command], cwd=project, env=GITLAB)
    log = raw.decode()
    assert code == 1, log

    sections = re.findall(
        r"\x1b\[0Ksection_start:(\d+):poetry_env_audit\[collapsed=true\]\r"
        r"\x1b\[0Kpoetry env-audit: block\n(.*?)"
        r"\x1b\[0Ksection_end:(\d+):poetry_env_audit\r\x1b\[0K\n",
        log,
        flags=re.S,
    )

    assert len(sections) == 1, repr(log)
    start, body, end = sections[0]
    assert start == end, repr(log)
    assert f"packaging {current} -> {BREAKING}" in body or (
        f"packaging  {current}" in body  # the env-audit table
    ), repr(log)
    lead = "poetry-env-audit: refusing" if command == "install" else "Verdict: block"
    assert lead in body, repr(log)
    rest = outside_sections(log)
    assert "section_" not in rest, repr(log)
    assert "packaging" not in rest, repr(log)
    assert "\x1b" not in body and "\r" not in body, repr(log)
    assert "##vso[" not in log and not re.search(r"^::", log, re.M), repr(log)


@pytest.mark.parametrize("command", COMMANDS)
def test_ci_output_off_writes_no_ci_syntax(
    system_poetry: Interpreter, projects: Projects, command: str
) -> None:
    project = projects.locked("downgrade-breaks", system_poetry)
    env = {**GITHUB, **AZURE, **GITLAB, "POETRY_ENV_AUDIT_CI_OUTPUT": "off"}
    code, raw = run_logged(system_poetry, [command], cwd=project, env=env)
    log = raw.decode()
    assert code == 1, log

    assert not re.search(r"^::", log, re.M), log
    assert "##vso[" not in log, log
    assert b"\x1b" not in raw and b"\r" not in raw, repr(log)
    human = "refusing to run this install" if command == "install" else "Verdict"
    assert human in log, log  # the text report itself is still there
