from __future__ import annotations

# The composite Action's own scripts (action.yml), run here with bash the way
# the runner would run them: the install step (a venv under $RUNNER_TEMP with
# Poetry and this repository, pip pointed at the local index) and the check
# step, whose GitHub annotations must land on poetry.lock. setup-python is
# the runner's part: the base Python stands in for its python-path output.
import re
import subprocess
from typing import TYPE_CHECKING
from typing import Any

import pytest

from harness.poetry import offline_home_env
from harness.projects import REPO_ROOT
from harness.wheels import python_minor

if TYPE_CHECKING:
    from pathlib import Path

    from harness.interpreters import Interpreter
    from harness.session import Harness
    from harness.session import Projects

EXPRESSION = re.compile(r"\$\{\{\s*([^}]+?)\s*\}\}")


def _steps() -> list[dict[str, Any]]:
    yaml = pytest.importorskip("yaml")
    action = yaml.safe_load((REPO_ROOT / "action.yml").read_text(encoding="utf-8"))
    steps: list[dict[str, Any]] = action["runs"]["steps"]
    return steps


def _expand(text: str, context: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match[1]
        if name not in context:
            pytest.fail(f"action.yml uses {name}, which this test does not provide")
        return context[name]

    return EXPRESSION.sub(value, text)


def _run_step(
    step: dict[str, Any], context: dict[str, str], base_env: dict[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    assert step["shell"] == "bash"
    env = dict(base_env)
    env.update({k: _expand(str(v), context) for k, v in step.get("env", {}).items()})
    where = cwd / _expand(step.get("working-directory", "."), context)
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
        cwd=where,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def test_action_installs_poetry_and_annotates_the_lock(
    isolated_poetry: Interpreter,
    projects: Projects,
    local_index: str,
    harness: Harness,
    poetry_version: str,
    tmp_path: Path,
) -> None:
    steps = _steps()
    assert [s.get("uses", "").split("@")[0] for s in steps] == [
        "actions/setup-python",
        "",
        "",
    ]
    project = projects.locked("downgrade-breaks", isolated_poetry)
    runner_temp = tmp_path / "runner-temp"
    runner_temp.mkdir()
    base_env = offline_home_env(tmp_path / "home", local_index)
    base_env.update(
        RUNNER_TEMP=str(runner_temp),
        GITHUB_ACTIONS="true",
        GITHUB_WORKSPACE=str(project),
    )
    context = {
        "steps.python.outputs.python-path": str(harness.base_python),
        "inputs.poetry-version": poetry_version,
        "inputs.python-version": python_minor(harness.download_python),
        "inputs.args": "--only main",
        "inputs.working-directory": ".",
        "github.action_path": str(REPO_ROOT),
    }

    install = _run_step(steps[1], context, base_env, project)
    assert install.returncode == 0, install.stdout + install.stderr
    poetry = runner_temp / "poetry-env-audit-venv" / "bin" / "poetry"
    assert poetry.exists()

    check = _run_step(steps[2], context, base_env, project)
    output = check.stdout + check.stderr
    assert check.returncode == 1, output
    lock_lines = (project / "poetry.lock").read_text().splitlines()
    line = lock_lines.index('name = "packaging"') + 1
    assert (
        f"::error file=poetry.lock,line={line},title=env-audit%3A packaging breaks Poetry::"
        in check.stdout
    ), output
    assert f"assumed (--poetry {poetry_version} --python " in check.stdout, output
    # The project was not installed anywhere (no in-project venv was made).
    assert not (project / ".venv").exists()
