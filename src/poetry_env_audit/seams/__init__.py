"""Every Poetry internal this plugin touches, in one place.

Poetry has no stable plugin API. Each function here wraps one internal and
:data:`SEAMS` lists them with the Poetry versions they were checked on, so that
a new Poetry release means reading this one module. Nothing outside this
module imports from ``poetry`` at run time (the plugin base class and the
command base class excepted, which Poetry itself documents for plugins).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from poetry_env_audit.errors import AuditError
from poetry_env_audit.target import TargetEnvironment
from poetry_env_audit.target import overlap
from poetry_env_audit.target import real_dirs

if TYPE_CHECKING:
    from collections.abc import Iterable
    from collections.abc import Sequence

    from cleo.io.io import IO
    from poetry.installation.operations.operation import Operation
    from poetry.poetry import Poetry
    from poetry.utils.env import Env

    from poetry_env_audit.plan import PlannedChange

#: Run by the test matrix (scripts/dev.py test). 2.1.4, 2.3.4 and 2.4.3 were
#: read (shared notes) but are not in the matrix.
CHECKED_ON = ("1.8.5", "2.0.1", "2.2.1", "2.5.1")


@dataclass(frozen=True)
class Seam:
    name: str
    what: str
    checked_on: tuple[str, ...] = CHECKED_ON


SEAMS: tuple[Seam, ...] = (
    Seam(
        "EnvManager.get",
        "poetry.utils.env.EnvManager(poetry).get(): the env Poetry picks, without creating one",
    ),
    Seam("EnvManager.use_in_project_venv", "where a new virtualenv would be created"),
    Seam("Env.site_packages.candidates", "directories an install writes to"),
    Seam("Env.paths['stdlib']", "where a PEP 668 EXTERNALLY-MANAGED marker lives"),
    Seam(
        "Locker.lock_data/is_fresh",
        "the lock file is present, readable and fresh",
    ),
    Seam(
        "Config.get('installer.re-resolve') read by Installer._do_install (2.x)",
        "env-audit plans from the lock's markers, without solving",
        ("2.0.1", "2.2.1", "2.5.1"),
    ),
    Seam(
        "Installer(io, env, package, locker, pool, config, executor=...)",
        "a dry run with a recording executor gives Poetry's own plan",
    ),
    Seam(
        "Installer.only_groups/extras/requires_synchronization/dry_run",
        "plan options as `poetry install` sets them",
    ),
    Seam(
        "Operation.job_type/package/initial_package/target_package/skipped",
        "reading the plan",
    ),
    Seam(
        "Package.requires + Dependency.to_pep_508()",
        "requirements of a planned version, from the lock",
    ),
    Seam(
        "poetry.core.constraints.version.parse_constraint",
        "whether the project's constraints allow Poetry's",
    ),
    Seam(
        "COMMAND listener at priority 0",
        "runs after Poetry's configure_env/configure_installer: command._installer is set",
    ),
    Seam(
        "InstallerCommand / SelfCommand in the command's MRO",
        "which commands install, and which target Poetry's own env",
    ),
    Seam(
        "Executor.execute (instance attribute)",
        "the last point before files change; returning 1 stops the command",
    ),
    Seam("Executor._env", "the environment the executor writes to"),
    Seam(
        "Executor._display_summary",
        "printed once for the whole plan when operations run in two phases",
    ),
    Seam(
        "Executor._shutdown", "Ctrl-C during the parallel phase stops the serial phase"
    ),
    Seam(
        "Env.marker_env/supported_tags/paths/sys_path/site_packages",
        "lazily cached facts, computed before a swap",
    ),
    Seam("Installer.is_dry_run()", "--dry-run never blocks"),
    Seam(
        "Executor._use_builtin_uninstall, Env.site_packages.distributions(name=)",
        "serialised swaps use Poetry's in-process uninstaller (absent before 2.5: pip)",
        ("2.5.1",),
    ),
    Seam(
        "Installer._installed_repository/_get_installed",
        "re-read the installed packages after waiting for the environment lock",
    ),
    Seam("Env.paths['purelib']", "where the environment lock lives"),
    Seam(
        "ConsoleCommandEvent.disable_command / ConsoleTerminateEvent.set_exit_code (cleo)",
        "refuse before the command runs",
    ),
)


# ----------------------------------------------------------------- versions


def poetry_version() -> str:
    from poetry.__version__ import __version__

    return str(__version__)


# ------------------------------------------------------------ target environment


def _same(a: str | os.PathLike[str] | None, b: str | os.PathLike[str] | None) -> bool:
    if not a or not b:
        return False
    return os.path.realpath(os.fspath(a)) == os.path.realpath(os.fspath(b))


def env_site_dirs(env: Env) -> tuple[str, ...]:
    return real_dirs(env.site_packages.candidates)


def describe_env(
    env: Env, *, kind: str, reason: str, import_paths: Iterable[str]
) -> TargetEnvironment:
    """A :class:`TargetEnvironment` for an environment object Poetry handed us."""
    site_dirs = env_site_dirs(env)
    managed: str | None = None
    if kind == "system":
        from poetry_env_audit.poetry_env import externally_managed_message

        try:
            managed = externally_managed_message(env.paths["stdlib"])
        except (KeyError, OSError):
            managed = None
    python: str | None
    try:
        python = str(env.python)
    except Exception:  # noqa: BLE001 - a broken env still has a path to report
        python = None
    return TargetEnvironment(
        path=str(env.path),
        python=python,
        kind=kind,
        reason=reason,
        site_dirs=site_dirs,
        shared_dirs=overlap(site_dirs, import_paths),
        externally_managed=managed,
    )


def describe_project_env(
    poetry: Poetry, env: Env, import_paths: Iterable[str]
) -> TargetEnvironment:
    """Kind and reason of the environment a project command installs into."""
    if not env.is_venv():
        return describe_env(
            env,
            kind="system",
            reason="virtualenvs.create = false",
            import_paths=import_paths,
        )
    from poetry.utils.env import EnvManager

    if _same(env.path, os.environ.get("VIRTUAL_ENV")):
        reason = "VIRTUAL_ENV"
    elif _same(env.path, os.environ.get("CONDA_PREFIX")):
        reason = "CONDA_PREFIX"
    elif _same(env.path, EnvManager(poetry).in_project_venv):
        reason = "in-project .venv"
    else:
        reason = "managed virtualenv"
    kind = "conda" if (Path(env.path) / "conda-meta").is_dir() else "venv"
    return describe_env(env, kind=kind, reason=reason, import_paths=import_paths)


def find_target(
    poetry: Poetry, io: IO, import_paths: Iterable[str]
) -> tuple[Env | None, TargetEnvironment]:
    """The environment ``poetry install`` would use, found as Poetry finds it.

    Mirrors ``EnvManager.create_venv`` without creating anything: an existing
    venv (``VIRTUAL_ENV``, ``CONDA_PREFIX``, in-project ``.venv``, managed), the
    system interpreter when ``virtualenvs.create`` is false, otherwise a new
    virtualenv that cannot overlap Poetry's environment.
    """
    from poetry.utils.env import EnvManager

    manager = EnvManager(poetry, io=io)
    env = manager.get()
    create = bool(poetry.config.get("virtualenvs.create", True))
    if env.is_venv() or not create:
        return env, describe_project_env(poetry, env, import_paths)
    where = (
        manager.in_project_venv
        if manager.use_in_project_venv()
        else Path(poetry.config.virtualenvs_path)
    )
    return None, TargetEnvironment(
        path=str(where),
        python=None,
        kind="new-venv",
        reason="Poetry would create a new virtualenv",
        site_dirs=(),
        shared_dirs=(),
    )


# ------------------------------------------------------------------ lock and plan


def check_lock(poetry: Poetry) -> None:
    """Raise :class:`AuditError` unless the lock is present and readable.

    Freshness is Poetry's own first check when it plans (:func:`plan_operations`);
    :func:`check_fresh` says it in our words. Reading it here as well would
    parse the lock a second time.
    """
    locker = poetry.locker
    lock_path = Path(locker.lock)
    if not lock_path.exists():
        raise AuditError(
            f"{lock_path} does not exist.",
            hint="Run `poetry lock` first; env-audit plans from the lock, never from an index.",
        )
    try:
        data = locker.lock_data
        if not isinstance(data, dict) or (
            "package" not in data and "metadata" not in data
        ):
            raise RuntimeError("no [metadata] table")
    except Exception as exc:
        raise _unreadable(lock_path, exc) from exc


def check_fresh(poetry: Poetry) -> None:
    """Raise :class:`AuditError` when the lock is out of date with pyproject.toml."""
    lock_path = Path(poetry.locker.lock)
    try:
        fresh = poetry.locker.is_fresh()
    except Exception as exc:
        raise _unreadable(lock_path, exc) from exc
    if not fresh:
        raise AuditError(
            f"{lock_path} is out of date with pyproject.toml; auditing it would need"
            " a new solve over the network.",
            hint="Run `poetry lock` to bring it up to date.",
        )


def _unreadable(lock_path: Path, exc: BaseException) -> AuditError:
    return AuditError(
        f"{lock_path} could not be read: {_one_line(exc)}.",
        hint="Regenerate it with `poetry lock`.",
    )


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text.rstrip(".")


class RecordingExecutor:
    """Stands in for Poetry's Executor: records the operations, runs none."""

    def __init__(self) -> None:
        self.operations: list[Operation] = []
        self._enabled = True

    @property
    def enabled(self) -> bool:
        return self._enabled

    def disable(self) -> RecordingExecutor:
        self._enabled = False
        return self

    def dry_run(self, dry_run: bool = True) -> RecordingExecutor:
        return self

    def verbose(self, verbose: bool = True) -> RecordingExecutor:
        return self

    def enable_bytecode_compilation(self, enable: bool = True) -> None:
        return None

    def execute(self, operations: list[Operation]) -> int:
        self.operations = list(operations)
        return 0


