"""``poetry self isolate``: the filesystem work, step by step.

Order (see :class:`~poetry_env_audit.isolate.Step`): make the new environment
from the base interpreter, copy every distribution's files, write console
scripts and RECORD files, check that the new environment imports Poetry and
loads every plugin (and that its ``poetry`` script runs), back up the old
launcher, write the state file, and only then replace the launcher, in one
``os.replace``. An interruption before that last step leaves the old launcher
as it was; the next run starts over.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from poetry_env_audit.atomic import beside
from poetry_env_audit.atomic import write_atomic
from poetry_env_audit.isolate import MARKER
from poetry_env_audit.isolate import POETRY_SCRIPT
from poetry_env_audit.isolate import CannotIsolateError
from poetry_env_audit.isolate import DistPlan
from poetry_env_audit.isolate import LauncherCandidate
from poetry_env_audit.isolate import Layout
from poetry_env_audit.isolate import Outcome
from poetry_env_audit.isolate import State
from poetry_env_audit.isolate import Step
from poetry_env_audit.isolate import base_interpreter
from poetry_env_audit.isolate import check_scripts
from poetry_env_audit.isolate import check_targets
from poetry_env_audit.isolate import choose_launcher
from poetry_env_audit.isolate import decide
from poetry_env_audit.isolate import launcher_python
from poetry_env_audit.isolate import new_site
from poetry_env_audit.isolate import plan_dist
from poetry_env_audit.isolate import plan_wheel
from poetry_env_audit.isolate import points_at
from poetry_env_audit.isolate import relative_bin
from poetry_env_audit.isolate import render_launcher
from poetry_env_audit.isolate import render_script
from poetry_env_audit.isolate import writable

if TYPE_CHECKING:
    from collections.abc import Callable
    from collections.abc import Sequence

    from poetry_env_audit.poetry_env import PoetryEnvironment

#: Seconds a check of the new environment may take.
CHECK_TIMEOUT = 300
_SCRUBBED = (
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONSTARTUP",
    "VIRTUAL_ENV",
    "__PYVENV_LAUNCHER__",
)

#: Run by the new interpreter (``-I``): every expected distribution at its
#: version and inside the new environment, Poetry's application importable,
#: every plugin entry point loadable.
_CHECK = r"""
import json, os, re, sys
from importlib import metadata
expected = json.loads(sys.argv[1])
prefix = os.path.realpath(sys.prefix) + os.sep
def norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()
found, plugins, errors = {}, [], []
for dist in metadata.distributions():
    name = norm(dist.metadata["Name"] or "")
    if name in found:
        continue
    found[name] = dist
for name, version in sorted(expected.items()):
    dist = found.get(name)
    if dist is None:
        errors.append(name + " is not importable")
        continue
    if dist.version != version:
        errors.append("%s is %s, not %s" % (name, dist.version, version))
    where = os.path.realpath(str(dist.locate_file("")))
    if not (where + os.sep).startswith(prefix):
        errors.append("%s comes from %s" % (name, where))
try:
    import poetry.console.application
except Exception as error:
    errors.append("importing poetry.console.application: %r" % (error,))
for name, dist in sorted(found.items()):
    for ep in dist.entry_points:
        if ep.group in ("poetry.application.plugin", "poetry.plugin"):
            try:
                ep.load()
            except Exception as error:
                errors.append("plugin %s (%s): %r" % (name, ep.value, error))
            else:
                plugins.append(name)
print(json.dumps({"errors": errors, "plugins": sorted(set(plugins)),
                  "prefix": sys.prefix, "base_prefix": sys.base_prefix}))
