"""``poetry self isolate``: the pure part (what to copy, what to write, the state).

Poetry moves into a virtual environment of its own, made from the same base
interpreter, holding exactly the distributions it runs on today. Nothing is
downloaded: every distribution is copied from where it is installed, file by
file, as its ``RECORD`` lists them. Everything here works on plain values
(texts, paths as strings, predicates) so that tests can feed it tables; the
filesystem work is in :mod:`poetry_env_audit.isolate_run`.
"""

from __future__ import annotations

import base64
import configparser
import csv
import hashlib
import io
import json
import posixpath
import shlex
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from poetry_env_audit.poetry_env import DEDICATED_KINDS
from poetry_env_audit.poetry_env import ISOLATE_COMMAND
from poetry_env_audit.poetry_env import ISOLATED_MARKER
from poetry_env_audit.values import StrEnum

if TYPE_CHECKING:
    from collections.abc import Callable
    from collections.abc import Iterable
    from collections.abc import Mapping

#: The command, as remedies print it.
COMMAND = ISOLATE_COMMAND
#: Inside Poetry's data directory.
VENV_NAME = "isolated-venv"
STATE_SUFFIX = ".json"
BACKUP_SUFFIX = ".launcher-backup"
#: Written into the new environment: it was made by ``poetry self isolate``.
MARKER = ISOLATED_MARKER
STATE_SCHEMA = 1
#: Longest ``#!`` line every POSIX kernel takes; longer ones use ``/bin/sh``.
MAX_SHEBANG = 127
POETRY_ENTRY = "poetry.console.application:main"
_ENTRY_IMPORT = "from poetry.console.application import main"


class Step(StrEnum):
    """The steps of an isolation, in order; nothing is switched before SWITCH."""

    VENV = "venv"  # the new environment exists (no packages yet)
    COPY = "copy"  # every distribution's files are copied
    SCRIPTS = "scripts"  # console scripts and RECORD files written
    VERIFY = "verify"  # the new environment imports Poetry and loads its plugins
    BACKUP = "backup"  # the old launcher is backed up
    STATE = "state"  # the state file is written
    SWITCH = "switch"  # the launcher points at the new environment


class CannotIsolateError(Exception):
    """One line naming what keeps ``poetry self isolate`` from guaranteeing the result."""


# ------------------------------------------------------------------ layout


@dataclass(frozen=True)
class Layout:
    """Where an isolation lives, all inside Poetry's data directory."""

    data_dir: str

    @property
    def venv(self) -> str:
        return posixpath.join(self.data_dir, VENV_NAME)

    @property
    def state(self) -> str:
        return self.venv + STATE_SUFFIX

    @property
    def backup(self) -> str:
        return self.venv + BACKUP_SUFFIX

    @property
    def lock(self) -> str:
        return self.venv + ".lock"

    @property
    def python(self) -> str:
        return posixpath.join(self.venv, "bin", "python")

    @property
    def bin_dir(self) -> str:
        return posixpath.join(self.venv, "bin")

    @property
    def marker(self) -> str:
        return posixpath.join(self.venv, MARKER)


def base_interpreter(
    base_prefix: str,
    minor: str,
    base_executable: str | None,
    exists: Callable[[str], bool],
) -> str | None:
    """The base interpreter the new environment is made from.

    ``<base_prefix>/bin/pythonX.Y`` first: on Python 3.9 a venv's
    ``sys._base_executable`` can name the venv's own interpreter.
    """
    for candidate in (
        posixpath.join(base_prefix, "bin", f"python{minor}"),
        posixpath.join(base_prefix, "bin", "python3"),
        base_executable,
    ):
        if candidate and exists(candidate):
            return candidate
    return None


# ------------------------------------------------------------------ RECORD


@dataclass(frozen=True)
class RecordRow:
    """One row of a ``RECORD`` file: a path, its hash and its size."""

    path: str
    hash: str = ""
    size: str = ""


