from __future__ import annotations

# Real-world-shaped fixture projects (fixtures/realworld/): the dependency
# sets of a web app, a CLI, a Poetry plugin under development, a library with
# extras, one with Python-version markers (their locks committed) and one
# with a git dependency (locked in the test, from a repository it makes).
#
# Every version they resolve is pinned in fixtures/realworld/pins.txt; the
# committed locks were made by ``python3 scripts/dev.py realworld-lock``
# against a local index holding exactly those pins (so they cannot drift),
# by Poetry 2.5.1 (lock format 2.1: poetry.lock) and Poetry 1.8.5 (format
# 2.0: poetry-1.8.lock).  The projects' source URL is fixed
# (FIXED_INDEX_URL): the tests only plan from these locks (env-audit, dry
# runs), which never reach an index, and the content hash stays valid.
import re
import shutil
from typing import TYPE_CHECKING

from harness.poetry import describe
from harness.poetry import run_poetry
from harness.poetry import run_python
from harness.projects import _HASH_SCRIPT
from harness.projects import FIXTURES_DIR
from harness.projects import LOCK
from harness.projects import lock_args
from harness.projects import origin
from harness.wheels import _ensure
from harness.wheels import ensure_wheels

if TYPE_CHECKING:
    from pathlib import Path

    from harness.interpreters import Interpreter
    from harness.session import Harness

REALWORLD_DIR = FIXTURES_DIR / "realworld"
PINS_FILE = REALWORLD_DIR / "pins.txt"
#: Projects whose locks are committed, in both formats.
LOCKED_PROJECTS = ("webapp", "cli", "poetry-plugin", "extras", "markers")
#: Locked in the test: its git dependency is a repository the test makes.
GIT_PROJECT = "git"
GIT_PACKAGE = "gitdep"  # fixtures/realworld/gitdep: the repository's content
#: The pins the git project resolves (pure wheels, fetched for any Python).
GIT_PINS = ["tomlkit==0.12.3", "platformdirs==4.2.0", "shellingham==1.5.4"]
#: Where the committed projects say their index is; nothing listens there and
#: nothing the tests run asks it (planning from a lock needs no index).
FIXED_INDEX_URL = "http://127.0.0.1:9/simple/"
#: Lock format -> (file in the fixture, the Poetry that writes it).
LOCK_FILES = {"2.1": ("poetry.lock", "2.5.1"), "2.0": ("poetry-1.8.lock", "1.8.5")}
GIT_URL_PLACEHOLDER = "@GIT_URL@"
INDEX_PLACEHOLDER = "@INDEX_URL@"


def pins() -> list[str]:
    """Every ``name==version`` the realworld fixtures resolve."""
    lines = PINS_FILE.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def ensure_realworld_wheels(*, python: str, cache_root: Path) -> list[Path]:
    """Directories with one wheel of every pin (CPython 3.9, manylinux, or
    pure): enough metadata for Poetry to lock; never installed.  Two pins of
    one project (urllib3 for Python < 3.10 and >= 3.10) go to separate
    downloads, as pip resolves each call as one set."""
    args = ["--only-binary=:all:", "--no-deps", "--python-version", "3.9"]
    args += ["--implementation", "cp", "--abi", "cp39", "--abi", "abi3"]
    args += ["--abi", "none", "--platform", "manylinux2014_x86_64"]
    args += ["--platform", "manylinux_2_17_x86_64", "--platform", "any"]
    batches: list[list[str]] = []
    for pin in pins():
        name = pin.split("==")[0]
        batch = next(
            (b for b in batches if all(p.split("==")[0] != name for p in b)), None
        )
        if batch is None:
            batch = []
            batches.append(batch)
        batch.append(pin)
    return [
        _ensure("wheels-realworld", batch, python, cache_root, args)
        for batch in batches
    ]


def ensure_git_wheels(*, python: str, cache_root: Path) -> Path:
    """The few pure wheels the git project's lock needs."""
    return ensure_wheels(GIT_PINS, python=python, cache_root=cache_root, no_deps=True)


def copy_project(name: str, dest: Path, lock_format: str) -> Path:
    """``fixtures/realworld/<name>`` at *dest*, its lock of *lock_format*
    (``"2.1"`` or ``"2.0"``) as ``poetry.lock``, the other one left out."""
    wanted, _ = LOCK_FILES[lock_format]
    others = [f for f, _ in LOCK_FILES.values() if f != wanted]
    shutil.copytree(REALWORLD_DIR / name, dest, ignore=shutil.ignore_patterns(*others))
    if wanted != LOCK:
        (dest / wanted).rename(dest / LOCK)
    return dest