class _FromLockMarkers:
    """Poetry's config with ``installer.re-resolve`` off, for planning only.

    Poetry 2.0 to 2.4 re-resolve the lock by default (2.5 does not); with it
    off, Poetry's Installer evaluates the markers a 2.1 lock records instead of
    solving, and falls back to solving for an older lock itself. Poetry 1.8
    has no such switch and always solves over the lock's packages (never an
    index).
    """

    def __init__(self, config: Any) -> None:
        self._config = config

    def get(self, setting_name: str, default: Any = None) -> Any:
        if setting_name == "installer.re-resolve":
            return False
        return self._config.get(setting_name, default)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._config, name)


def plan_operations(
    poetry: Poetry,
    env: Env,
    *,
    groups: Iterable[str] | None,
    extras: Sequence[str],
    sync: bool,
) -> list[Operation]:
    """Ask Poetry's Installer what ``poetry install`` would execute (a dry run).

    Raises :class:`AuditError` for a stale lock (:func:`check_fresh`).
    """
    from cleo.io.null_io import NullIO
    from packaging.utils import canonicalize_name
    from poetry.installation.installer import Installer

    recorder = RecordingExecutor()
    installer = Installer(
        NullIO(),
        env,
        poetry.package,
        poetry.locker,
        poetry.pool,
        _FromLockMarkers(poetry.config),  # type: ignore[arg-type]
        executor=recorder,  # type: ignore[arg-type]
    )
    installer.dry_run(True)
    if groups is not None:
        installer.only_groups({canonicalize_name(g) for g in groups})
    installer.extras([canonicalize_name(e) for e in extras])
    installer.requires_synchronization(sync)
    try:
        status = installer.run()
    except AuditError:
        raise
    except Exception as exc:
        check_fresh(poetry)  # Poetry's ValueError for a stale lock, in our words
        raise AuditError(
            f"Poetry could not plan the install: {_one_line(exc)}."
        ) from exc
    if status != 0:
        raise AuditError(f"Poetry could not plan the install (status {status}).")
    return recorder.operations


