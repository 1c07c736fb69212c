from __future__ import annotations

# Session-level plumbing: ``Harness`` wires the whole chain (base Python,
# wheelhouses, templates, clones, local index, projects) once, for the pytest
# fixtures (tests/integration/conftest.py), ``scripts/dev.py demo`` and
# benchmarks/run.py alike.
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
from email.parser import HeaderParser
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from harness.index import build_simple_index
from harness.index import serve
from harness.interpreters import clone
from harness.interpreters import ensure_template
from harness.interpreters import pip_env
from harness.interpreters import resolve_base_python
from harness.interpreters import with_plugin
from harness.projects import REPO_ROOT
from harness.projects import lock_project
from harness.projects import make_project
from harness.projects import write_project
from harness.wheels import default_cache_root
from harness.wheels import ensure_sdists
from harness.wheels import ensure_wheels
from harness.wheels import python_minor

if TYPE_CHECKING:
    from collections.abc import Iterator
    from collections.abc import Mapping

    from harness.interpreters import Interpreter
    from harness.interpreters import Kind

POETRY_VERSIONS_ENV = "POETRY_ENV_AUDIT_TEST_POETRY"
PYTHON_ENV = "POETRY_ENV_AUDIT_TEST_PYTHON"
KEEP_ENV = "POETRY_ENV_AUDIT_TEST_KEEP"
SCRATCH_ENV = "POETRY_ENV_AUDIT_TEST_SCRATCH"
#: Set (to anything) to resolve Poetry's closure at the newest releases
#: instead of the committed constraints (``scripts/dev.py drift``).
UNPINNED_ENV = "POETRY_ENV_AUDIT_TEST_UNPINNED"
CONSTRAINTS_DIR = REPO_ROOT / "requirements" / "constraints"
SCRATCH_PREFIX = "poetry-env-audit-"
CLONE_PREFIX = "test-"
# Creating a file on this machine kind's disk costs ~0.4 ms (a 4,000-file
# site-packages copy: ~3 s); on tmpfs ~20 times less.  Clones go to tmpfs
# when it has room.
TMPFS = Path("/dev/shm")  # noqa: S108 - used through a private mkdtemp directory
TMPFS_MIN_FREE = 4 << 30
DEFAULT_POETRY = "2.5.1"
# Every Poetry version's closure also gets these (the index needs them too).
BASE_TOOLS = ["pip", "setuptools", "wheel"]
# Pins the fixture projects lock; downloaded one by one (they conflict).
FIXTURE_PINS = [
    "packaging==23.0",
    "idna==3.7",
    "shellingham==1.5.3",
    # swap-startup: a tomlkit Poetry 1.8.5 and 2.5.1 accept, below the newest
    "tomlkit==0.13.2",
    "six==1.15.0",
    "six==1.17.0",
    # guard-serialise: small pure wheels around shellingham 1.5.3
    "iniconfig==2.0.0",
    "tabulate==0.9.0",
    "colorama==0.4.6",
    "toolz==0.12.1",
    # guard-race: inside Poetry's pyproject-hooks>=1.0.0,<2, below the newest
    "pyproject-hooks==1.1.0",
    # lock-*: packages outside Poetry's closure, two versions each, many files
    "tzdata==2024.1",
    "tzdata==2025.2",
    "pytz==2024.1",
    "pytz==2025.2",
    "pygments==2.17.2",
    "pygments==2.19.1",
]
# Sdists (no wheel exists for these versions) that guard-race builds from
# source; the build backend, setuptools, comes from the Poetry wheelhouse.
FIXTURE_SDISTS = ["docopt==0.6.2", "termcolor==1.1.0", "pyperclip==1.8.2"]
# Fixtures with bad input on purpose are never locked by the harness, nor
# fixtures/realworld/ (committed locks: harness/realworld.py).
UNLOCKED_PREFIXES = ("bad-", "not-a-project", "realworld")


def configured_poetry_versions() -> list[str]:
    """``$POETRY_ENV_AUDIT_TEST_POETRY`` (comma list), default 2.5.1."""
    raw = os.environ.get(POETRY_VERSIONS_ENV, "") or DEFAULT_POETRY
    versions = [v.strip() for v in raw.split(",") if v.strip()]
    return list(dict.fromkeys(versions))


