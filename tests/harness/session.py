from __future__ import annotations

# Session-level plumbing shared by tests/integration/conftest.py and
# scripts/dev.py: the plugin wheel, the wheelhouses, per-session templates
# with the plugin installed, and fixture projects.
import os
import shutil
import subprocess
import tempfile
import zipfile
from dataclasses import dataclass
from dataclasses import field
from email.parser import HeaderParser
from pathlib import Path
from typing import TYPE_CHECKING

from harness.interpreters import clone
from harness.interpreters import ensure_template
from harness.interpreters import pip_env
from harness.interpreters import with_plugin
from harness.projects import REPO_ROOT
from harness.projects import lock_project
from harness.projects import make_project
from harness.wheels import ensure_sdists
from harness.wheels import ensure_wheels

if TYPE_CHECKING:
    from harness.interpreters import Interpreter
    from harness.interpreters import Kind

POETRY_VERSIONS_ENV = "POETRY_ENV_AUDIT_TEST_POETRY"
PYTHON_ENV = "POETRY_ENV_AUDIT_TEST_PYTHON"
KEEP_ENV = "POETRY_ENV_AUDIT_TEST_KEEP"
SCRATCH_ENV = "POETRY_ENV_AUDIT_TEST_SCRATCH"
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
# Fixtures with bad input on purpose are never locked by the harness.
UNLOCKED_PREFIXES = ("bad-", "not-a-project")


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


def poetry_wheelhouse(
    poetry_version: str, *, python: str, cache_root: Path, plugin: PluginBuild
) -> Path:
    requirements = [f"poetry=={poetry_version}", *BASE_TOOLS, *plugin.requirements()]
    return ensure_wheels(requirements, python=python, cache_root=cache_root)


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

    def plugin_problem(self, kind: Kind, poetry_version: str) -> str:
        """Why the plugin is missing from that template ("" if it is there)."""
        if self.plugin.wheel is None:
            return self.plugin.error
        return self.plugin_errors.get((kind, poetry_version), "")

    def _build(self, kind: Kind, poetry_version: str) -> Interpreter:
        template = ensure_template(
            kind,
            base_python=self.base_python,
            poetry_version=poetry_version,
            wheelhouse=self.wheelhouses[poetry_version],
            root=self.cache_root / "templates",
        )
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
