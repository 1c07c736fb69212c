from __future__ import annotations

# Ownership by file (issue 11): a wheel of another name that ships a file of
# a distribution Poetry runs on (here tomlkit-shadow with tomlkit/__init__.py)
# is refused before it is written, in a shared environment. Without the check
# Poetry writes it "over existing file" and no longer imports.
import hashlib
from typing import TYPE_CHECKING

from harness.poetry import describe
from harness.poetry import run_poetry
from harness.synthetic import write_wheel

if TYPE_CHECKING:
    from pathlib import Path

    from harness.interpreters import Interpreter

SHADOW = "raise ImportError('tomlkit shadowed by tomlkit-shadow')\n"


def _project(root: Path, wheel: Path) -> Path:
    project = root / "shadow-project"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        "[tool.poetry]\n"
        'name = "shadow-project"\nversion = "0.1.0"\ndescription = ""\n'
        'authors = ["poetry-env-audit tests"]\npackage-mode = false\n\n'
        "[tool.poetry.dependencies]\n"
        'python = ">=3.9"\n'
        f'tomlkit-shadow = {{path = "{wheel}"}}\n',
        encoding="utf-8",
    )
    return project


def test_wheel_that_would_overwrite_poetrys_files_is_refused(
    system_poetry: Interpreter, tmp_path: Path
) -> None:
    wheel = write_wheel(
        tmp_path / "wheels",
        "tomlkit-shadow",
        "1.0",
        files={"tomlkit/__init__.py": SHADOW},
    )
    project = _project(tmp_path, wheel)
    locked = run_poetry(system_poetry, ["lock"], cwd=project)
    assert locked.returncode == 0, describe(locked)
    target = system_poetry.site_packages()[0] / "tomlkit" / "__init__.py"
    before = hashlib.sha256(target.read_bytes()).hexdigest()

    result = run_poetry(system_poetry, ["install"], cwd=project)

    why = describe(result)
    assert result.returncode != 0, why
    output = result.stdout + result.stderr
    assert "refusing to install tomlkit-shadow" in output, why
    assert "would overwrite tomlkit/__init__.py of tomlkit" in output, why
    assert hashlib.sha256(target.read_bytes()).hexdigest() == before
    version = run_poetry(system_poetry, ["--version"], cwd=project)
    assert version.returncode == 0, describe(version)
