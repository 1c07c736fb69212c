"""The composite Action and the pre-commit hook's manifest, as files."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHECK = REPO / "scripts" / "check_action.py"
BIN = Path(sys.executable).parent

needs_linters = pytest.mark.skipif(
    not (BIN / "actionlint").exists() or not (BIN / "zizmor").exists(),
    reason="actionlint and zizmor come with the dev venv (requirements/dev.txt)",
)


def run_check(action: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(CHECK), str(action)],
        capture_output=True,
        text=True,
        check=False,
    )


@needs_linters
def test_action_passes_actionlint_and_zizmor() -> None:
    result = run_check(REPO / "action.yml")
    assert result.returncode == 0, result.stdout + result.stderr


@needs_linters
@pytest.mark.parametrize(
    ("old", "new"),
    [
        # An input the action does not declare.
        ("inputs.poetry-version }}\n", "inputs.poetry-verison }}\n"),
        # An action pinned by tag instead of commit (zizmor, pedantic).
        (
            "actions/setup-python@e797f83bcb11b83ae66e0230d6156d7c80228e7c # v6.0.0",
            "actions/setup-python@v6",
        ),
        # An input expanded straight into the script (template injection).
        ('read -r -a extra <<< "$ARGS"', 'read -r -a extra <<< "${{ inputs.args }}"'),
    ],
    ids=["unknown-input", "unpinned", "injection"],
)
def test_the_check_fails_a_broken_action(tmp_path: Path, old: str, new: str) -> None:
    text = (REPO / "action.yml").read_text(encoding="utf-8")
    assert old in text
    broken = tmp_path / "action.yml"
    broken.write_text(text.replace(old, new), encoding="utf-8")
    assert run_check(broken).returncode != 0


def test_action_runs_env_audit_with_the_image_flags() -> None:
    text = (REPO / "action.yml").read_text(encoding="utf-8")
    for name in ("poetry-version", "python-version", "args"):
        assert re.search(rf"^  {name}:$", text, re.MULTILINE), name
    assert "using: composite" in text
    assert '--poetry "$POETRY_VERSION" --python "$PYTHON_VERSION"' in text
    assert "--format github" in text


def test_pre_commit_hook_manifest() -> None:
    yaml = pytest.importorskip("yaml")
    hooks = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    assert [h["id"] for h in hooks] == ["poetry-env-audit"]
    hook = hooks[0]
    assert hook["entry"] == "poetry env-audit"
    assert hook["args"] == ["--assume-shared"]
    assert hook["pass_filenames"] is False
    files = re.compile(hook["files"])
    for name in ("poetry.lock", "pyproject.toml"):
        assert files.search(name), name
    for name in ("README.md", "poetry.lock.bak", "sub/poetry.lock", "xpyproject.toml"):
        assert not files.search(name), name
