from __future__ import annotations

# Fail safe for Poetry's packages (issue 11): a plugin in Poetry's environment
# whose metadata is valid but hard to read (PEP 440 arbitrary equality, a
# marker nested 1,200 levels deep) must not turn the guard off. Before the
# fix the decision raised (ParseConstraintError, RecursionError on Poetry
# 1.8.5's packaging) and the downgrade went through.
import json
import zipfile
from typing import TYPE_CHECKING

import pytest

from harness.fakes import build_plugin_wheel
from harness.interpreters import pip_install
from harness.poetry import describe
from harness.poetry import run_poetry
from harness.snapshot import installed_versions
from harness.snapshot import snapshot_diff
from harness.snapshot import snapshot_site_packages

if TYPE_CHECKING:
    from pathlib import Path

    from harness.interpreters import Interpreter
    from harness.session import Projects

DEPTH = 1200


def _requirement(kind: str, packaging: str) -> str:
    if kind == "arbitrary-equality":
        return f"packaging==={packaging}"
    deep = "(" * DEPTH + 'python_version >= "3"' + ")" * DEPTH
    return f"packaging>=1; {deep}"


def unpack_wheel(wheel: Path, purelib: Path) -> None:
    """Install a pure wheel by unpacking it (what every installer does at heart)."""
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(purelib)


@pytest.mark.parametrize(
    "kind",
    [pytest.param("arbitrary-equality", marks=pytest.mark.smoke), "deep-marker"],
)
def test_hard_to_read_plugin_metadata_still_refuses_the_downgrade(
    system_poetry: Interpreter,
    projects: Projects,
    find_links: list[Path],
    tmp_path: Path,
    kind: str,
) -> None:
    interp = system_poetry
    site = interp.site_packages()
    packaging = installed_versions(site)["packaging"]
    wheel = build_plugin_wheel(
        tmp_path / "fake", "adv-plugin", "1.0", [_requirement(kind, packaging)]
    )
    if kind == "deep-marker":
        # pip itself refuses the wheel (RecursionError while checking its
        # metadata), so it goes in as an installer without that check would.
        unpack_wheel(wheel, site[0])
    else:
        pip_install(interp.python, [str(wheel)], [wheel.parent, *find_links])
    project = projects.locked("downgrade-breaks", interp)
    before = snapshot_site_packages(site)

    result = run_poetry(interp, ["install"], cwd=project)

    why = describe(result)
    assert result.returncode == 1, why
    assert "internal error" not in result.stderr, why
    assert "poetry-env-audit: refusing to run this install" in result.stderr, why
    assert f"packaging {packaging} -> 23.0 (downgrade)" in result.stderr, why
    assert snapshot_diff(before, snapshot_site_packages(site)) == []
    assert installed_versions(site)["packaging"] == packaging

    audit = run_poetry(interp, ["env-audit", "--format", "json"], cwd=project)
    assert audit.returncode == 1, describe(audit)
    report = json.loads(audit.stdout)
    [finding] = [f for f in report["findings"] if f["package"] == "packaging"]
    assert finding["verdict"] == "breaks"
    assert finding["policy"] == "block"

    version = run_poetry(interp, ["--version"], cwd=project)
    assert version.returncode == 0, describe(version)