def parse_record(text: str) -> tuple[RecordRow, ...]:
    rows = []
    for fields in csv.reader(io.StringIO(text)):
        if not fields or not fields[0]:
            continue
        padded = [*fields, "", ""][:3]
        rows.append(RecordRow(padded[0], padded[1], padded[2]))
    return tuple(rows)


def format_record(rows: Iterable[RecordRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for row in rows:
        writer.writerow((row.path, row.hash, row.size))
    return out.getvalue()


def record_hash(data: bytes) -> str:
    """``sha256=...`` as RECORD files write it (urlsafe base64, no padding)."""
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode("ascii")


def inside(path: str) -> str | None:
    """A RECORD path relative to site-packages, normalised; ``None`` if it points outside."""
    if not path or path.startswith("/") or "\\" in path:
        return None
    normal = posixpath.normpath(path)
    if normal == ".." or normal.startswith("../") or normal == ".":
        return None
    return normal


# ------------------------------------------------------------------ scripts


@dataclass(frozen=True)
class Script:
    """A console script: ``name = module:attr``."""

    name: str
    module: str
    attr: str


def console_scripts(entry_points: str | None) -> tuple[Script, ...]:
    """``[console_scripts]`` of an ``entry_points.txt``; unreadable ones are none."""
    if not entry_points:
        return ()
    parser = configparser.ConfigParser(interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        parser.read_string(entry_points)
    except configparser.Error:
        return ()
    if not parser.has_section("console_scripts"):
        return ()
    scripts = []
    for name, value in parser.items("console_scripts"):
        target = value.split("[", 1)[0].strip()
        module, _, attr = target.partition(":")
        if module.strip() and attr.strip():
            scripts.append(Script(name.strip(), module.strip(), attr.strip()))
    return tuple(scripts)


def shebang(python: str) -> str:
    """``#!python``, or the ``/bin/sh`` form pip uses for long paths or spaces."""
    line = f"#!{python}"
    if len(line) <= MAX_SHEBANG and " " not in python:
        return line + "\n"
    return f"#!/bin/sh\n'''exec' {shlex.quote(python)} \"$0\" \"$@\"\n' '''\n"


def script_row(python: str, script: Script, bin_from_site: str) -> RecordRow:
    """The RECORD row of a console script written for ``python``."""
    data = render_script(python, script).encode()
    return RecordRow(
        posixpath.join(bin_from_site, script.name), record_hash(data), str(len(data))
    )


def render_script(python: str, script: Script, *, note: str = "") -> str:
    """A console script like pip writes, running ``script`` with ``python``."""
    import_path = script.attr.split(".", 1)[0]
    comment = f"# {note}\n" if note else ""
    return (
        f"{shebang(python)}{comment}import sys\n"
        f"from {script.module} import {import_path}\n"
        'if __name__ == "__main__":\n'
        f"    sys.exit({script.attr}())\n"
    )


POETRY_SCRIPT = Script("poetry", "poetry.console.application", "main")


def render_launcher(venv_python: str, venv: str) -> str:
    """What the user's ``poetry`` launcher says once Poetry is isolated."""
    note = (
        f"Poetry isolated by `poetry self isolate` into {venv};"
        " `poetry self isolate --undo` restores the previous launcher."
    )
    return render_script(venv_python, POETRY_SCRIPT, note=note)


def launcher_python(text: str) -> str | None:
    """The interpreter a console script runs: its ``#!`` line, or the
    ``'''exec' PYTHON`` line of the ``/bin/sh`` form."""
    lines = text.splitlines()
    if not lines or not lines[0].startswith("#!"):
        return None
    first = lines[0][2:].strip()
    if first in ("/bin/sh", "/usr/bin/env sh") and len(lines) > 1:
        line = lines[1]
        if line.startswith("'''exec' "):
            try:
                words = shlex.split(line[len("'''exec' ") :])
            except ValueError:
                return None
            return words[0] if words else None
        return None
    try:
        words = shlex.split(first)
    except ValueError:
        return None
    if not words:
        return None
    if posixpath.basename(words[0]) == "env" and len(words) > 1:
        return None  # ``#!/usr/bin/env python``: not tied to one environment
    return words[0]


def is_poetry_launcher(text: str) -> bool:
    """A console script that starts Poetry's application."""
    return launcher_python(text) is not None and _ENTRY_IMPORT in text


# ------------------------------------------------------------------ the plan


@dataclass(frozen=True)
class DistPlan:
    """One distribution's copy: the files (relative to site-packages), the
    scripts to generate in ``bin/``, and the RECORD the copy gets."""

    name: str
    version: str
    source: str  # its site-packages directory, or the cached wheel
    dist_info: str  # relative, e.g. "poetry-2.5.1.dist-info"
    files: tuple[str, ...]
    scripts: tuple[Script, ...]
    skipped: tuple[str, ...]  # RECORD paths outside site-packages not recreated
    record: str = field(repr=False)
    #: From a wheel: the archive member of each of ``files``, in order.
    members: tuple[str, ...] | None = None

    @property
    def from_wheel(self) -> bool:
        return self.members is not None

    @property
    def describe(self) -> str:
        return f"{self.name} {self.version}"


def plan_dist(
    *,
    name: str,
    version: str,
    source: str,
    record: str | None,
    entry_points: str | None,
    exists: Callable[[str], bool],
    python: str,
    bin_from_site: str,
) -> DistPlan:
    """What copying one installed distribution means.

    ``record``: its RECORD text (``None``: there is none, which is a
    :class:`CannotIsolateError`). ``exists(path)`` tells whether a path relative to
    ``source`` is there. Every file inside site-packages is copied (byte code
    too: copies keep their mtimes, so it stays valid); a missing one is a
    :class:`CannotIsolateError`, except stale byte code. A RECORD path outside
    site-packages is a console script of this distribution (regenerated for
    ``python``, at ``bin_from_site/<name>``, the new bin directory relative to
    the new site-packages) or skipped. The new RECORD lists exactly what the
    copy holds.
    """
    label = f"{name} {version}"
    if record is None:
        raise CannotIsolateError(
            f"{label} ({source}) has no RECORD file and Poetry's cache no wheel"
            " of it: its files cannot be copied"
        )
    rows = parse_record(record)
    own_record = [r for r in rows if r.path.endswith(".dist-info/RECORD")]
    if len(own_record) != 1 or inside(own_record[0].path) is None:
        raise CannotIsolateError(f"{label} ({source}): its RECORD does not list itself")
    dist_info = posixpath.dirname(str(inside(own_record[0].path)))
    by_name = {s.name: s for s in console_scripts(entry_points)}
    files: list[str] = []
    scripts: list[Script] = []
    skipped: list[str] = []
    out: list[RecordRow] = []
    for row in rows:
        path = inside(row.path)
        if path is None:
            script = by_name.get(posixpath.basename(row.path))
            if script is not None and script not in scripts:
                scripts.append(script)
                out.append(script_row(python, script, bin_from_site))
            else:
                skipped.append(row.path)
            continue
        if row is own_record[0]:
            out.append(RecordRow(row.path))
            continue
        if not exists(path):
            if path.endswith(".pyc"):
                continue  # byte code is optional: Python writes it again
            raise CannotIsolateError(
                f"{label}: {posixpath.join(source, path)} is missing"
            )
        files.append(path)
        out.append(row)
    return DistPlan(
        name=name,
        version=version,
        source=source,
        dist_info=dist_info,
        files=tuple(files),
        scripts=tuple(scripts),
        skipped=tuple(skipped),
        record=format_record(out),
    )


def plan_wheel(
    *,
    name: str,
    version: str,
    wheel: str,
    members: Iterable[str],
    record: str | None,
    entry_points: str | None,
    python: str,
    bin_from_site: str,
) -> DistPlan:
    """Installing a wheel from Poetry's cache, for a distribution without RECORD.

    ``members``: the archive's file names; ``record``: its RECORD. Files go
    where an installer puts them (``*.data/purelib`` and ``platlib`` into
    site-packages); ``*.data/scripts`` are replaced by the console scripts of
    its entry points, ``*.data/data`` and ``headers`` are left out, as files
    outside site-packages are for an installed distribution.
    """
    label = f"{name} {version}"
    if record is None:
        raise CannotIsolateError(f"{label}: the cached wheel {wheel} has no RECORD")
    rows = {row.path: row for row in parse_record(record)}
    own = [p for p in rows if p.endswith(".dist-info/RECORD") and "/" not in p[:-7]]
    if len(own) != 1:
        raise CannotIsolateError(f"{label}: the cached wheel {wheel} has no RECORD")
    dist_info = posixpath.dirname(own[0])
    files: list[str] = []
    sources: list[str] = []
    skipped: list[str] = []
    out: list[RecordRow] = []
    for member in members:
        if member.endswith("/") or member == own[0]:
            continue
        dest = _wheel_destination(member)
        if dest is None or inside(dest) is None:
            skipped.append(member)
            continue
        row = rows.get(member)
        if row is None:
            raise CannotIsolateError(
                f"{label}: {member} of the cached wheel {wheel} is not in its RECORD"
            )
        files.append(dest)
        sources.append(member)
        out.append(RecordRow(dest, row.hash, row.size))
    scripts = console_scripts(entry_points)
    out.extend(script_row(python, script, bin_from_site) for script in scripts)
    out.append(RecordRow(own[0]))
    return DistPlan(
        name=name,
        version=version,
        source=wheel,
        dist_info=dist_info,
        files=tuple(files),
        scripts=scripts,
        skipped=tuple(skipped),
        record=format_record(out),
        members=tuple(sources),
    )


def _wheel_destination(member: str) -> str | None:
    """Where an archive member goes, relative to site-packages (None: not there)."""
    head, _, rest = member.partition("/")
    if not head.endswith(".data"):
        return member
    scheme, _, path = rest.partition("/")
    if scheme in ("purelib", "platlib") and path:
        return path
    return None


def check_scripts(plans: Iterable[DistPlan]) -> None:
    """Two distributions must not want the same console script (no winner to guess)."""
    owner: dict[str, str] = {}
    for plan in plans:
        for script in plan.scripts:
            if script.name in owner and owner[script.name] != plan.name:
                raise CannotIsolateError(
                    f"{owner[script.name]} and {plan.name} both install"
                    f" the console script {script.name}"
                )
            owner[script.name] = plan.name


def check_targets(plans: Iterable[DistPlan]) -> None:
    """Two distributions must not own the same file."""
    owner: dict[str, str] = {}
    for plan in plans:
        for path in plan.files:
            if path.endswith(".pyc") or posixpath.basename(path) == "__init__.py":
                continue  # namespace parents and byte code are commonly shared
            if path in owner and owner[path] != plan.name:
                raise CannotIsolateError(
                    f"{owner[path]} and {plan.name} both install {path}"
                )
            owner[path] = plan.name


# ------------------------------------------------------------------ launcher


@dataclass(frozen=True)
class LauncherCandidate:
    """A ``poetry`` script found on disk: where, and what it says."""

    path: str
    text: str | None  # None: not readable
    python: str | None = (
        None  # its interpreter, directory as a real path (None: unknown)
    )
    is_symlink: bool = False


def choose_launcher(
    candidates: Iterable[LauncherCandidate],
    *,
    running_bins: tuple[str, ...],
    isolated_bin: str,
) -> LauncherCandidate | None:
    """The first candidate that starts this Poetry (its interpreter lives in
    one of the running environment's ``bin`` directories, compared by real
    directory) or that already starts the isolated one."""
    for candidate in candidates:
        if candidate.text is None or not is_poetry_launcher(candidate.text):
            continue
        if candidate.python is None:
            continue
        if posixpath.dirname(candidate.python) in (*running_bins, isolated_bin):
            return candidate
    return None


def points_at(candidate: LauncherCandidate, layout: Layout) -> bool:
    """The launcher already starts the isolated environment (as we wrote it)."""
    return candidate.text == render_launcher(layout.python, layout.venv)


# ------------------------------------------------------------------ state


@dataclass(frozen=True)
class State:
    """What ``--undo`` and a second run need: the small JSON file beside the venv."""

    venv: str
    launcher: str
    backup: str
    original_prefix: str
    original_python: str
    base_python: str
    poetry: str
    distributions: Mapping[str, str]
    plugins: tuple[str, ...] = ()
    backup_symlink: str | None = None  # the launcher was a symlink to this
    schema: int = STATE_SCHEMA

    def to_json(self) -> str:
        data = asdict(self)
        data["distributions"] = dict(sorted(self.distributions.items()))
        data["plugins"] = list(self.plugins)
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> State:
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or data.get("schema") != STATE_SCHEMA:
                raise ValueError("unknown schema")
            return cls(
                venv=str(data["venv"]),
                launcher=str(data["launcher"]),
                backup=str(data["backup"]),
                original_prefix=str(data["original_prefix"]),
                original_python=str(data["original_python"]),
                base_python=str(data["base_python"]),
                poetry=str(data["poetry"]),
                distributions={
                    str(k): str(v) for k, v in dict(data["distributions"]).items()
                },
                plugins=tuple(str(p) for p in data.get("plugins", ())),
                backup_symlink=(
                    None
                    if data.get("backup_symlink") is None
                    else str(data["backup_symlink"])
                ),
            )
        except (ValueError, KeyError, TypeError) as error:
            raise CannotIsolateError(
                f"the state file is unreadable ({error})"
            ) from error


# ------------------------------------------------------------------ deciding


class Outcome(StrEnum):
    ISOLATE = "isolate"
    ALREADY = "already"


def decide(
    *,
    kind: str,
    prefix: str,
    layout: Layout,
    launcher: LauncherCandidate | None,
    state: State | None,
    problems: Iterable[str] = (),
    launcher_hint: str = "",
    dedicated: bool = False,
) -> Outcome:
    """Isolate, say it is done already, or refuse (:class:`CannotIsolateError`).

    ``dedicated``: Poetry's venv holds nothing else and is not the active
    ``VIRTUAL_ENV`` (or ``CONDA_PREFIX``), so no target shares it.
    """
    if prefix == layout.venv or (launcher is not None and points_at(launcher, layout)):
        return Outcome.ALREADY
    if kind in DEDICATED_KINDS or (kind == "venv" and dedicated):
        return Outcome.ALREADY
    for problem in problems:
        raise CannotIsolateError(
            f"Poetry's environment is already inconsistent ({problem});"
            " repair it first (`poetry env-audit` shows how)"
        )
    if launcher is None:
        raise CannotIsolateError(
            "no `poetry` launcher of this Poetry was found"
            + (f" ({launcher_hint})" if launcher_hint else "")
            + "; run the `poetry` script that belongs to this interpreter"
        )
    if state is not None and state.original_prefix != prefix:
        raise CannotIsolateError(
            f"{layout.venv} already holds the isolated Poetry of"
            f" {state.original_prefix} (launcher {state.launcher}); undo that"
            " first or give this Poetry its own POETRY_DATA_DIR"
        )
    return Outcome.ISOLATE


def writable(mode: int, *, access: bool) -> bool:
    """A launcher can be replaced: the OS allows it and it is not read-only
    on purpose (no write bit at all, which root's ``access()`` ignores)."""
    return access and bool(mode & 0o222)


def relative_bin(site: str, bin_dir: str) -> str:
    """``../../../bin``: the bin directory as RECORD files write it."""
    return posixpath.relpath(bin_dir, site)


def new_site(venv: str, minor: str) -> str:
    """The new environment's site-packages, as a POSIX venv lays it out."""
    return str(PurePosixPath(venv) / "lib" / f"python{minor}" / "site-packages")
