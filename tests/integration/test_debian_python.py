from __future__ import annotations

# The "debian" kind: Debian's own /usr/bin/python3.X (EXTERNALLY-MANAGED) with
# Poetry pip-installed by --break-system-packages and virtualenvs.create =
# false, the usual Docker recipe on Debian and Ubuntu. Each test gets a
# throwaway overlay of the cached Debian root (harness.debian); they run in
# the Debian legs of scripts/dev.py (inside the root, as root) and fail there
# if the kind cannot be made; elsewhere they are skipped with the reason.
import json
import os
import re
from typing import TYPE_CHECKING
from typing import Any

import pytest

from harness.debian import DEBIAN_DIST
from harness.debian import DEBIAN_ENV
from harness.debian import LOCAL_DIST
from harness.debian import DebianPython
from harness.debian import debian_root_problem
from harness.interpreters import python_info
from harness.poetry import describe
from harness.poetry import run_poetry
from harness.session import Projects

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from harness.interpreters import Interpreter
    from harness.session import Harness

pytestmark = pytest.mark.smoke


@pytest.fixture(scope="module")
def debian_python(harness: Harness, poetry_version: str) -> DebianPython:
    minor = ".".join(python_info(harness.base_python)["version"].split(".")[:2])
    problem = debian_root_problem(minor, harness.cache_root)
    if problem:
        if os.environ.get(DEBIAN_ENV):
            pytest.fail(f"the Debian system-Python kind cannot be made: {problem}")
        pytest.skip(f"runs in the Debian legs of scripts/dev.py test: {problem}")
    return DebianPython(
        cache_root=harness.cache_root,
        minor=minor,
        poetry_version=poetry_version,
        wheel_dirs=harness.find_links,
        plugin=harness.require_plugin(),
        scratch=harness.scratch,
    )


@pytest.fixture
def debian_poetry(debian_python: DebianPython) -> Iterator[Interpreter]:
    """A private Debian root with Poetry and the plugin in /usr/local."""
    with debian_python.interpreter() as interp:
        yield interp


def debian_projects(interp: Interpreter, index_url: str, cache_root: Path) -> Projects:
    """Projects inside the chroot (Poetry there sees only the root's files)."""
    assert interp.root is not None
    root = interp.root / "work" / "projects"
    root.mkdir(parents=True)
    return Projects(root=root, index_url=index_url, cache_root=cache_root)


def dist_info(interp: Interpreter, directory: str, name: str) -> list[str]:
    assert interp.root is not None
    site = interp.root / directory.lstrip("/")
    return sorted(p.name for p in site.glob(f"{name}-*.dist-info"))


def env_audit(interp: Interpreter, project: Path, **env: str) -> dict[str, Any]:
    result = run_poetry(
        interp, ["env-audit", "--format", "json"], cwd=project, extra_env=env
    )
    assert result.returncode in (0, 1), describe(result)
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def test_install_is_refused_with_the_markers_own_message(
    debian_poetry: Interpreter, local_index: str, harness_cache: Path
) -> None:
    projects = debian_projects(debian_poetry, local_index, harness_cache)
    project = projects.locked("downgrade-breaks", debian_poetry)
    local = LOCAL_DIST.format(minor=debian_poetry.python_minor)
    before = dist_info(debian_poetry, local, "packaging")
    assert before, f"Poetry's packaging is not in {local}"

    result = run_poetry(debian_poetry, ["install"], cwd=project)

    assert result.returncode == 1, describe(result)
    assert "refusing to install into /usr: it is externally managed" in result.stderr, (
        describe(result)
    )
    # The marker's own text (Debian's), folded onto one line.
    assert debian_poetry.root is not None
    stdlib = debian_poetry.root / f"usr/lib/python{debian_poetry.python_minor}"
    text = (stdlib / "EXTERNALLY-MANAGED").read_text(encoding="utf-8")
    first = text.split("Error=", 1)[1].splitlines()[0].strip()
    assert first in " ".join(result.stderr.split()), describe(result)
    assert dist_info(debian_poetry, local, "packaging") == before


def test_verdicts_across_both_dist_packages_with_warn(
    debian_poetry: Interpreter, local_index: str, harness_cache: Path
) -> None:
    projects = debian_projects(debian_poetry, local_index, harness_cache)
    local = LOCAL_DIST.format(minor=debian_poetry.python_minor)
    # Poetry's closure is split: pip kept Debian's python3-shellingham.
    assert dist_info(debian_poetry, DEBIAN_DIST, "shellingham"), "no Debian shellingham"
    assert not dist_info(debian_poetry, local, "shellingham")

    breaks = env_audit(
        debian_poetry,
        projects.locked("downgrade-breaks", debian_poetry),
        POETRY_ENV_AUDIT_EXTERNALLY_MANAGED="warn",
    )
    changes = env_audit(
        debian_poetry,
        projects.locked("guard-serialise", debian_poetry),
        POETRY_ENV_AUDIT_EXTERNALLY_MANAGED="warn",
    )

    needs = {n["package"]: n["location"] for n in breaks["poetry"]["needs"]}
    assert needs["shellingham"] == DEBIAN_DIST, needs
    assert needs["packaging"] == local, needs
    assert needs["poetry"] == local, needs
    assert breaks["target"]["externally_managed"] is True
    assert breaks["target"]["shared"] is True
    kinds = {e["kind"]: e["policy"] for e in breaks["environment"]}
    assert kinds.get("externally-managed") == "warn", breaks["environment"]

    by_package = {f["package"]: f for f in breaks["findings"]}
    assert by_package["packaging"]["action"] == "downgrade"
    assert by_package["packaging"]["verdict"] == "breaks"
    assert breaks["verdict"] == "block"

    # Debian's shellingham (in /usr/lib/python3/dist-packages) replaced by the
    # lock's 1.5.3, which Poetry still accepts: a change, not a break.
    (debian,) = dist_info(debian_poetry, DEBIAN_DIST, "shellingham")
    current = re.sub(r"^shellingham-(.+)\.dist-info$", r"\1", debian)
    found = {f["package"]: f for f in changes["findings"]}
    assert found["shellingham"]["current"] == current, found
    assert found["shellingham"]["planned"] == "1.5.3", found
    assert found["shellingham"]["verdict"] == "changes", found
    assert changes["verdict"] != "block", changes
