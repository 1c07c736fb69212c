from __future__ import annotations

# Fixture projects: copied from fixtures/<name>/ with the index URL filled in,
# locked against the local index, locks cached across sessions.
import hashlib
import os
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from harness.poetry import describe
from harness.poetry import run_poetry
from harness.poetry import run_python
from harness.wheels import default_cache_root

if TYPE_CHECKING:
    from collections.abc import Mapping

    from harness.interpreters import Interpreter

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES_DIR = REPO_ROOT / "fixtures"
PLACEHOLDER = "@INDEX_URL@"
ORIGIN_PLACEHOLDER = "@INDEX_ORIGIN@"
LOCK = "poetry.lock"
_SKIPPED = {".venv", ".poetry", "__pycache__", LOCK}
_CONTENT_HASH = re.compile(r'^content-hash = "[0-9a-f]*"$', re.MULTILINE)
# Poetry 1.8 and 2.x both have Locker._get_content_hash (a private method):
# used only to re-stamp a cached lock whose index URL (port) changed.
_HASH_SCRIPT = (
    "import sys\nfrom pathlib import Path\nfrom poetry.factory import Factory\n"
    "poetry = Factory().create_poetry(Path(sys.argv[1]), disable_plugins=True)\n"
    "print(poetry.locker._get_content_hash())\n"
)


class LockError(RuntimeError):
    pass


def fixture_names() -> list[str]:
    return sorted(d.name for d in FIXTURES_DIR.iterdir() if d.is_dir())


def make_project(fixture: str, dest: Path, index_url: str) -> Path:
    """Copy ``fixtures/<fixture>/`` to *dest*, replacing ``@INDEX_URL@`` in
    every text file with *index_url*.  Returns *dest*."""
    source = FIXTURES_DIR / fixture
    if not source.is_dir():
        raise FileNotFoundError(f"no fixture {fixture!r} in {FIXTURES_DIR}")
    shutil.copytree(source, dest)
    for path in sorted(p for p in dest.rglob("*") if p.is_file()):
        _fill_placeholder(path, index_url)
    return dest


def write_project(
    dest: Path,
    name: str,
    dependencies: Mapping[str, str],
    index_url: str,
    *,
    python: str = ">=3.9",
) -> Path:
    """A non-package project (``[tool.poetry]``, read by Poetry 1.8 and 2.x)
    depending on *dependencies* (name -> constraint), with the local index
    as its primary source.  Returns *dest*."""
    dest.mkdir(parents=True)
    deps = "\n".join(f'{k} = "{v}"' for k, v in sorted(dependencies.items()))
    (dest / "pyproject.toml").write_text(
        "[tool.poetry]\n"
        f'name = "{name}"\nversion = "0.1.0"\ndescription = ""\n'
        'authors = ["tests"]\npackage-mode = false\n\n'
        f'[tool.poetry.dependencies]\npython = "{python}"\n{deps}\n\n'
        '[[tool.poetry.source]]\nname = "local"\n'
        f'url = "{index_url}"\npriority = "primary"\n',
        encoding="utf-8",
    )
    return dest


def _fill_placeholder(path: Path, index_url: str) -> None:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return
    if PLACEHOLDER in text:
        path.write_text(text.replace(PLACEHOLDER, index_url), encoding="utf-8")


def origin(url: str) -> str:
    """``http://127.0.0.1:PORT`` of an index URL."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def project_digest(project: Path, index_url: str) -> str:
    """Hash of a project's files (lock and venvs left out), index URL
    neutralised, so the same fixture gives the same digest every session."""
    digest = hashlib.sha256()
    here = origin(index_url)
    for path in _project_files(project):
        digest.update(path.relative_to(project).as_posix().encode() + b"\0")
        data = path.read_bytes().replace(here.encode(), ORIGIN_PLACEHOLDER.encode())
        digest.update(hashlib.sha256(data).digest())
    return digest.hexdigest()


def _project_files(project: Path) -> list[Path]:
    files: list[Path] = []
    for root, dirs, names in os.walk(project):
        dirs[:] = sorted(d for d in dirs if d not in _SKIPPED)
        files += [Path(root) / n for n in sorted(names) if n not in _SKIPPED]
    return files


def lock_args(interp: Interpreter) -> list[str]:
    """``lock --no-update`` on Poetry 1.x (else it refreshes), ``lock`` on 2.x."""
    return ["lock", "--no-update"] if interp.poetry_major < 2 else ["lock"]


def lock_project(
    interp: Interpreter,
    project: Path,
    *,
    index_url: str,
    cache_root: Path | None = None,
    state_dir: Path | None = None,
) -> Path:
    """Make sure *project* has a ``poetry.lock``; returns its path.

    A committed lock (bad-input fixtures) is left alone.  Otherwise a lock
    cached for (project digest, Poetry version, Python minor) is restored and
    re-stamped, or ``poetry lock`` runs and its result is cached.
    """
    lock = project / LOCK
    if lock.exists():
        return lock
    root = cache_root if cache_root is not None else default_cache_root()
    key = f"{project_digest(project, index_url)[:24]}-poetry{interp.poetry_version}"
    cached = root / "locks" / f"{key}-py{interp.python_minor}" / LOCK
    if cached.is_file() and _restore(interp, cached, project, index_url, state_dir):
        return lock
    result = run_poetry(interp, lock_args(interp), cwd=project, state_dir=state_dir)
    if result.returncode != 0 or not lock.is_file():
        raise LockError(describe(result))
    _store(lock, cached, index_url)
    return lock


def _store(lock: Path, cached: Path, index_url: str) -> None:
    text = lock.read_text(encoding="utf-8").replace(
        origin(index_url), ORIGIN_PLACEHOLDER
    )
    cached.parent.mkdir(parents=True, exist_ok=True)
    partial = cached.with_name(f"{LOCK}.{os.getpid()}")
    partial.write_text(text, encoding="utf-8")
    partial.replace(cached)


def _restore(
    interp: Interpreter,
    cached: Path,
    project: Path,
    index_url: str,
    state_dir: Path | None,
) -> bool:
    lock = project / LOCK
    text = cached.read_text(encoding="utf-8")
    lock.write_text(
        text.replace(ORIGIN_PLACEHOLDER, origin(index_url)), encoding="utf-8"
    )
    result = run_python(
        interp, ["-c", _HASH_SCRIPT, str(project)], cwd=project, state_dir=state_dir
    )
    content_hash = result.stdout.strip()
    if result.returncode != 0 or not re.fullmatch(r"[0-9a-f]{64}", content_hash):
        lock.unlink()
        return False
    text = lock.read_text(encoding="utf-8")
    stamped = _CONTENT_HASH.sub(f'content-hash = "{content_hash}"', text, count=1)
    lock.write_text(stamped, encoding="utf-8")
    return True