"""


def checkpoint(step: Step) -> None:
    """Called after each step; a no-op (tests interrupt the process here)."""
    del step


# ------------------------------------------------------------------ facts


def _real_dir_of(path: str) -> str:
    """``path`` with its directory resolved (the file itself may be a symlink)."""
    where = Path(path)
    return str(where.parent.resolve() / where.name)


def read_launcher(path: str) -> LauncherCandidate | None:
    """A ``poetry`` script on disk, ``None`` when there is no file."""
    where = Path(path)
    if not where.is_file():
        return None
    try:
        with where.open("rb") as stream:
            data = stream.read(1 << 16)
        text: str | None = data.decode("utf-8")
    except (OSError, UnicodeDecodeError):
        text = None
    python = launcher_python(text) if text is not None else None
    return LauncherCandidate(
        path=path,
        text=text,
        python=_real_dir_of(python) if python else None,
        is_symlink=where.is_symlink(),
    )


def launcher_paths(argv0: str, prefix: str) -> list[str]:
    """Where the ``poetry`` the user runs may be, most specific first:
    ``sys.argv[0]`` (unless Poetry runs as ``python -m poetry``), ``poetry``
    on PATH, ``<prefix>/bin/poetry``."""
    paths: list[str] = []
    if argv0 and not argv0.endswith((".py", os.sep + "__main__")) and argv0 != "-c":
        paths.append(str(Path.cwd() / argv0))
    found = shutil.which("poetry")
    if found:
        paths.append(str(Path.cwd() / found))
    paths.append(str(Path(prefix, "bin", "poetry")))
    return list(dict.fromkeys(paths))


def find_launcher(layout: Layout) -> tuple[LauncherCandidate | None, str]:
    """The launcher of the running Poetry, and a hint when there is none."""
    prefix = sys.prefix
    candidates = [
        c for c in map(read_launcher, launcher_paths(sys.argv[0], prefix)) if c
    ]
    bins = {
        str(Path(prefix, "bin").resolve()),
        str(Path(sys.executable).parent.resolve()),
    }
    chosen = choose_launcher(
        candidates,
        running_bins=tuple(sorted(bins)),
        isolated_bin=os.path.realpath(layout.bin_dir),
    )
    if chosen is not None:
        return chosen, ""
    hint = "running as `python -m poetry`" if sys.argv[0].endswith(".py") else ""
    others = [
        f"{c.path} runs {c.python or 'an unknown interpreter'}" for c in candidates
    ]
    return None, "; ".join(filter(None, [hint, *others]))


def read_state(layout: Layout) -> State | None:
    try:
        text = Path(layout.state).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as error:
        raise CannotIsolateError(f"{layout.state} cannot be read ({error})") from error
    return State.from_json(text)


def find_record(
    location: str, name: str, version: str
) -> tuple[str | None, str | None]:
    """RECORD and entry_points.txt of ``name`` ``version`` installed in ``location``."""
    dist = _dists_in(location).get((name, version))
    if dist is None:
        return None, None
    return dist.read_text("RECORD"), dist.read_text("entry_points.txt")


@functools.cache
def _dists_in(location: str) -> dict[tuple[str, str], metadata.Distribution]:
    """The distributions of one directory by (canonical name, version), first wins."""
    from packaging.utils import canonicalize_name

    found: dict[tuple[str, str], metadata.Distribution] = {}
    for dist in metadata.distributions(path=[location]):
        try:
            raw = dist.metadata["Name"]
        except (KeyError, OSError):
            continue
        if raw:
            found.setdefault((canonicalize_name(raw), dist.version), dist)
    return found


def cached_wheel(name: str, version: str) -> Path | None:
    """A wheel of exactly ``name`` ``version`` in Poetry's artifact cache that
    this interpreter can install, if there is one."""
    from poetry_env_audit.artifacts import poetry_cache

    return poetry_cache().find(name, version)


def _plan_cached(
    wheel: Path, name: str, version: str, layout: Layout, bin_from_site: str
) -> DistPlan:
    try:
        with zipfile.ZipFile(wheel) as archive:
            members = archive.namelist()
            info = [m for m in members if m.endswith(".dist-info/RECORD")]
            record = archive.read(info[0]).decode("utf-8") if info else None
            entry = [m for m in members if m.endswith(".dist-info/entry_points.txt")]
            entry_points = archive.read(entry[0]).decode("utf-8") if entry else None
    except (OSError, zipfile.BadZipFile, UnicodeDecodeError) as error:
        raise CannotIsolateError(
            f"{name} {version}: the cached wheel {wheel} cannot be read ({error})"
        ) from error
    return plan_wheel(
        name=name,
        version=version,
        wheel=str(wheel),
        members=members,
        record=record,
        entry_points=entry_points,
        python=layout.python,
        bin_from_site=bin_from_site,
    )


# ------------------------------------------------------------------ the plan


@dataclass(frozen=True)
class Plan:
    """What ``poetry self isolate`` will do: the new environment and what goes in it."""

    layout: Layout
    poetry: str
    base_python: str
    launcher: LauncherCandidate
    dists: tuple[DistPlan, ...]
    site: str  # the new site-packages
    plugins: tuple[str, ...]

    @property
    def files(self) -> int:
        return sum(len(d.files) for d in self.dists)

    @property
    def versions(self) -> dict[str, str]:
        return {d.name: d.version for d in self.dists}


_DEDICATED = {
    "pipx": "pipx",
    "installer": "the official installer",
    "venv": "a virtual environment that holds nothing else and is not active",
}


def _active(prefix: str) -> bool:
    """Poetry's environment is the active ``VIRTUAL_ENV`` or ``CONDA_PREFIX``."""
    return any(
        os.environ.get(name) and os.path.realpath(os.environ[name]) == prefix
        for name in ("VIRTUAL_ENV", "CONDA_PREFIX")
    )


