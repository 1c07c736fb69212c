from __future__ import annotations

# Fixtures of the integration suite: real Poetry in throwaway interpreters, a
# local package index on loopback, fixture projects.
#
# Environment:
#   POETRY_ENV_AUDIT_TEST_POETRY  comma list of Poetry versions (default 2.5.1)
#   POETRY_ENV_AUDIT_TEST_PYTHON  "3.X" (pyenv) or a path (default 3.11)
#   POETRY_ENV_AUDIT_TEST_CACHE   download/template/lock cache
#   POETRY_ENV_AUDIT_TEST_KEEP    keep per-test clones after the test
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from harness.session import Harness
from harness.session import PluginBuild
from harness.session import Projects
from harness.session import TemplateStore
from harness.session import configured_poetry_versions
from harness.session import discard
from harness.session import open_scratch
from harness.session import private_clone
from harness.session import scratch_root

if TYPE_CHECKING:
    from collections.abc import Iterator

    from harness.interpreters import Interpreter
    from harness.interpreters import Kind


@pytest.fixture(scope="session")
def harness(tmp_path_factory: pytest.TempPathFactory, scratch: Path) -> Harness:
    """The one object wiring base Python, wheelhouses, templates, clones, the
    local index and projects (``dev.py demo`` and the benchmarks use it too);
    the fixtures below are its parts."""
    return Harness(
        work=tmp_path_factory.mktemp("harness"),
        scratch=scratch,
        build_python=Path(sys.executable),
    )


@pytest.fixture(scope="session")
def harness_cache(harness: Harness) -> Path:
    """Cache of downloads, Poetry templates and locks (kept across sessions)."""
    return harness.cache_root


@pytest.fixture(scope="session")
def base_python(harness: Harness) -> Path:
    """The base CPython every throwaway interpreter is made from."""
    return harness.base_python


@pytest.fixture(scope="session")
def download_python(harness: Harness) -> str:
    """The interpreter ``pip download`` runs under (a current pip from its wheel,
    see ``harness.wheels.pip_runner``), so wheels match the base's tags."""
    return harness.download_python


@pytest.fixture(scope="session")
def plugin_build(harness: Harness) -> PluginBuild:
    """The repository's wheel, built once per session (or the build error)."""
    return harness.plugin


@pytest.fixture(scope="session")
def plugin_wheel(plugin_build: PluginBuild) -> Path:
    """The repository's wheel; a test that needs it fails when it does not build."""
    if plugin_build.wheel is None:
        pytest.fail(plugin_build.error)
    return plugin_build.wheel


@pytest.fixture(scope="session")
def wheelhouses(harness: Harness) -> dict[str, Path]:
    """Poetry version -> wheelhouse with Poetry's closure (at the committed
    constraints), pip, setuptools, wheel and the plugin's requirements
    (downloaded once, then cached)."""
    return harness.wheelhouses


@pytest.fixture(scope="session")
def pin_wheels(harness: Harness) -> list[Path]:
    """Wheels of the versions the fixture projects pin (one dir per pin)."""
    return harness.pin_wheels


@pytest.fixture(scope="session")
def find_links(harness: Harness) -> list[Path]:
    """Every wheel directory, for offline ``pip install --find-links``."""
    return harness.find_links


@pytest.fixture(
    scope="session",
    params=configured_poetry_versions(),
    ids=lambda v: f"poetry{v}",
    autouse=True,
)
def poetry_version(request: pytest.FixtureRequest) -> str:
    """Each Poetry version of $POETRY_ENV_AUDIT_TEST_POETRY in turn.

    Autouse: every integration test is parametrised by it, so the interpreter
    fixtures also work through ``request.getfixturevalue`` (pytest refuses a
    parametrised fixture that collection did not see).
    """
    return str(request.param)


@pytest.fixture(scope="session")
def wheelhouse(wheelhouses: dict[str, Path], poetry_version: str) -> Path:
    """The wheelhouse of the current Poetry version."""
    return wheelhouses[poetry_version]


@pytest.fixture(scope="session")
def local_index(harness: Harness) -> Iterator[str]:
    """URL (``http://127.0.0.1:PORT/simple/``) of a PEP 503 index of every
    downloaded wheel, served for the whole session."""
    with harness.serve() as url:
        yield url


@pytest.fixture(scope="session")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Session directory for interpreter clones (tmpfs when there is room),
    removed at the end of the session."""
    directory = open_scratch(scratch_root(tmp_path_factory.getbasetemp()))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def templates(harness: Harness) -> TemplateStore:
    """Interpreters with Poetry and the plugin, one per (kind, Poetry version),
    built lazily; tests get private clones of them."""
    return harness.templates


def _private(
    kind: Kind, templates: TemplateStore, poetry_version: str, scratch: Path
) -> Iterator[Interpreter]:
    interp = private_clone(templates.get(kind, poetry_version), scratch, kind)
    yield interp
    discard(interp)


@pytest.fixture
def system_poetry(
    templates: TemplateStore, poetry_version: str, scratch: Path
) -> Iterator[Interpreter]:
    """A private system-like interpreter (``sys.prefix == sys.base_prefix``) with
    Poetry and the plugin pip-installed into it; ``virtualenvs.create = false``."""
    yield from _private("system", templates, poetry_version, scratch)


@pytest.fixture
def venv_poetry(
    templates: TemplateStore, poetry_version: str, scratch: Path
) -> Iterator[Interpreter]:
    """A private venv with Poetry and the plugin; Poetry runs with
    ``VIRTUAL_ENV`` set to it, so it installs into its own environment."""
    yield from _private("venv", templates, poetry_version, scratch)


@pytest.fixture
def isolated_poetry(
    templates: TemplateStore, poetry_version: str, scratch: Path
) -> Iterator[Interpreter]:
    """A private venv with Poetry and the plugin, like pipx; projects get an
    in-project ``.venv`` made from it."""
    yield from _private("isolated", templates, poetry_version, scratch)


@pytest.fixture(params=["system_poetry", "venv_poetry", "isolated_poetry"])
def any_poetry(request: pytest.FixtureRequest) -> Interpreter:
    """Each kind of interpreter in turn (system, venv, isolated)."""
    interp: Interpreter = request.getfixturevalue(str(request.param))
    return interp


@pytest.fixture
def projects(tmp_path: Path, local_index: str, harness_cache: Path) -> Projects:
    """Fixture projects for this test: ``projects.create(name)``,
    ``projects.locked(name, interp)``."""
    root = tmp_path / "projects"
    root.mkdir()
    return Projects(root=root, index_url=local_index, cache_root=harness_cache)