def _requires(package: Any) -> tuple[str, ...]:
    out: list[str] = []
    for dep in getattr(package, "requires", ()):
        if dep.is_optional():
            continue
        try:
            out.append(str(dep.to_pep_508()))
        except Exception:  # noqa: BLE001,S112 - a requirement Poetry cannot print is skipped
            continue
    return tuple(out)


def operations_to_changes(operations: Iterable[Operation]) -> list[PlannedChange]:
    """Reduce Poetry operations to :class:`PlannedChange` (skipped ones dropped)."""
    from poetry_env_audit.plan import PlannedChange
    from poetry_env_audit.plan import classify

    changes: list[PlannedChange] = []
    for op in operations:
        if op.skipped:
            continue
        job = op.job_type
        if job == "update":
            initial, target = op.initial_package, op.target_package  # type: ignore[attr-defined]
        elif job == "install":
            initial, target = None, op.package
        else:
            initial, target = op.package, None
        ref = target or initial
        # pretty_version: full_pretty_version carries a file path or a git ref.
        current = initial.pretty_version if initial else None
        planned = target.pretty_version if target else None
        changes.append(
            PlannedChange(
                name=str(ref.name),
                display_name=str(ref.pretty_name),
                action=classify(
                    job,
                    initial.version.text if initial else None,
                    target.version.text if target else None,
                ),
                current=current,
                planned=planned,
                requires=_requires(target) if target else (),
            )
        )
    return changes