@dataclass(frozen=True)
class PluginBuild:
    """The repository's wheel, or why it could not be built."""

    wheel: Path | None
    error: str = ""

    def requirements(self) -> list[str]:
        return wheel_requirements(self.wheel) if self.wheel is not None else []


def build_repo_wheel(python: Path, dest: Path, repo: Path = REPO_ROOT) -> PluginBuild:
    """``python -m pip wheel --no-deps --no-build-isolation`` of *repo*: *python*
    must have poetry-core (the dev environment, or an interpreter with Poetry)."""
    dest.mkdir(parents=True, exist_ok=True)
    command = [str(python), "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    command += ["--no-index", "--quiet", "-w", str(dest), str(repo)]
    result = subprocess.run(command, capture_output=True, text=True, env=pip_env())
    wheels = sorted(dest.glob("poetry_env_audit-*.whl"))
    if result.returncode != 0 or not wheels:
        output = (result.stdout + result.stderr).strip()
        return PluginBuild(None, f"building the plugin wheel failed: {output[-2000:]}")
    return PluginBuild(wheels[-1])


def wheel_requirements(wheel: Path) -> list[str]:
    """Requires-Dist of a wheel, without the ones only extras need."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        headers = HeaderParser().parsestr(archive.read(name).decode())
    requires = headers.get_all("Requires-Dist") or []
    return [str(r) for r in requires if "extra ==" not in str(r)]


def constraints_file(poetry_version: str, minor: str) -> Path:
    """The committed pins of Poetry *poetry_version*'s closure on Python
    *minor* (written by ``python3 scripts/dev.py pin``)."""
    return CONSTRAINTS_DIR / f"poetry-{poetry_version}-py{minor}.txt"


def wheelhouse_constraints(poetry_version: str, python: str) -> Path | None:
    """The constraints a wheelhouse resolves against: the committed file, or
    none when ``$POETRY_ENV_AUDIT_TEST_UNPINNED`` is set or there is no file
    for that Poetry and Python (a note says so: ``dev.py test`` requires one
    for every leg of its matrix)."""
    if os.environ.get(UNPINNED_ENV):
        return None
    path = constraints_file(poetry_version, python_minor(python))
    if path.is_file():
        return path
    sys.stderr.write(
        f"poetry-env-audit tests: no {path.relative_to(REPO_ROOT)}: Poetry "
        f"{poetry_version}'s closure resolves at the newest releases\n"
    )
    return None


def poetry_wheelhouse(
    poetry_version: str,
    *,
    python: str,
    cache_root: Path,
    plugin: PluginBuild,
    constraints: Path | None = None,
) -> Path:
    requirements = [f"poetry=={poetry_version}", *BASE_TOOLS, *plugin.requirements()]
    return ensure_wheels(
        requirements, python=python, cache_root=cache_root, constraints=constraints
    )


def pin_wheelhouses(*, python: str, cache_root: Path) -> list[Path]:
    return [
        ensure_wheels([pin], python=python, cache_root=cache_root, no_deps=True)
        for pin in FIXTURE_PINS
    ] + [ensure_sdists(FIXTURE_SDISTS, python=python, cache_root=cache_root)]


@dataclass
class TemplateStore:
    """Per-session templates: a cached Poetry template (built once per cache)
    plus, per session, a clone with this session's plugin wheel installed."""

    base_python: Path
    wheelhouses: dict[str, Path]
    find_links: list[Path]
    plugin: PluginBuild
    cache_root: Path
    session_dir: Path
    plugin_errors: dict[tuple[str, str], str] = field(default_factory=dict)
    _built: dict[tuple[str, str], Interpreter] = field(default_factory=dict)

    def get(self, kind: Kind, poetry_version: str) -> Interpreter:
        key = (kind, poetry_version)
        if key not in self._built:
            self._built[key] = self._build(kind, poetry_version)
        return self._built[key]

    def plain(self, kind: Kind, poetry_version: str) -> Interpreter:
        """The cached template without the plugin (clone it before use)."""
        return ensure_template(
            kind,
            base_python=self.base_python,
            poetry_version=poetry_version,
            wheelhouse=self.wheelhouses[poetry_version],
            root=self.cache_root / "templates",
        )

    def plugin_problem(self, kind: Kind, poetry_version: str) -> str:
        """Why the plugin is missing from that template ("" if it is there)."""
        if self.plugin.wheel is None:
            return self.plugin.error
        return self.plugin_errors.get((kind, poetry_version), "")

    def _build(self, kind: Kind, poetry_version: str) -> Interpreter:
        template = self.plain(kind, poetry_version)
        if self.plugin.wheel is None:
            return template
        dest = self.session_dir / f"{kind}-poetry{poetry_version}"
        try:
            return with_plugin(template, dest, self.plugin.wheel, self.find_links)
        except RuntimeError as error:
            self.plugin_errors[(kind, poetry_version)] = (
                f"installing the plugin: {error}"
            )
            shutil.rmtree(dest, ignore_errors=True)
            return template


def scratch_root(fallback: Path) -> Path:
    """Where interpreter clones live: ``$POETRY_ENV_AUDIT_TEST_SCRATCH``, else
    tmpfs (``/dev/shm``) with at least 4 GiB free, else *fallback*."""
    configured = os.environ.get(SCRATCH_ENV)
    if configured:
        return Path(configured)
    try:
        usage = shutil.disk_usage(TMPFS)
    except OSError:
        return fallback
    if usage.free >= TMPFS_MIN_FREE and os.access(TMPFS, os.W_OK):
        return TMPFS
    return fallback


def open_scratch(root: Path) -> Path:
    """A fresh directory for this process under *root*; directories left by
    dead processes (crashed sessions) are removed first."""
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob(SCRATCH_PREFIX + "*"):
        pid = stale.name[len(SCRATCH_PREFIX) :].split("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-", dir=root))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def private_clone(template: Interpreter, scratch: Path, kind: Kind) -> Interpreter:
    """A per-test clone of *template* in a new directory under *scratch*."""
    parent = Path(tempfile.mkdtemp(prefix=CLONE_PREFIX, dir=scratch))
    return clone(template, parent / kind)