def plan(own: PoetryEnvironment, layout: Layout) -> tuple[Outcome, Plan | None, str]:
    """What isolating the running Poetry means; the third item describes an
    ``ALREADY`` outcome."""
    if os.name != "posix":
        raise CannotIsolateError(
            "only POSIX launchers (bin/poetry scripts) are supported"
        )
    launcher, hint = find_launcher(layout)
    prefix = os.path.realpath(sys.prefix)
    state = read_state(layout)
    outcome = decide(
        kind=own.installation.kind,
        prefix=prefix,
        layout=layout,
        launcher=launcher,
        state=state,
        problems=[p.detail for p in own.problems],
        launcher_hint=hint,
        dedicated=own.installation.isolated and not _active(prefix),
    )
    if outcome is Outcome.ALREADY:
        where = (
            layout.venv
            if prefix == layout.venv
            or (launcher is not None and points_at(launcher, layout))
            else f"{_DEDICATED.get(own.installation.kind, 'its own environment')}"
            f" at {sys.prefix}"
        )
        via = f", launcher {launcher.path}" if launcher is not None else ""
        return outcome, None, f"{where}{via}"
    if launcher is None:  # decide() refuses without one
        raise CannotIsolateError("no `poetry` launcher of this Poetry was found")
    directory = str(Path(launcher.path).parent)
    try:
        mode = Path(launcher.path).stat().st_mode
    except OSError as error:
        raise CannotIsolateError(
            f"the launcher {launcher.path} cannot be read ({error})"
        ) from error
    if not writable(
        mode,
        access=os.access(launcher.path, os.W_OK)
        and os.access(directory, os.W_OK | os.X_OK),
    ):
        raise CannotIsolateError(f"the launcher {launcher.path} is not writable")
    minor = f"{sys.version_info[0]}.{sys.version_info[1]}"
    base = base_interpreter(
        sys.base_prefix, minor, getattr(sys, "_base_executable", None), os.path.isfile
    )
    if base is None:
        raise CannotIsolateError(f"no base interpreter found in {sys.base_prefix}/bin")
    site = new_site(layout.venv, minor)
    bin_from_site = relative_bin(site, layout.bin_dir)
    dists = []
    for needed in own.needed:
        if needed.location is None or needed.version is None:
            continue  # not installed: already reported as a problem
        record, entry_points = find_record(needed.location, needed.name, needed.version)
        source = needed.location
        wheel = (
            None if record is not None else cached_wheel(needed.name, needed.version)
        )
        if wheel is not None:
            dists.append(
                _plan_cached(wheel, needed.name, needed.version, layout, bin_from_site)
            )
            continue
        dists.append(
            plan_dist(
                name=needed.name,
                version=needed.version,
                source=source,
                record=record,
                entry_points=entry_points,
                exists=_exists_in(source),
                python=layout.python,
                bin_from_site=bin_from_site,
            )
        )
    check_targets(dists)
    check_scripts(dists)
    if not any(
        s == POETRY_SCRIPT or s.name == "poetry" for d in dists for s in d.scripts
    ):
        raise CannotIsolateError("poetry's RECORD lists no `poetry` console script")
    return (
        Outcome.ISOLATE,
        Plan(
            layout=layout,
            poetry=own.version,
            base_python=base,
            launcher=launcher,
            dists=tuple(dists),
            site=site,
            plugins=own.plugins,
        ),
        "",
    )