# --------------------------------------------------------------- project constraints


@dataclass(frozen=True)
class Holder:
    """Something in the project that constrains a package: who, and how."""

    who: str
    constraint: str
    allows: bool


def project_holders(poetry: Poetry, name: str, specifier: str) -> list[Holder]:
    """Who in the project (pyproject or lock) constrains ``name``, and whether each
    constraint leaves room for ``specifier`` (a PEP 440 specifier set)."""
    from poetry.core.constraints.version import parse_constraint

    wanted = parse_constraint(specifier or "*")
    holders: list[Holder] = []
    root = poetry.package
    for dep in root.all_requires:
        if dep.name == name:
            holders.append(
                Holder(
                    who=f"{root.pretty_name} (pyproject.toml)",
                    constraint=str(dep.pretty_constraint),
                    allows=not dep.constraint.intersect(wanted).is_empty(),
                )
            )
    try:
        locked = poetry.locker.locked_repository().packages
    except Exception:  # noqa: BLE001 - the audit already reported an unreadable lock
        locked = []
    for package in locked:
        for dep in package.requires:
            if dep.name == name and not dep.is_optional():
                holders.append(
                    Holder(
                        who=f"{package.pretty_name} {package.full_pretty_version}",
                        constraint=str(dep.pretty_constraint),
                        allows=not dep.constraint.intersect(wanted).is_empty(),
                    )
                )
    return holders


# ------------------------------------------------------------------ project files


def project_dir(poetry: Poetry) -> Path:
    return Path(poetry.pyproject_path).parent


def project_table(poetry: Poetry) -> object:
    """``[tool.poetry-env-audit]`` of the project, or ``None``."""
    data = poetry.pyproject.data
    tool = data.get("tool") if isinstance(data, dict) else None
    return tool.get("poetry-env-audit") if isinstance(tool, dict) else None


def load_poetry(command: Any) -> Poetry:
    """``command.poetry``, with "not a Poetry project" turned into an AuditError."""
    try:
        return command.poetry  # type: ignore[no-any-return]
    except Exception as exc:
        raise AuditError(f"not a Poetry project: {_one_line(exc)}.") from exc


def activated_groups(command: Any) -> frozenset[str]:
    """The groups ``--with/--without/--only/--all-groups`` select, as Poetry computes them."""
    try:
        groups = set(command.activated_groups)
        if command.option("all-groups") and not command.option("only"):
            groups |= set(
                command.poetry.package.dependency_group_names(include_optional=True)
            )
    except Exception as exc:
        raise AuditError(_one_line(exc) + ".") from exc
    return frozenset(groups)


# ------------------------------------------------------------------ the guard's hooks

SELF_COMMAND = "SelfCommand"


def is_self_command(command: object) -> bool:
    return any(cls.__name__ == SELF_COMMAND for cls in type(command).__mro__)


#: Seams found missing at run time in this process (reported once, in one line).
MISSING: dict[str, str] = {}


def _missing(seam: str, fallback: str) -> None:
    MISSING.setdefault(seam, fallback)


def command_installer(command: Any) -> Any:
    """The Installer Poetry configured for this command (priority-0 listeners run after it)."""
    return getattr(command, "_installer", None)


def executor_env(installer: Any, command: Any = None) -> Env:
    """The environment the executor will write to."""
    env = getattr(installer.executor, "_env", None)
    if env is None:
        _missing("Executor._env", "using the command's env")
        env = command.env if command is not None else installer._env
    return env  # type: ignore[no-any-return]


def is_dry_run(installer: Any, command: Any = None) -> bool:
    probe = getattr(installer, "is_dry_run", None)
    if probe is None:
        _missing("Installer.is_dry_run", "reading --dry-run")
        return bool(
            command is not None
            and command.io.input.has_option("dry-run")
            and command.option("dry-run")
        )
    return bool(probe())