def discard(interp: Interpreter) -> None:
    """Remove a per-test clone and its state dir, both in the directory
    ``private_clone`` made (unless $POETRY_ENV_AUDIT_TEST_KEEP is set)."""
    if os.environ.get(KEEP_ENV):
        return
    if not interp.prefix.parent.name.startswith(CLONE_PREFIX):
        raise ValueError(f"{interp.prefix} was not made by private_clone")
    shutil.rmtree(interp.prefix.parent, ignore_errors=True)


@dataclass(frozen=True)
class Projects:
    """Fixture projects for one test, under *root*."""

    root: Path
    index_url: str
    cache_root: Path

    def create(self, fixture: str, name: str | None = None) -> Path:
        """A copy of ``fixtures/<fixture>`` (index URL filled in), not locked."""
        return make_project(fixture, self.root / (name or fixture), self.index_url)

    def write(
        self, name: str, dependencies: Mapping[str, str], *, python: str = ">=3.9"
    ) -> Path:
        """A new non-package project depending on *dependencies*, not locked."""
        return write_project(
            self.root / name, name, dependencies, self.index_url, python=python
        )

    def lock(self, interp: Interpreter, project: Path) -> Path:
        """``poetry lock`` with *interp* (cached); returns the lock's path."""
        return lock_project(
            interp, project, index_url=self.index_url, cache_root=self.cache_root
        )

    def locked(
        self, fixture: str, interp: Interpreter, name: str | None = None
    ) -> Path:
        """``create`` then ``lock``, except for bad-input fixtures."""
        project = self.create(fixture, name)
        if not fixture.startswith(UNLOCKED_PREFIXES):
            self.lock(interp, project)
        return project