# ------------------------------------------------------------------ doing it


def _exists_in(source: str) -> Callable[[str], bool]:
    def exists(rel: str) -> bool:
        return os.path.lexists(Path(source, rel))

    return exists


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in _SCRUBBED}


def _run(command: Sequence[str], what: str) -> subprocess.CompletedProcess[str]:
    try:
        result = subprocess.run(
            list(command),
            capture_output=True,
            text=True,
            env=_env(),
            timeout=CHECK_TIMEOUT,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise CannotIsolateError(f"{what} failed: {error}") from error
    if result.returncode != 0:
        output = " ".join((result.stderr or result.stdout).split())[-500:]
        raise CannotIsolateError(f"{what} failed (exit {result.returncode}): {output}")
    return result


def _symlink_atomic(path: str, target: str) -> None:
    link = Path(path)
    temporary = beside(link)
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(target)
    temporary.replace(link)


def _mode(path: str) -> int:
    return Path(path).stat().st_mode & 0o7777


def make_venv(plan: Plan) -> None:
    venv = plan.layout.venv
    shutil.rmtree(venv, ignore_errors=True)
    Path(venv).parent.mkdir(parents=True, exist_ok=True)
    _run(
        [plan.base_python, "-m", "venv", "--without-pip", venv],
        "creating the environment",
    )


def copy_files(plan: Plan) -> None:
    site = plan.site
    for dist in plan.dists:
        if dist.members is not None:
            _unpack(dist, dist.members, site)
            continue
        for rel in dist.files:
            source = Path(dist.source, rel)
            dest = Path(site, rel)
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                shutil.copy2(source, dest)
            except OSError as error:
                raise CannotIsolateError(
                    f"{dist.describe}: copying {source} failed ({error})"
                ) from error


def _unpack(dist: DistPlan, members: tuple[str, ...], site: str) -> None:
    """A cached wheel's files into site-packages (executable bits kept)."""
    try:
        with zipfile.ZipFile(dist.source) as archive:
            for member, rel in zip(members, dist.files):
                dest = Path(site, rel)
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(archive.read(member))
                if (archive.getinfo(member).external_attr >> 16) & 0o111:
                    dest.chmod(0o755)
    except (OSError, zipfile.BadZipFile, KeyError) as error:
        raise CannotIsolateError(
            f"{dist.describe}: unpacking {dist.source} failed ({error})"
        ) from error


def write_scripts(plan: Plan) -> None:
    for dist in plan.dists:
        for script in dist.scripts:
            data = render_script(plan.layout.python, script).encode()
            write_atomic(str(Path(plan.layout.bin_dir, script.name)), data, 0o755)
        record = Path(plan.site, dist.dist_info, "RECORD")
        write_atomic(str(record), dist.record.encode())
    Path(plan.layout.marker).write_text(
        f"Made by `poetry self isolate` (poetry-env-audit); state: {plan.layout.state}\n",
        encoding="utf-8",
    )


def verify(plan: Plan) -> None:
    """The new environment imports Poetry at the same versions, loads every
    plugin and its ``poetry`` script starts; otherwise :class:`CannotIsolateError`."""
    python = plan.layout.python
    result = _run(
        [python, "-I", "-c", _CHECK, json.dumps(plan.versions)],
        "checking the new environment",
    )
    try:
        data = json.loads(result.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError) as error:
        raise CannotIsolateError(
            f"checking the new environment: no answer ({error})"
        ) from error
    if data["errors"]:
        raise CannotIsolateError(
            "the new environment is not complete: " + "; ".join(data["errors"])
        )
    if os.path.realpath(data["base_prefix"]) != os.path.realpath(sys.base_prefix):
        raise CannotIsolateError(
            f"the new environment's base is {data['base_prefix']}, not {sys.base_prefix}"
        )
    missing = sorted(set(plan.plugins) - set(data["plugins"]))
    if missing:
        raise CannotIsolateError(
            f"plugins did not load in the new environment: {', '.join(missing)}"
        )
    script = str(Path(plan.layout.bin_dir, "poetry"))
    started = _run([script, "--version"], f"{script} --version")
    if plan.poetry not in started.stdout:
        raise CannotIsolateError(f"{script} --version said {started.stdout.strip()!r}")


def backup(plan: Plan) -> str | None:
    """Keep the old launcher (a symlink's target is recorded instead)."""
    launcher = plan.launcher
    if launcher.is_symlink:
        return str(Path(launcher.path).readlink())
    data = Path(launcher.path).read_bytes()
    write_atomic(plan.layout.backup, data, _mode(launcher.path))
    return None


def isolate(plan: Plan) -> None:
    """Every step of :class:`Step`, in order. A failure before the switch
    removes the new environment again; the launcher is never half-written."""
    layout = plan.layout
    try:
        make_venv(plan)
        checkpoint(Step.VENV)
        copy_files(plan)
        checkpoint(Step.COPY)
        write_scripts(plan)
        checkpoint(Step.SCRIPTS)
        verify(plan)
        checkpoint(Step.VERIFY)
    except (CannotIsolateError, OSError) as error:
        shutil.rmtree(layout.venv, ignore_errors=True)
        if isinstance(error, OSError):
            raise CannotIsolateError(
                f"building {layout.venv} failed ({error}); nothing was switched"
            ) from error
        raise
    try:
        symlink = backup(plan)
        checkpoint(Step.BACKUP)
        state = State(
            venv=layout.venv,
            launcher=plan.launcher.path,
            backup=layout.backup,
            original_prefix=os.path.realpath(sys.prefix),
            original_python=sys.executable,
            base_python=plan.base_python,
            poetry=plan.poetry,
            distributions=plan.versions,
            plugins=plan.plugins,
            backup_symlink=symlink,
        )
        write_atomic(layout.state, state.to_json().encode())
        checkpoint(Step.STATE)
        mode = 0o755 if plan.launcher.is_symlink else _mode(plan.launcher.path)
        launcher = render_launcher(layout.python, layout.venv).encode()
        write_atomic(plan.launcher.path, launcher, mode)
    except OSError as error:
        raise CannotIsolateError(
            f"switching {plan.launcher.path} failed ({error}); it is unchanged"
        ) from error
    checkpoint(Step.SWITCH)


def undo(layout: Layout) -> str:
    """Point the launcher back and remove the state and the backup; returns
    what was done, in one line. The caller removes the environment
    (:func:`remove_venv`) after its last output: Poetry may be running from it.
    """
    state = read_state(layout)
    if state is None:
        return (
            f"Poetry is not isolated by `poetry self isolate` ({layout.state}"
            " does not exist); nothing to undo."
        )
    current = read_launcher(state.launcher)
    restored = False
    if current is not None and points_at(current, layout):
        _restore(state)
        restored = True
    checkpoint(Step.SWITCH)
    for path in (layout.state, layout.backup):
        Path(path).unlink(missing_ok=True)
    if restored:
        return (
            f"{state.launcher} runs Poetry from {state.original_prefix} again;"
            f" {layout.venv} is removed."
        )
    return (
        f"{state.launcher} did not point at {layout.venv} (left as it is);"
        f" {layout.venv} is removed."
    )


def _restore(state: State) -> None:
    """The launcher as it was before (one ``os.replace``)."""
    if state.backup_symlink is not None:
        try:
            _symlink_atomic(state.launcher, state.backup_symlink)
        except OSError as error:
            raise CannotIsolateError(
                f"restoring {state.launcher} failed ({error}); it is unchanged"
            ) from error
        return
    try:
        data = Path(state.backup).read_bytes()
        mode = _mode(state.backup)
    except OSError as error:
        raise CannotIsolateError(
            f"the launcher backup {state.backup} cannot be read ({error})"
        ) from error
    try:
        write_atomic(state.launcher, data, mode)
    except OSError as error:
        raise CannotIsolateError(
            f"restoring {state.launcher} failed ({error}); it is unchanged"
        ) from error


def remove_venv(layout: Layout) -> None:
    shutil.rmtree(layout.venv, ignore_errors=True)


def marker_path(prefix: str) -> str:
    return str(Path(prefix, MARKER))
