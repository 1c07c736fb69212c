from __future__ import annotations

# Catching it at the pull request: `env-audit --assume-shared` and
# `env-audit --poetry VERSION` run from an isolated Poetry (a laptop, a CI
# runner) judge the lock as the deploy image's Poetry would.
#
# The image-vs-real check builds a real system-like Poetry 1.8.5 on this
# leg's Python (its closure pinned in requirements/constraints/
# poetry-1.8.5-py<minor>.txt) and a local index that serves exactly that
# closure plus the fixture pins, so "what pip would install today" is known.
import shutil
from typing import TYPE_CHECKING
from typing import Any

import pytest

from harness.index import build_simple_index
from harness.index import serve
from harness.interpreters import ensure_template
from harness.interpreters import with_plugin
from harness.session import Projects
from harness.session import constraints_file
from harness.session import discard
from harness.session import poetry_wheelhouse
from harness.session import private_clone
from harness.snapshot import installed_versions
from harness.wheels import python_minor
from integration._audit import closed_port
from integration._audit import findings_for
from integration._audit import normalise
from integration._audit import offline_env
from integration._audit import run_audit
from integration._audit import the_finding

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from harness.interpreters import Interpreter
    from harness.session import Harness

IMAGE_POETRY = "1.8.5"
# A lock below Poetry 1.8.5's requirements (packaging>=23.1) and beside them
# (shellingham, idna in place), plus a package Poetry does not need.
IMAGE_LOCK = {
    "packaging": "23.0",
    "shellingham": "1.5.3",
    "idna": "3.7",
    "six": "1.17.0",
}


def _closure_cache(interp: Interpreter) -> Path:
    return interp.prefix.with_name(interp.prefix.name + ".state") / "cache"


# --- --assume-shared ------------------------------------------------------------


@pytest.mark.smoke
def test_assume_shared_judges_an_isolated_poetry_as_the_image_would(
    isolated_poetry: Interpreter, projects: Projects
) -> None:
    project = projects.locked("downgrade-breaks", isolated_poetry)

    plain = run_audit(isolated_poetry, project, "--format", "json")
    assert plain.code == 0, plain.describe()
    report = plain.report()
    assert report["findings"] == [], plain.describe()
    assert report["assumed_shared"] is False
    assert report["assumed"] is None

    assumed = run_audit(isolated_poetry, project, "--assume-shared", "--format", "json")
    assert assumed.code == 1, assumed.describe()
    report = assumed.report()
    assert report["assumed_shared"] is True
    assert report["assumed"] == {"flags": "--assume-shared", "poetry": None}
    assert report["target"]["shared"] is True
    finding = the_finding(report, "packaging")
    assert (finding["action"], finding["verdict"], finding["planned"]) == (
        "downgrade",
        "breaks",
        "23.0",
    )
    assert (
        finding["current"]
        == installed_versions(isolated_poetry.site_packages())["packaging"]
    )
    # Nothing was created to look: no in-project .venv.
    assert not (project / ".venv").exists()

    text = run_audit(isolated_poetry, project, "--assume-shared")
    assert text.code == 1, text.describe()
    first = text.stdout.splitlines()[0]
    assert first.startswith("assumed (--assume-shared): the running Poetry shares"), (
        text.describe()
    )


# --- --poetry VERSION: the image's closure ---------------------------------------


@pytest.fixture(scope="module")
def image_pins(harness: Harness) -> Path:
    pins = constraints_file(IMAGE_POETRY, python_minor(harness.download_python))
    if not pins.is_file():
        pytest.skip(
            f"no {pins.name}: the image-vs-real check runs where Poetry"
            f" {IMAGE_POETRY}'s closure is pinned for this Python"
        )
    return pins


@pytest.fixture(scope="module")
def image_wheelhouse(harness: Harness, image_pins: Path) -> Path:
    """Poetry 1.8.5's closure (and the plugin's requirements) for this Python."""
    return poetry_wheelhouse(
        IMAGE_POETRY,
        python=harness.download_python,
        cache_root=harness.cache_root,
        plugin=harness.plugin,
        constraints=image_pins,
    )


