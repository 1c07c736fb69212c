from __future__ import annotations

# The pre-commit hook (.pre-commit-hooks.yaml) run the way a team would try
# it: `pre-commit try-repo <this repository> poetry-env-audit` in a throwaway
# git repository holding a Poetry project. pre-commit builds the hook's
# environment from this repository (the plugin and its Poetry) with pip,
# pointed at the local index (PIP_INDEX_URL): poetry-core for the build and
# every dependency come from there, never from a public index.
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from harness.poetry import offline_home_env
from harness.projects import REPO_ROOT

if TYPE_CHECKING:
    from harness.interpreters import Interpreter
    from harness.session import Projects

PRE_COMMIT = Path(sys.executable).parent / "pre-commit"


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


def _throwaway_repo(project: Path, dest: Path) -> Path:
    shutil.copytree(project, dest, ignore=shutil.ignore_patterns(".venv"))
    _git(dest, "init", "-q")
    _git(dest, "add", "-A")
    _git(dest, "commit", "-q", "-m", "project")
    return dest


def _hook_env(home: Path, index_url: str) -> dict[str, str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PIP_", "PRE_COMMIT", "GIT_"))
    }
    env = offline_home_env(home, index_url, base)
    env.update(
        PRE_COMMIT_HOME=str(home / "pre-commit"),
        NO_COLOR="1",
        VIRTUALENV_DOWNLOAD="0",
    )
    return env


def _try_repo(repo: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(PRE_COMMIT),
            "try-repo",
            str(REPO_ROOT),
            "poetry-env-audit",
            "--all-files",
            "--verbose",
        ],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def test_hook_fails_on_the_breaking_lock_and_passes_on_a_fine_one(
    isolated_poetry: Interpreter,
    projects: Projects,
    local_index: str,
    tmp_path: Path,
) -> None:
    if not PRE_COMMIT.exists():
        pytest.fail(f"{PRE_COMMIT} is missing: requirements/dev.txt installs it")
    if shutil.which("git") is None:
        # The Debian legs' root (debootstrap minbase) has no git.
        pytest.skip("pre-commit needs git, which is not installed here")
    env = _hook_env(tmp_path / "home", local_index)
    breaking = _throwaway_repo(
        projects.locked("downgrade-breaks", isolated_poetry), tmp_path / "breaking"
    )
    fine = _throwaway_repo(
        projects.locked("changes-in-place", isolated_poetry), tmp_path / "fine"
    )

    failed = _try_repo(breaking, env)
    output = failed.stdout + failed.stderr
    assert failed.returncode == 1, output
    assert "poetry env-audit" in output
    assert "Failed" in output, output
    assert "assumed (--assume-shared)" in output, output
    assert "breaks: packaging would be downgraded" in output, output

    passed = _try_repo(fine, env)
    output = passed.stdout + passed.stderr
    assert passed.returncode == 0, output
    assert "Passed" in output, output
    assert "assumed (--assume-shared)" in output, output
    # Not silent: shellingham is changed in place, within Poetry's range.
    assert "Verdict: serialise (1 changes)" in output, output
    # Neither run wrote into the projects.
    for repo in (breaking, fine):
        status = subprocess.run(
            ["git", "status", "--porcelain"],
            cwd=repo,
            capture_output=True,
            text=True,
            check=True,
        )
        assert status.stdout == "", status.stdout
