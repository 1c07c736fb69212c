from __future__ import annotations

# Proves the integration harness itself: the three kinds of interpreters, the
# plugin loading, the local index, locking and snapshots.
import re
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from harness.fakes import build_plugin_wheel
from harness.interpreters import pip_install
from harness.interpreters import python_info
from harness.poetry import describe
from harness.poetry import run_poetry
from harness.snapshot import check_consistency
from harness.snapshot import installed_versions
from harness.snapshot import snapshot_diff
from harness.snapshot import snapshot_site_packages

if TYPE_CHECKING:
    from harness.interpreters import Interpreter
    from harness.session import Projects
    from harness.session import TemplateStore

pytestmark = pytest.mark.smoke


def test_system_like_interpreter_is_its_own_base(
    system_poetry: Interpreter, base_python: Path
) -> None:
    info = python_info(system_poetry.python)
    prefix = system_poetry.prefix.resolve()
    assert Path(info["prefix"]).resolve() == prefix
    assert Path(info["base_prefix"]).resolve() == prefix
    assert Path(info["purelib"]).resolve().is_relative_to(prefix)
    assert python_info(base_python)["base_prefix"] != info["base_prefix"]
    assert not system_poetry.python.is_symlink()


def test_poetry_runs_with_the_expected_version(
    any_poetry: Interpreter, poetry_version: str, tmp_path: Path
) -> None:
    result = run_poetry(any_poetry, ["--version"], cwd=tmp_path)
    assert result.returncode == 0, describe(result)
    assert f"version {poetry_version}" in result.stdout
    versions = installed_versions(any_poetry.site_packages())
    assert versions["poetry"] == poetry_version


def test_plugin_is_loaded(
    any_poetry: Interpreter, templates: TemplateStore, tmp_path: Path
) -> None:
    problem = templates.plugin_problem(any_poetry.kind, any_poetry.poetry_version)
    assert not problem and any_poetry.has_plugin, f"plugin not installed: {problem}"
    result = run_poetry(any_poetry, ["list"], cwd=tmp_path)
    assert result.returncode == 0, describe(result)
    assert "env-audit" in result.stdout, describe(result)
    shown = run_poetry(any_poetry, ["self", "show", "plugins"], cwd=tmp_path)
    assert shown.returncode == 0, describe(shown)
    assert "poetry-env-audit" in shown.stdout, describe(shown)


def test_target_environment_per_kind(
    any_poetry: Interpreter, projects: Projects
) -> None:
    project = projects.create("downgrade-breaks")
    probe = ["--no-plugins", "run", "python", "-c", "import sys; print(sys.prefix)"]
    result = run_poetry(any_poetry, probe, cwd=project)
    assert result.returncode == 0, describe(result)
    expected = project / ".venv" if any_poetry.kind == "isolated" else any_poetry.prefix
    assert Path(result.stdout.strip().splitlines()[-1]).resolve() == expected.resolve()


def test_local_index_serves_pep503_pages(local_index: str) -> None:
    with urllib.request.urlopen(local_index + "packaging/") as response:  # noqa: S310
        page = response.read().decode()
    assert "packaging-23.0-py3-none-any.whl#sha256=" in page
    assert re.search(r"#sha256=[0-9a-f]{64}", page)


def test_dry_run_shows_the_downgrade_and_changes_nothing(
    system_poetry: Interpreter, projects: Projects
) -> None:
    project = projects.locked("downgrade-breaks", system_poetry)
    assert "packaging" in (project / "poetry.lock").read_text()
    site = system_poetry.site_packages()
    assert check_consistency(site) == []
    before = snapshot_site_packages(site)
    result = run_poetry(
        system_poetry, ["--no-plugins", "install", "--dry-run"], cwd=project
    )
    assert result.returncode == 0, describe(result)
    assert re.search(r"Downgrading packaging \(\S+ -> 23\.0\)", result.stdout), (
        describe(result)
    )
    assert snapshot_diff(before, snapshot_site_packages(site)) == []


def test_fake_plugin_loads_next_to_poetry(
    venv_poetry: Interpreter, find_links: list[Path], tmp_path: Path
) -> None:
    wheel = build_plugin_wheel(tmp_path / "fake", "fake-plugin", "1.0", ["six>=1.16"])
    pip_install(venv_poetry.python, [str(wheel)], [wheel.parent, *find_links])
    result = run_poetry(venv_poetry, ["self", "show", "plugins"], cwd=tmp_path)
    assert result.returncode == 0, describe(result)
    assert "fake-plugin" in result.stdout, describe(result)
    assert installed_versions(venv_poetry.site_packages())["six"] == "1.17.0"
    assert check_consistency(venv_poetry.site_packages()) == []