def refresh_installed(installer: Any) -> None:
    """Re-read what is installed: another process may have changed it while we waited.

    The Installer reads the installed packages when it is built, before our
    lock is taken.
    """
    if hasattr(installer, "_installed_repository") and hasattr(
        installer, "_get_installed"
    ):
        installer._installed_repository = installer._get_installed()
    else:
        _missing("Installer._installed_repository", "the plan may predate the wait")


def env_purelib(env: Env) -> Path:
    """The directory the environment lock lives in: the target's purelib."""
    return Path(os.path.realpath(env.paths["purelib"]))


def env_stdlib(env: Env) -> str | None:
    try:
        return str(env.paths["stdlib"])
    except (KeyError, OSError):
        return None


def input_option(io: Any, name: str) -> bool:
    """An option's value from the event's input, or False when the command
    (on this Poetry version) does not have it.

    At COMMAND time ``command.io`` is not set yet (cleo sets it in
    ``execute``), but the event's input is already bound to the command.
    """
    try:
        if not io.input.has_option(name):
            return False
        return bool(io.input.option(name))
    except Exception:  # noqa: BLE001 - an option the command lacks is simply off
        return False


def warm_env(env: Env) -> None:
    """Compute what Poetry caches lazily about ``env`` while every file is in place.

    Poetry 1.8 loads ``packaging/tags.py`` by path to compute supported tags of
    an environment; doing it now means no later step reads a half-swapped
    package.
    """
    for attribute in (
        "marker_env",
        "supported_tags",
        "paths",
        "sys_path",
        "site_packages",
    ):
        # hasattr evaluates the (cached) property; a missing one is reported.
        if not hasattr(env, attribute):
            _missing(f"Env.{attribute}", "not computed before the swap")


@dataclass
class ExecutorHandle:
    """Wraps ``executor.execute`` on one Executor instance (never the class)."""

    executor: Any
    original: Any

    def run(self, operations: list[Operation]) -> int:
        """Run operations through Poetry's own execute, without its summary line."""
        return int(self.original(list(operations)))

    def summary(self, operations: list[Operation]) -> None:
        if self._summary is not None:
            self._summary(list(operations))

    def quiet_summary(self) -> None:
        if not hasattr(self.executor, "_display_summary"):
            _missing("Executor._display_summary", "each phase prints its own summary")
            return
        self.executor._display_summary = lambda operations: None

    def restore_summary(self) -> None:
        if "_display_summary" in vars(self.executor):
            del self.executor._display_summary

    def shut_down(self) -> bool:
        return bool(getattr(self.executor, "_shutdown", False))

    def choose_uninstaller(self, name: str, *, builtin: bool) -> bool:
        """Before a serialised operation on ``name``: Poetry's in-process uninstaller?

        Poetry 2.5 has one (``installer.builtin-uninstall``, off by default); it
        spares the ``pip uninstall`` subprocess each swap starts, the cost that
        serialising makes visible. It is chosen only for a single ``.dist-info``
        with a RECORD, where it removes exactly the files pip would (without a
        RECORD it would skip what pip refuses). Otherwise, and on older Poetry,
        the configured uninstaller stays. Returns whether the built-in one was
        chosen; :meth:`restore_uninstaller` undoes it.
        """
        if not hasattr(self.executor, "_use_builtin_uninstall"):
            return False
        if self._configured_uninstaller is None:
            self._configured_uninstaller = bool(self.executor._use_builtin_uninstall)
        chosen = builtin and _one_recorded_dist(self.executor._env, name)
        self.executor._use_builtin_uninstall = chosen or self._configured_uninstaller
        return chosen

    def restore_uninstaller(self) -> None:
        if self._configured_uninstaller is not None:
            self.executor._use_builtin_uninstall = self._configured_uninstaller
            self._configured_uninstaller = None

    _summary: Any = None
    _configured_uninstaller: bool | None = None


def _one_recorded_dist(env: Env, name: str) -> bool:
    dists = list(env.site_packages.distributions(name=name))
    return len(dists) == 1 and dists[0].read_text("RECORD") is not None


def wrap_execute(installer: Any, replacement: Any) -> ExecutorHandle:
    """Replace ``installer.executor.execute`` on the instance; return the handle."""
    executor = installer.executor
    handle = ExecutorHandle(executor=executor, original=executor.execute)
    handle._summary = getattr(executor, "_display_summary", None)
    executor.execute = lambda operations: replacement(handle, operations)
    return handle