@pytest.fixture(scope="module")
def image_index(
    harness: Harness, image_wheelhouse: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """An index of Poetry 1.8.5's closure, this plugin and the fixture pins
    only: what `pip install poetry==1.8.5` finds there is the pinned closure."""
    root = tmp_path_factory.mktemp("image-index")
    plugin_dir = harness.require_plugin().parent
    build_simple_index([image_wheelhouse, plugin_dir, *harness.pin_wheels], root)
    with serve(root) as server:
        yield server.url


@pytest.fixture(scope="module")
def real_image(
    harness: Harness, image_wheelhouse: Path, scratch: Path
) -> Iterator[Interpreter]:
    """A system-like Python with Poetry 1.8.5 and the plugin pip-installed:
    the deploy image itself."""
    template = ensure_template(
        "system",
        base_python=harness.base_python,
        poetry_version=IMAGE_POETRY,
        wheelhouse=image_wheelhouse,
        root=harness.cache_root / "templates",
    )
    dest = scratch / "image-template"
    plugged = with_plugin(
        template,
        dest,
        harness.require_plugin(),
        [image_wheelhouse, *harness.pin_wheels],
    )
    interp = private_clone(plugged, scratch, "system")
    yield interp
    discard(interp)
    shutil.rmtree(dest, ignore_errors=True)


def _comparable(finding: dict[str, Any]) -> tuple[Any, ...]:
    return (
        normalise(finding["package"]),
        finding["current"],
        finding["planned"],
        finding["action"],
        finding["verdict"],
        finding["policy"],
        tuple(
            sorted(
                (
                    normalise(r["package"]),
                    r["version"],
                    r["requirement"],
                    r["satisfied"],
                )
                for r in finding["required_by"]
            )
        ),
    )


@pytest.mark.parametrize("sync", [False, True], ids=["install", "sync"])
def test_poetry_version_gives_the_verdicts_of_that_poetry_in_the_image(
    real_image: Interpreter,
    isolated_poetry: Interpreter,
    image_index: str,
    tmp_path: Path,
    harness: Harness,
    sync: bool,
) -> None:
    minor = python_minor(harness.download_python)
    projects = Projects(
        root=tmp_path / "projects", index_url=image_index, cache_root=harness.cache_root
    )
    (tmp_path / "projects").mkdir()
    image_project = projects.write("image-lock", IMAGE_LOCK)
    projects.lock(real_image, image_project)
    runner_project = tmp_path / "runner-copy"
    shutil.copytree(image_project, runner_project)
    extra = ["--sync"] if sync else []

    real = run_audit(real_image, image_project, "--format", "json", *extra)
    judged = run_audit(
        isolated_poetry,
        runner_project,
        "--poetry",
        IMAGE_POETRY,
        "--python",
        minor,
        # The image has the plugin too (`poetry self add poetry-env-audit`).
        "--with-plugin",
        "poetry-env-audit",
        "--format",
        "json",
        *extra,
    )
    assert judged.code == real.code, (real.describe(), judged.describe())
    real_report, judged_report = real.report(), judged.report()
    assert real_report["target"]["shared"] is True
    assert judged_report["assumed_shared"] is True
    assert sorted(map(_comparable, judged_report["findings"])) == sorted(
        map(_comparable, real_report["findings"])
    ), (real.describe(), judged.describe())
    assert the_finding(judged_report, "packaging")["verdict"] == "breaks"
    assert judged_report["verdict"] == real_report["verdict"]
    # The closure judged against is the image's: every package Poetry needs
    # there, at the version pip installed.
    closure = {
        normalise(p["package"]): p["version"]
        for p in judged_report["assumed"]["closure"]
    }
    needs = {
        normalise(d["package"]): d["version"] for d in real_report["poetry"]["needs"]
    }
    assert closure == needs
    assert judged_report["assumed"]["poetry"] == IMAGE_POETRY
    assert judged_report["assumed"]["python"] == minor
    assert judged_report["poetry"]["version"] == IMAGE_POETRY
    assert findings_for(judged_report, "six") == []


# --- the cache and the offline case ------------------------------------------------


def _closure_files(interp: Interpreter) -> list[Path]:
    return sorted((_closure_cache(interp) / "env-audit" / "closures").glob("*.json"))


@pytest.mark.smoke
def test_poetry_version_resolves_once_then_judges_from_its_cache_offline(
    isolated_poetry: Interpreter,
    projects: Projects,
    local_index: str,
    poetry_version: str,
) -> None:
    """On every matrix Poetry: the solver, the MockEnv and the installed
    repository seams, then the cache."""
    project = projects.locked("downgrade-breaks", isolated_poetry)
    args = ["--poetry", poetry_version, "--index-url", local_index, "--format", "json"]

    first = run_audit(isolated_poetry, project, *args)
    assert first.code == 1, first.describe()
    report = first.report()
    assert report["assumed_shared"] is True
    assert report["assumed"]["cached"] is False
    assert report["assumed"]["sources"] == [local_index.rstrip("/")]
    closure = {p["package"].lower(): p["version"] for p in report["assumed"]["closure"]}
    assert closure["poetry"] == poetry_version
    finding = the_finding(report, "packaging")
    assert (finding["verdict"], finding["planned"]) == ("breaks", "23.0")
    assert finding["current"] == closure["packaging"]
    assert len(_closure_files(isolated_poetry)) == 1

    with closed_port() as port:
        again = run_audit(isolated_poetry, project, *args, extra_env=offline_env(port))
    assert again.code == 1, again.describe()
    cached = again.report()
    assert cached["assumed"]["cached"] is True
    assert cached["assumed"]["closure"] == report["assumed"]["closure"]
    assert cached["findings"] == report["findings"]


def test_offline_without_a_cache_is_exit_2_in_one_line(
    isolated_poetry: Interpreter,
    projects: Projects,
    local_index: str,
    poetry_version: str,
) -> None:
    """No network and no cache: exit 2, one line, nothing on stdout. (A cache
    older than 24 hours counts as none: tests/unit/test_seams_closure.py.)"""
    project = projects.locked("downgrade-breaks", isolated_poetry)
    args = ["--poetry", poetry_version, "--index-url", local_index, "--format", "json"]
    with closed_port() as port:
        offline = run_audit(
            isolated_poetry, project, *args, extra_env=offline_env(port)
        )
    assert offline.code == 2, offline.describe()
    assert offline.stdout == ""
    lines = offline.stderr.strip().splitlines()
    assert len(lines) == 1, offline.describe()
    assert lines[0].startswith(
        f"env-audit: cannot resolve Poetry {poetry_version}'s closure for Python"
    ), offline.describe()
    assert "no resolution of it is cached from the last 24 hours" in lines[0]
    assert _closure_files(isolated_poetry) == []
