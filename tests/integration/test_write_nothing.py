from __future__ import annotations

# Write nothing where nothing is shared (issue 11): with an isolated Poetry
# the project's venv is byte for byte what Poetry alone makes; a read-only
# target never makes a no-op install fail; commands that execute nothing
# create no lock.
import contextlib
import hashlib
import os
import shutil
import subprocess
from typing import TYPE_CHECKING

import pytest

from harness.poetry import describe
from harness.poetry import run_poetry

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from harness.interpreters import Interpreter
    from harness.session import Projects

LOCK_NAME = ".poetry-env-audit.lock"
NO_DEPENDENCIES = """\
[tool.poetry]
name = "nothing-to-install"
version = "0.1.0"
description = ""
authors = ["poetry-env-audit tests"]
package-mode = false

[tool.poetry.dependencies]
python = ">=3.9"
"""


def tree(root: Path) -> dict[str, str]:
    """Every entry under *root*: files by content, symlinks by target, dirs."""
    out: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            out[rel] = f"-> {path.readlink()}"
        elif path.is_dir():
            out[rel] = "dir"
        elif rel.endswith(".dist-info/RECORD"):
            # virtualenv's seeder lists the .pyc files it adds to pip's
            # RECORD in set order, which varies from run to run with or
            # without the plugin: the lines are compared, not their order.
            lines = sorted(path.read_bytes().splitlines())
            out[rel] = "RECORD " + hashlib.sha256(b"\n".join(lines)).hexdigest()
        elif rel.endswith(".pyc"):
            # Bytecode the venv's interpreter writes when it starts: its
            # 16-byte header holds the source's mtime, new with each venv.
            out[rel] = "pyc " + hashlib.sha256(path.read_bytes()[16:]).hexdigest()
        else:
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@pytest.mark.smoke
def test_isolated_poetrys_target_is_byte_identical_with_and_without_the_plugin(
    isolated_poetry: Interpreter, projects: Projects, tmp_path: Path
) -> None:
    project = projects.locked("downgrade-breaks", isolated_poetry)
    trees: dict[str, list[dict[str, str]]] = {}
    for label, prefix in (("no-plugins", ["--no-plugins"]), ("plugin", [])):
        shutil.rmtree(project / ".venv", ignore_errors=True)
        state = tmp_path / f"state-{label}"
        trees[label] = []
        for _ in range(2):  # a fresh install, then the no-op one
            result = run_poetry(
                isolated_poetry, [*prefix, "install"], cwd=project, state_dir=state
            )
            assert result.returncode == 0, describe(result)
            trees[label].append(tree(project / ".venv"))
    assert not [p for p in trees["plugin"][1] if p.endswith(LOCK_NAME)]
    for fresh_or_noop in (0, 1):
        plugin, alone = (
            trees["plugin"][fresh_or_noop],
            trees["no-plugins"][fresh_or_noop],
        )
        only_plugin = sorted(set(plugin) - set(alone))
        only_alone = sorted(set(alone) - set(plugin))
        changed = sorted(p for p in set(plugin) & set(alone) if plugin[p] != alone[p])
        assert (only_plugin, only_alone, changed) == ([], [], [])


@contextlib.contextmanager
def read_only(directory: Path) -> Iterator[None]:
    """*directory* bind-mounted read-only onto itself (root only), for the block."""
    subprocess.run(["mount", "--bind", str(directory), str(directory)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(directory)], check=True)
        yield
    finally:
        subprocess.run(["umount", str(directory)], check=True)


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("mount") is None,
    reason="needs root and mount(8) for a read-only bind mount",
)
def test_read_only_shared_target_does_not_fail_a_no_op_install(
    system_poetry: Interpreter, tmp_path: Path
) -> None:
    project = tmp_path / "nothing-to-install"
    project.mkdir()
    (project / "pyproject.toml").write_text(NO_DEPENDENCIES, encoding="utf-8")
    locked = run_poetry(system_poetry, ["lock"], cwd=project)
    assert locked.returncode == 0, describe(locked)
    site = system_poetry.site_packages()[0]
    (site / LOCK_NAME).unlink(missing_ok=True)
    with read_only(site):
        with pytest.raises(OSError, match="Read-only"):
            (site / ".probe").write_text("x")
        result = run_poetry(system_poetry, ["install"], cwd=project)
        version = run_poetry(system_poetry, ["--version"], cwd=project)
    assert result.returncode == 0, describe(result)
    assert "read-only" not in result.stderr.lower(), describe(result)
    assert version.returncode == 0, describe(version)
    assert not (site / LOCK_NAME).exists()


def test_self_show_plugins_creates_no_lock(
    system_poetry: Interpreter, tmp_path: Path
) -> None:
    site = system_poetry.site_packages()[0]
    (site / LOCK_NAME).unlink(missing_ok=True)
    result = run_poetry(system_poetry, ["self", "show", "plugins"], cwd=tmp_path)
    assert result.returncode == 0, describe(result)
    assert "poetry-env-audit" in result.stdout, describe(result)
    assert not (site / LOCK_NAME).exists()