class Harness:
    """The whole chain, wired once: base Python -> wheelhouses (Poetry's
    closure at the committed constraints, the fixture pins, *extra_dirs*) ->
    cached templates -> per-session templates with the plugin -> private
    clones; the local index serving every wheel; fixture projects.

    Everything is made on first use.  *work* holds this run's own files (the
    plugin wheel, the index tree); *scratch* the interpreter clones (tmpfs
    when there is room); both are this run's alone.  *build_python* builds
    the plugin wheel: it needs poetry-core (the dev venv has it).
    """

    def __init__(
        self,
        *,
        work: Path,
        scratch: Path,
        build_python: Path,
        poetry_versions: list[str] | None = None,
        python_spec: str | None = None,
        cache_root: Path | None = None,
        extra_dirs: list[Path] | None = None,
    ) -> None:
        self.work = work
        self.scratch = scratch
        self.build_python = build_python
        self.poetry_versions = poetry_versions or configured_poetry_versions()
        self.python_spec = python_spec or os.environ.get(PYTHON_ENV)
        self.cache_root = cache_root or default_cache_root()
        self.extra_dirs = list(extra_dirs or [])
        self.index_url = ""

    @classmethod
    @contextmanager
    def session(
        cls,
        *,
        build_python: Path,
        poetry_versions: list[str] | None = None,
        extra_dirs: list[Path] | None = None,
        fallback_scratch: Path | None = None,
        cache_root: Path | None = None,
    ) -> Iterator[Harness]:
        """A Harness with a fresh scratch dir (its work dir inside), removed
        at the end (unless ``$POETRY_ENV_AUDIT_TEST_KEEP`` is set)."""
        fallback = fallback_scratch or Path(tempfile.gettempdir())
        scratch = open_scratch(scratch_root(fallback))
        try:
            yield cls(
                work=scratch / "work",
                scratch=scratch,
                build_python=build_python,
                poetry_versions=poetry_versions,
                extra_dirs=extra_dirs,
                cache_root=cache_root,
            )
        finally:
            if not os.environ.get(KEEP_ENV):
                shutil.rmtree(scratch, ignore_errors=True)

    @cached_property
    def base_python(self) -> Path:
        """The base CPython every throwaway interpreter is made from."""
        return resolve_base_python(self.python_spec)

    @property
    def download_python(self) -> str:
        """The interpreter ``pip download`` runs under, so wheels match its tags."""
        return str(self.base_python)

    @cached_property
    def plugin(self) -> PluginBuild:
        """The repository's wheel, built once (or the build error)."""
        return build_repo_wheel(self.build_python, self.work / "plugin-wheel")

    def require_plugin(self) -> Path:
        if self.plugin.wheel is None:
            raise RuntimeError(self.plugin.error)
        return self.plugin.wheel

    @cached_property
    def wheelhouses(self) -> dict[str, Path]:
        """Poetry version -> wheelhouse with Poetry's closure, pip, setuptools,
        wheel and the plugin's requirements (downloaded once, then cached)."""
        return {
            version: poetry_wheelhouse(
                version,
                python=self.download_python,
                cache_root=self.cache_root,
                plugin=self.plugin,
                constraints=wheelhouse_constraints(version, self.download_python),
            )
            for version in self.poetry_versions
        }

    @cached_property
    def pin_wheels(self) -> list[Path]:
        """Wheels of the versions the fixture projects pin (one dir per pin)."""
        return pin_wheelhouses(python=self.download_python, cache_root=self.cache_root)

    @cached_property
    def find_links(self) -> list[Path]:
        """Every wheel directory, for offline ``pip install --find-links``."""
        return [*self.wheelhouses.values(), *self.pin_wheels, *self.extra_dirs]

    @cached_property
    def templates(self) -> TemplateStore:
        return TemplateStore(
            base_python=self.base_python,
            wheelhouses=self.wheelhouses,
            find_links=self.find_links,
            plugin=self.plugin,
            cache_root=self.cache_root,
            session_dir=self.scratch / "templates",
        )

    @contextmanager
    def serve(self, *, latency: float = 0.0) -> Iterator[str]:
        """Serve every wheel directory as a PEP 503 index on 127.0.0.1; sets
        and yields :attr:`index_url`."""
        root = self.work / "index"
        build_simple_index(self.find_links, root)
        with serve(root, latency=latency) as server:
            self.index_url = server.url
            try:
                yield server.url
            finally:
                self.index_url = ""

    def interpreter(
        self, kind: Kind, poetry_version: str | None = None, *, plugin: bool = True
    ) -> Interpreter:
        """A private clone (``discard`` removes it): of the session template
        with the plugin, or of the cached template without it."""
        version = poetry_version or self.poetry_versions[0]
        if plugin:
            template = self.templates.get(kind, version)
            problem = self.templates.plugin_problem(kind, version)
            if problem or not template.has_plugin:
                raise RuntimeError(f"the plugin is not installed: {problem}")
        else:
            template = replace(self.templates.plain(kind, version), has_plugin=False)
        return private_clone(template, self.scratch, kind)

    def projects(self, root: Path) -> Projects:
        """Fixture projects under *root*, served by :meth:`serve`'s index."""
        if not self.index_url:
            raise RuntimeError("Harness.projects needs the index: use Harness.serve()")
        root.mkdir(parents=True, exist_ok=True)
        return Projects(root=root, index_url=self.index_url, cache_root=self.cache_root)
