from __future__ import annotations

# Throwaway interpreters holding real Poetry: a "system-like" copy of a base
# CPython prefix, a venv with Poetry (the "venv" and "isolated" kinds), cached
# templates of each and cheap per-test clones.
#
# Clones move the prefix: always run Poetry as ``<python> -m poetry``; the
# console scripts in ``bin/`` keep the shebang of the template they came from.
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Literal
from typing import cast

from harness.index import link_or_copy
from harness.wheels import find_wheel

if TYPE_CHECKING:
    from collections.abc import Iterator

Kind = Literal["system", "venv", "isolated", "debian"]
#: The kinds every test machine can make ("debian" needs the Debian root and
#: root privileges: harness.debian).
KINDS: tuple[Kind, ...] = ("system", "venv", "isolated")
TEMPLATE_STAMP = "interpreter.json"
# Bumped whenever the way templates are built changes, to invalidate caches.
TEMPLATE_FORMAT = 2
# Left out of system-like copies, like slim Docker images do: the standard
# library's own test suite and GUI demos are thousands of files nobody imports.
# Debian's stdlib also has a sitecustomize.py (a link to /etc/python3.X/):
# a copy is not Debian's system Python, and it would shadow the tests' own
# sitecustomize in site-packages.
_STDLIB_DROPPED = frozenset(
    {"site-packages", "dist-packages", "EXTERNALLY-MANAGED", "sitecustomize.py"}
    | {"test", "idlelib", "turtledemo"}
)
_PROBE = (
    "import json, sys, sysconfig; print(json.dumps({'prefix': sys.prefix, "
    "'base_prefix': sys.base_prefix, 'executable': sys.executable, "
    "'version': '%d.%d.%d' % sys.version_info[:3], "
    "'purelib': sysconfig.get_paths()['purelib'], "
    "'platlib': sysconfig.get_paths()['platlib']}))"
)


@dataclass(frozen=True)
class Interpreter:
    """A throwaway interpreter with Poetry installed.

    ``kind``: "system" (``sys.prefix == sys.base_prefix``, Poetry pip-installed
    into the interpreter itself), "venv" (Poetry in a venv that tests make the
    active ``VIRTUAL_ENV``), "isolated" (Poetry in a venv, like pipx; projects
    get their own in-project venv) or "debian" (Debian's own /usr/bin/python3.X
    with Poetry pip-installed by ``--break-system-packages``, in a throwaway
    overlay of the Debian root: *root*; every path here is a host path
    under *root*, ``harness.poetry`` runs commands chrooted into it).
    """

    kind: Kind
    prefix: Path
    python: Path
    poetry_version: str
    python_version: str
    has_plugin: bool = False
    root: Path | None = None

    @property
    def bin_dir(self) -> Path:
        return self.python.parent

    @property
    def python_minor(self) -> str:
        return ".".join(self.python_version.split(".")[:2])

    @property
    def poetry_major(self) -> int:
        return int(self.poetry_version.split(".")[0])

    def site_packages(self) -> list[Path]:
        """purelib and platlib of this interpreter (one entry when equal)."""
        info = python_info(self.python)
        dirs = [Path(info["purelib"]), Path(info["platlib"])]
        return list(dict.fromkeys(dirs))


def run_probe(python: Path, code: str) -> str:
    """Stdout of ``python -I -c code`` (isolated from the machine's pip config)."""
    out = subprocess.run(
        [str(python), "-I", "-c", code],
        check=True,
        capture_output=True,
        text=True,
        env=pip_env(),
    )
    return out.stdout


def python_info(python: Path) -> dict[str, str]:
    """prefix, base_prefix, executable, version, purelib, platlib of *python*."""
    return cast("dict[str, str]", json.loads(run_probe(python, _PROBE)))


# --- finding the base interpreter -------------------------------------------


def pyenv_root() -> Path:
    return Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")


def resolve_base_python(spec: str | None = None) -> Path:
    """The base CPython to build from.

    *spec* is "3.X" (newest ``$PYENV_ROOT/versions/3.X.*``), or a path to an
    interpreter.  Without pyenv, falls back to the base interpreter of the
    running Python, so a machine without pyenv still works.
    """
    spec = (spec or "3.11").strip()
    if "/" in spec:
        return _existing(Path(spec))
    if re.fullmatch(r"\d+\.\d+", spec):
        found = _pyenv_python(spec)
        if found is not None:
            return found
    minor = f"{sys.version_info[0]}.{sys.version_info[1]}"
    return _existing(Path(sys.base_prefix) / "bin" / f"python{minor}")


