from __future__ import annotations

# Download wheels (and sdists) once, cache them on disk, never touch the
# network again for the same request.
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

CACHE_ENV = "POETRY_ENV_AUDIT_TEST_CACHE"
STAMP = ".complete.json"
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def default_cache_root() -> Path:
    """``$POETRY_ENV_AUDIT_TEST_CACHE`` or ``~/.cache/poetry-env-audit-tests``."""
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured)
    return Path.home() / ".cache" / "poetry-env-audit-tests"


@cache
def python_minor(python: str) -> str:
    """``"3.11"`` for the interpreter at *python*."""
    code = "import sys; print('%d.%d' % sys.version_info[:2])"
    out = subprocess.run(
        [python, "-c", code], check=True, capture_output=True, text=True
    )
    return out.stdout.strip()


def requirement_name(requirement: str) -> str:
    """The project name a PEP 508 requirement string starts with."""
    match = _NAME.match(requirement)
    if match is None:
        raise ValueError(f"not a requirement: {requirement!r}")
    return match.group(1)


def cache_key(
    kind: str, requirements: list[str], minor: str, constraints: str = ""
) -> str:
    """Directory name of a download: the constraints' text is part of it, so
    changed pins download again."""
    data: dict[str, object] = {
        "kind": kind,
        "python": minor,
        "requirements": sorted(requirements),
    }
    if constraints:
        data["constraints"] = hashlib.sha256(constraints.encode()).hexdigest()
    payload = json.dumps(data, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def ensure_wheels(
    requirements: list[str],
    *,
    python: str,
    cache_root: Path | None = None,
    no_deps: bool = False,
    constraints: Path | None = None,
    platform: str | None = None,
) -> Path:
    """A directory holding wheels for *requirements* (with their dependencies
    unless *no_deps*) for *python*'s version and platform, resolved within
    *constraints* (a pip constraints file) when given.

    Downloads at most once per (sorted requirements, python major.minor,
    constraints): a stamp file marks a complete download, later calls do no
    network at all.  Requirements that conflict (two pins of one project)
    need separate calls.  A project with no wheel for that Python (zstandard
    on 3.15) is downloaded as an sdist and built into a wheel there, once.
    *platform* (a wheel platform tag such as ``macosx_11_0_arm64``) fetches
    another platform's wheels (no dependencies): for locking only, as a
    universal lock needs the metadata of every platform's requirements.
    """
    args = ["--only-binary=:all:"] + (["--no-deps"] if no_deps or platform else [])
    kind = "wheels-nodeps" if no_deps else "wheels"
    if platform:
        args += ["--platform", platform]
        kind = f"wheels-{platform}"
    return _ensure(kind, requirements, python, cache_root, args, constraints)


def ensure_sdists(
    requirements: list[str], *, python: str, cache_root: Path | None = None
) -> Path:
    """A directory holding the sdists of *requirements* (no dependencies).

    For build-from-source tests: the build backends those sdists need
    (setuptools, wheel, ...) must be put in the index as wheels separately.
    """
    names = ",".join(requirement_name(r) for r in requirements)
    args = ["--no-deps", f"--no-binary={names}"]
    return _ensure("sdists", requirements, python, cache_root, args)


def _ensure(
    kind: str,
    requirements: list[str],
    python: str,
    cache_root: Path | None,
    pip_args: list[str],
    constraints: Path | None = None,
) -> Path:
    minor = python_minor(python)
    root = cache_root if cache_root is not None else default_cache_root()
    pins = constraints.read_text(encoding="utf-8") if constraints else ""
    dest = root / kind / cache_key(kind, requirements, minor, pins)
    if (dest / STAMP).is_file():
        return dest
    runner = pip_runner(python, root)
    if constraints is not None:
        pip_args = [*pip_args, "--constraint", str(constraints)]
    _download(kind, requirements, runner, minor, dest, pip_args)
    return dest


def _download(
    kind: str,
    requirements: list[str],
    runner: list[str],
    minor: str,
    dest: Path,
    pip_args: list[str],
) -> None:
    partial = dest.with_name(f"{dest.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    sys.stderr.write(
        f"poetry-env-audit tests: downloading {kind} for Python {minor}: "
        f"{' '.join(sorted(requirements))} -> {dest}\n"
    )
    command = [*runner, "download"]
    command += ["--disable-pip-version-check", "--quiet", "--dest", str(partial)]
    result = subprocess.run(
        [*command, *pip_args, *requirements], capture_output=True, text=True
    )
    if result.returncode != 0 and "--only-binary=:all:" in pip_args:
        # Some project has no wheel for this Python: take its sdist, build it.
        sources = [a for a in pip_args if a != "--only-binary=:all:"]
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        result = subprocess.run(
            [*command, "--prefer-binary", *sources, *requirements],
            capture_output=True,
            text=True,
        )
        if result.returncode == 0:
            _build_sdists(runner, partial)
    if result.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        raise RuntimeError(f"pip download failed:\n{result.stdout}{result.stderr}")
    stamp = {"python": minor, "requirements": sorted(requirements), "kind": kind}
    (partial / STAMP).write_text(json.dumps(stamp, indent=1) + "\n")
    _publish(partial, dest)


def _build_sdists(runner: list[str], directory: Path) -> None:
    """Replace every sdist in *directory* by a wheel built from it (its build
    requirements come from the index, like the download itself)."""
    for sdist in [p for p in distribution_files(directory) if p.suffix != ".whl"]:
        sys.stderr.write(f"poetry-env-audit tests: building a wheel of {sdist.name}\n")
        command = [*runner, "wheel", "--disable-pip-version-check", "--quiet"]
        command += ["--no-deps", "--wheel-dir", str(directory), str(sdist)]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(
                f"building {sdist.name} failed:\n{result.stdout}{result.stderr}"
            )
        sdist.unlink()


def pip_runner(python: str, cache_root: Path) -> list[str]:
    """Command prefix running a current pip under *python*, straight from pip's
    wheel (downloaded once per Python minor by the running interpreter's pip).

    The pip an interpreter ships can be old: pip 23.0 of CPython 3.9.18
    backtracks for many minutes over Poetry's dependencies, pip 26 resolves
    them in seconds.  *python* itself needs no pip at all.
    """
    minor = python_minor(python)
    dest = cache_root / "pip" / minor
    if not (dest / STAMP).is_file():
        partial = dest.with_name(f"{minor}.partial-{os.getpid()}")
        shutil.rmtree(partial, ignore_errors=True)
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"]
        command += ["--only-binary=:all:", f"--python-version={minor}"]
        result = subprocess.run(
            [*command, "--dest", str(partial), "pip"], capture_output=True, text=True
        )
        if result.returncode != 0:
            raise RuntimeError(f"pip download pip failed:\n{result.stderr}")
        (partial / STAMP).write_text(json.dumps({"python": minor}) + "\n")
        _publish(partial, dest)
    wheel = find_wheel(dest, "pip")
    if wheel is None:
        raise RuntimeError(f"no pip wheel in {dest}")
    return [python, str(wheel / "pip")]


def _publish(partial: Path, dest: Path) -> None:
    """Move a finished download into place; another process may have won."""
    if dest.exists() and not (dest / STAMP).is_file():
        shutil.rmtree(dest, ignore_errors=True)
    try:
        partial.rename(dest)
    except OSError:
        if not (dest / STAMP).is_file():
            raise
        shutil.rmtree(partial, ignore_errors=True)


def distribution_files(directory: Path) -> list[Path]:
    """The wheels and sdists in *directory*, sorted by name."""
    suffixes = (".whl", ".tar.gz", ".zip", ".tar.bz2")
    return sorted(p for p in directory.iterdir() if p.name.endswith(suffixes))


def find_wheel(directory: Path, project: str) -> Path | None:
    """The newest-named wheel of *project* in *directory*, if any."""
    wanted = normalize(project).replace("-", "_")
    found = [
        p
        for p in distribution_files(directory)
        if p.suffix == ".whl"
        and normalize(p.name.split("-")[0]).replace("-", "_") == wanted
    ]
    return found[-1] if found else None


def normalize(name: str) -> str:
    """PEP 503 normalised project name."""
    return re.sub(r"[-_.]+", "-", name).lower()