# Run by the interpreter under test: its Poetry's own git library (dulwich)
# makes the repository, so no git program is needed (the Debian root has none).
_GIT_SCRIPT = """\
import sys
from dulwich import porcelain
from dulwich.repo import Repo

repo = Repo.init(sys.argv[1])
repo.refs.set_symbolic_ref(b"HEAD", b"refs/heads/main")
porcelain.add(repo, [sys.argv[1] + "/" + name for name in sys.argv[2:]])
who = b"poetry-env-audit tests <tests@invalid>"
porcelain.commit(repo, message=b"gitdep 0.3.0", author=who, committer=who)
"""


def make_git_repository(interp: Interpreter, dest: Path) -> str:
    """A git repository of ``fixtures/realworld/gitdep`` at *dest* (one
    commit on ``main``, made with dulwich by *interp*); its ``file://`` URL."""
    shutil.copytree(REALWORLD_DIR / GIT_PACKAGE, dest)
    files = sorted(
        p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()
    )
    result = run_python(interp, ["-c", _GIT_SCRIPT, str(dest), *files], cwd=dest)
    if result.returncode != 0:
        raise RuntimeError(f"making the git repository: {describe(result)}")
    return dest.resolve().as_uri()


def git_project(dest: Path, *, index_url: str, repository_url: str) -> Path:
    """The git project at *dest*, its placeholders filled in, not locked."""
    shutil.copytree(REALWORLD_DIR / GIT_PROJECT, dest)
    path = dest / "pyproject.toml"
    text = path.read_text(encoding="utf-8")
    text = text.replace(INDEX_PLACEHOLDER, index_url)
    path.write_text(text.replace(GIT_URL_PLACEHOLDER, repository_url), encoding="utf-8")
    return dest


def relock(interp: Interpreter, project: Path, index_url: str) -> str:
    """``poetry lock`` of *project* (whose source is FIXED_INDEX_URL) against
    *index_url*; the lock is written back naming FIXED_INDEX_URL, its content
    hash computed by the same Poetry.  Returns the lock's text."""
    pyproject = project / "pyproject.toml"
    fixed = pyproject.read_text(encoding="utf-8")
    if FIXED_INDEX_URL not in fixed:
        raise ValueError(f"{pyproject} does not name {FIXED_INDEX_URL}")
    (project / LOCK).unlink(missing_ok=True)
    pyproject.write_text(fixed.replace(FIXED_INDEX_URL, index_url), encoding="utf-8")
    result = run_poetry(interp, lock_args(interp), cwd=project, timeout=1800)
    pyproject.write_text(fixed, encoding="utf-8")
    if result.returncode != 0:
        raise RuntimeError(f"locking {project.name}: {describe(result)}")
    text = (project / LOCK).read_text(encoding="utf-8")
    text = text.replace(origin(index_url), origin(FIXED_INDEX_URL))
    # Descriptions say nothing the tests read, and some name hosts of the
    # package registry (no such name goes into the repository).
    text = re.sub(r'^description = ".*"$', 'description = ""', text, flags=re.M)
    (project / LOCK).write_text(text, encoding="utf-8")
    hashed = run_python(interp, ["-c", _HASH_SCRIPT, str(project)], cwd=project)
    content_hash = hashed.stdout.strip()
    if hashed.returncode != 0 or len(content_hash) != 64:
        raise RuntimeError(f"content hash of {project.name}: {describe(hashed)}")
    lines = text.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if line.startswith("content-hash = "):
            lines[i] = f'content-hash = "{content_hash}"\n'
    return "".join(lines)


def regenerate(
    harness: Harness, names: tuple[str, ...] = LOCKED_PROJECTS
) -> list[Path]:
    """Rewrite every committed lock of *names* (``dev.py realworld-lock``):
    the pins served alone as the index, each format by its Poetry."""
    from harness.index import build_simple_index
    from harness.index import serve

    wheels = ensure_realworld_wheels(
        python=harness.download_python, cache_root=harness.cache_root
    )
    root = harness.work / "realworld-index"
    build_simple_index(wheels, root)
    written: list[Path] = []
    with serve(root) as server:
        for lock_format, (filename, version) in LOCK_FILES.items():
            interp = harness.interpreter("system", version, plugin=False)
            for name in names:
                work = harness.work / f"realworld-{lock_format}" / name
                shutil.rmtree(work, ignore_errors=True)
                work.parent.mkdir(parents=True, exist_ok=True)
                shutil.copytree(
                    REALWORLD_DIR / name,
                    work,
                    ignore=shutil.ignore_patterns(*(f for f, _ in LOCK_FILES.values())),
                )
                text = relock(interp, work, server.url)
                target = REALWORLD_DIR / name / filename
                target.write_text(text, encoding="utf-8")
                written.append(target)
    return written