def _pyenv_python(minor: str) -> Path | None:
    versions = pyenv_root() / "versions"
    if not versions.is_dir():
        return None
    pattern = re.compile(rf"^{re.escape(minor)}\.(\d+)$")
    candidates = [
        (int(m.group(1)), d)
        for d in versions.iterdir()
        if (m := pattern.match(d.name)) and (d / "bin" / f"python{minor}").exists()
    ]
    if not candidates:
        return None
    return max(candidates)[1] / "bin" / f"python{minor}"


def _existing(python: Path) -> Path:
    if not python.exists():
        raise FileNotFoundError(f"no Python interpreter at {python}")
    return python


def base_prefix_of(python: Path) -> Path:
    return Path(python_info(python)["base_prefix"])


# --- running pip in throwaway interpreters ----------------------------------


def pip_env() -> dict[str, str]:
    """The environment for pip in a throwaway interpreter: no pip
    configuration of the machine (index, find-links) leaks in."""
    drop = ("PIP_", "PYTHON", "VIRTUAL_ENV", "CONDA_", "POETRY_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(
        PIP_CONFIG_FILE=os.devnull,
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_ROOT_USER_ACTION="ignore",
        PIP_NO_INPUT="1",
    )
    return env


def _run(command: list[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, env=pip_env())
    if result.returncode != 0:
        raise RuntimeError(
            f"{what} failed ({result.returncode}): {' '.join(command)}\n"
            f"{result.stdout}{result.stderr}"
        )


def pip_install(python: Path, requirements: list[str], find_links: list[Path]) -> None:
    """``python -m pip install --no-index --find-links ...`` (never the network)."""
    command = [str(python), "-m", "pip", "install", "--no-index", "--quiet"]
    for directory in find_links:
        command += ["--find-links", str(directory)]
    _run(command + requirements, "pip install")


def bootstrap_pip(python: Path, wheelhouse: Path | None = None) -> None:
    """Install pip: from the wheelhouse's pip wheel when there is one (runs
    pip straight from the wheel), otherwise with ``ensurepip``."""
    wheel = find_wheel(wheelhouse, "pip") if wheelhouse is not None else None
    if wheel is None:
        _run([str(python), "-m", "ensurepip", "--default-pip"], "ensurepip")
        return
    command = [str(python), str(wheel / "pip"), "install", "--no-index", "--quiet"]
    _run([*command, "--find-links", str(wheelhouse), "pip"], "pip bootstrap")


def install_poetry(
    python: Path,
    poetry_version: str,
    find_links: list[Path],
    extra: list[str] | None = None,
) -> None:
    """Poetry==*poetry_version* (and *extra* requirements or wheel paths)."""
    pip_install(python, [f"poetry=={poetry_version}", *(extra or [])], find_links)


# --- system-like interpreters ------------------------------------------------


def stdlib_minor(base_prefix: Path, prefer: str | None = None) -> str:
    """ "3.11" for a prefix holding ``lib/python3.11/os.py``; a prefix that
    holds several (Debian's /usr: python3.14 and python3.15) needs *prefer*."""
    found = sorted(
        d.name[len("python") :]
        for d in (base_prefix / "lib").glob("python3.*")
        if (d / "os.py").is_file()
    )
    if prefer is not None and prefer in found:
        return prefer
    if len(found) != 1:
        raise RuntimeError(f"cannot tell the Python version of {base_prefix}")
    return found[0]


def make_system_python(
    base_prefix: Path,
    dest: Path,
    *,
    wheelhouse: Path | None = None,
    minor: str | None = None,
) -> Path:
    """Copy the CPython at *base_prefix* to *dest* as a "system" interpreter.

    The standard library is hard-linked (nothing writes there: Python replaces
    byte code by rename), ``site-packages`` starts empty, ``bin/`` keeps only
    the ``python*`` executables (the one run is a hard link or a copy, never a
    symlink into the base, so ``sys.prefix`` is *dest*).  Then pip is installed.
    Returns the new interpreter's path.

    Debian's python (prefix /usr) copies the same way: the copy keeps
    Debian's layout (``sysconfig`` scheme ``posix_local``: pip installs to
    ``<dest>/local/lib/python3.X/dist-packages``), drops EXTERNALLY-MANAGED
    and sees none of /usr/lib/python3/dist-packages.
    """
    minor = stdlib_minor(base_prefix, minor)
    _copy_bin(base_prefix / "bin", dest / "bin", minor)
    _link_stdlib(base_prefix, dest, minor)
    python = dest / "bin" / f"python{minor}"
    _check_system(python, dest)
    bootstrap_pip(python, wheelhouse)
    return python


def _copy_bin(source: Path, dest: Path, minor: str) -> None:
    """``bin/python3.X`` (a hard link or a copy, never a symlink into the
    base) and ``python3``, ``python`` as relative symlinks to it.  Other
    interpreters in the same bin dir (Debian's /usr/bin has python3.14 and
    python3.15, its ``python3`` is the default one) are left out."""
    dest.mkdir(parents=True)
    name = f"python{minor}"
    executable = source / name
    if executable.is_symlink():
        link = executable.readlink()
        if link.is_absolute() or "/" in str(link):
            raise RuntimeError(f"{executable} links outside its directory: {link}")
        executable = source / link
        name = link.name
    link_or_copy(executable, dest / name)
    for alias in (f"python{minor}", "python3", "python"):
        if alias != name:
            (dest / alias).symlink_to(name)


def _link_stdlib(base_prefix: Path, dest: Path, minor: str) -> None:
    stdlib = base_prefix / "lib" / f"python{minor}"
    _link_tree(stdlib, dest / "lib" / stdlib.name, skip=_STDLIB_DROPPED)
    (dest / "lib" / stdlib.name / "site-packages").mkdir()
    for library in (base_prefix / "lib").glob("libpython*"):
        _copy_entry(library, dest / "lib" / library.name, link=True)
    for include in (base_prefix / "include").glob(f"python{minor}*"):
        _copy_entry(include, dest / "include" / include.name, link=True)


def _link_tree(source: Path, dest: Path, *, skip: frozenset[str]) -> None:
    """Hard-link the tree *source* to *dest*, leaving out the top-level
    entries named in *skip* (symlinks stay symlinks)."""

    def ignore(directory: str, names: list[str]) -> set[str]:
        return {n for n in names if n in skip} if Path(directory) == source else set()

    shutil.copytree(
        source, dest, symlinks=True, copy_function=_link_function, ignore=ignore
    )


def _link_function(source: str, dest: str) -> str:
    link_or_copy(Path(source), Path(dest))
    return dest


def _copy_entry(source: Path, dest: Path, *, link: bool) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    if source.is_symlink():
        dest.symlink_to(source.readlink())
    elif source.is_dir():
        function = _link_function if link else shutil.copy2
        shutil.copytree(source, dest, symlinks=True, copy_function=function)
    elif link:
        link_or_copy(source, dest)
    else:
        shutil.copy2(source, dest)


def _check_system(python: Path, dest: Path) -> None:
    info = python_info(python)
    want = str(dest.resolve())
    got = (
        str(Path(info["prefix"]).resolve()),
        str(Path(info["base_prefix"]).resolve()),
    )
    if got != (want, want):
        raise RuntimeError(f"{python}: prefix/base_prefix {got}, wanted {want}")


# --- interpreters with Poetry -------------------------------------------------


def make_system_poetry(
    base_prefix: Path,
    dest: Path,
    *,
    wheelhouse: Path,
    poetry_version: str,
    extra: list[str] | None = None,
    minor: str | None = None,
) -> Interpreter:
    """A system-like interpreter with Poetry (and *extra*) pip-installed."""
    python = make_system_python(base_prefix, dest, wheelhouse=wheelhouse, minor=minor)
    install_poetry(python, poetry_version, [wheelhouse], extra)
    return _describe("system", dest, python, has_plugin=bool(extra))


def make_poetry_venv(
    base_python: Path,
    dest: Path,
    *,
    wheelhouse: Path,
    poetry_version: str,
    extra: list[str] | None = None,
    kind: Kind = "venv",
) -> Interpreter:
    """``python -m venv`` + pip + Poetry (and *extra*).  Tests run Poetry from
    it with ``VIRTUAL_ENV`` set to it (kind "venv")."""
    _run([str(base_python), "-m", "venv", "--without-pip", str(dest)], "venv")
    python = dest / "bin" / "python"
    bootstrap_pip(python, wheelhouse)
    install_poetry(python, poetry_version, [wheelhouse], extra)
    return _describe(kind, dest, python, has_plugin=bool(extra))


def make_isolated_poetry(
    base_python: Path,
    dest: Path,
    *,
    wheelhouse: Path,
    poetry_version: str,
    extra: list[str] | None = None,
) -> Interpreter:
    """Poetry in its own venv, like pipx or the official installer; projects
    get their own in-project venv (configured by ``harness.poetry``)."""
    return make_poetry_venv(
        base_python,
        dest,
        wheelhouse=wheelhouse,
        poetry_version=poetry_version,
        extra=extra,
        kind="isolated",
    )


def _describe(
    kind: Kind, prefix: Path, python: Path, *, has_plugin: bool
) -> Interpreter:
    return Interpreter(
        kind=kind,
        prefix=prefix,
        python=python,
        poetry_version=poetry_version_of(python),
        python_version=python_info(python)["version"],
        has_plugin=has_plugin,
    )


def poetry_version_of(python: Path) -> str:
    code = "import importlib.metadata as m; print(m.version('poetry'))"
    return run_probe(python, code).strip()


# --- clones and templates ------------------------------------------------------


def clone(
    template: Interpreter, dest: Path, *, kind: Kind | None = None
) -> Interpreter:
    """A private copy of *template* at *dest*.

    Site-packages and ``bin/`` are copied for real; a system-like prefix's
    standard library stays hard-linked.  Checks that the clone's ``sys.prefix``
    is *dest*.
    """
    if template.kind == "system":
        _clone_system(template, dest)
    else:
        shutil.copytree(template.prefix, dest, symlinks=True)
    python = dest / template.python.relative_to(template.prefix)
    info = python_info(python)
    if Path(info["prefix"]).resolve() != dest.resolve():
        raise RuntimeError(f"clone {dest} has sys.prefix {info['prefix']}")
    return replace(template, kind=kind or template.kind, prefix=dest, python=python)


def _clone_system(template: Interpreter, dest: Path) -> None:
    stdlib = f"lib/python{template.python_minor}"
    dest.mkdir(parents=True)
    for entry in sorted(template.prefix.iterdir()):
        if entry.name == "lib":
            _clone_lib(entry, dest / "lib", stdlib_name=Path(stdlib).name)
        else:
            _copy_entry(entry, dest / entry.name, link=False)


def _clone_lib(source: Path, dest: Path, *, stdlib_name: str) -> None:
    dest.mkdir()
    for entry in sorted(source.iterdir()):
        if entry.name != stdlib_name:
            _copy_entry(entry, dest / entry.name, link=True)
            continue
        _link_tree(entry, dest / entry.name, skip=frozenset({"site-packages"}))
        site = entry / "site-packages"
        _copy_entry(site, dest / entry.name / site.name, link=False)


def save_template(interp: Interpreter) -> None:
    """Record *interp* in its prefix so ``load_template`` can find it again."""
    data = asdict(interp)
    data.pop("root")
    data["prefix"] = "."
    data["python"] = str(interp.python.relative_to(interp.prefix))
    data["format"] = TEMPLATE_FORMAT
    (interp.prefix / TEMPLATE_STAMP).write_text(json.dumps(data, indent=1) + "\n")


def load_template(prefix: Path) -> Interpreter | None:
    stamp = prefix / TEMPLATE_STAMP
    if not stamp.is_file():
        return None
    data = json.loads(stamp.read_text())
    if data.pop("format", None) != TEMPLATE_FORMAT:
        return None
    data["prefix"] = prefix
    data["python"] = prefix / data["python"]
    return Interpreter(**data)


@cache
def _cached_base_prefix(python: Path) -> Path:
    return base_prefix_of(python)


def template_key(
    kind: Kind, base_python: Path, poetry_version: str, wheelhouse: Path
) -> str:
    """Directory name of a cached template.  "venv" and "isolated" templates
    are the same venv, so they share one."""
    family = "system" if kind == "system" else "venv"
    version = python_info(base_python)["version"]
    base = _cached_base_prefix(base_python)
    tag = re.sub(r"[^A-Za-z0-9]+", "_", str(base)).strip("_")[-40:]
    return f"{family}-poetry{poetry_version}-py{version}-{tag}-{wheelhouse.name}"


def ensure_template(
    kind: Kind,
    *,
    base_python: Path,
    poetry_version: str,
    wheelhouse: Path,
    root: Path,
) -> Interpreter:
    """A cached interpreter with Poetry (no plugin) under *root*, built once
    (10 to 20 s) and reused by every later session."""
    dest = root / template_key(kind, base_python, poetry_version, wheelhouse)
    found = load_template(dest)
    if found is None:
        with exclusive(dest.with_name(dest.name + ".lock")):
            found = load_template(dest) or _build_template(
                kind, base_python, poetry_version, wheelhouse, dest
            )
    return replace(found, kind=kind)


@contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """An exclusive lock on *path* between processes (pytest sessions running
    at the same time must not build the same template twice)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build_template(
    kind: Kind, base_python: Path, poetry_version: str, wheelhouse: Path, dest: Path
) -> Interpreter:
    # Built in place (so its console scripts stay valid); the stamp written
    # last marks it complete, a half-built one is thrown away.
    shutil.rmtree(dest, ignore_errors=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if kind == "system":
        base = _cached_base_prefix(base_python)
        minor = ".".join(python_info(base_python)["version"].split(".")[:2])
        built = make_system_poetry(
            base,
            dest,
            wheelhouse=wheelhouse,
            poetry_version=poetry_version,
            minor=minor,
        )
    else:
        built = make_poetry_venv(
            base_python, dest, wheelhouse=wheelhouse, poetry_version=poetry_version
        )
    save_template(built)
    return built


def with_plugin(
    template: Interpreter, dest: Path, plugin: Path, find_links: list[Path]
) -> Interpreter:
    """A clone of *template* at *dest* with the plugin wheel *plugin* installed."""
    interp = clone(template, dest)
    pip_install(interp.python, [str(plugin)], find_links)
    return replace(interp, has_plugin=True)
