"""Poetry's installing commands, as the guard sees one: :class:`InstallingCommand`.

The COMMAND listener runs at priority 0, after Poetry's own listeners, so the
command's Installer (``InstallerCommand._installer``) is already set when the
adapter is made. Every fact the guard needs about the command is derived here
once.
"""

from __future__ import annotations

import functools
import shlex
from typing import TYPE_CHECKING
from typing import Any

from poetry_env_audit.seams import Fallbacks
from poetry_env_audit.seams.environment import warm_env
from poetry_env_audit.seams.executor import executor_env
from poetry_env_audit.seams.executor import wrap_execute
from poetry_env_audit.seams.project import project_dir
from poetry_env_audit.seams.project import project_table

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

    from cleo.io.io import IO
    from poetry.poetry import Poetry
    from poetry.utils.env import Env

    from poetry_env_audit.seams.executor import Execute
    from poetry_env_audit.seams.executor import ExecutorHandle

#: Installing commands (``InstallerCommand``) that run no operation at all:
#: they only write the lock, or only show what is installed.
LOCK_ONLY = frozenset({"lock", "self lock"})
READ_ONLY = frozenset({"self show", "self show plugins"})
#: Their classes, for the same commands under other names (or from plugins).
NO_OPERATION_CLASSES = ("LockCommand", "ShowCommand", "SelfShowPluginsCommand")


def _in_mro(command: object, class_name: str) -> bool:
    return any(cls.__name__ == class_name for cls in type(command).__mro__)


def is_installer_command(command: object) -> bool:
    """install, sync, add, remove, update, lock and ``self ...``: Poetry's installing commands."""
    return _in_mro(command, "InstallerCommand")


def is_self_command(command: object) -> bool:
    """``poetry self ...``: the target is Poetry's own environment."""
    return _in_mro(command, "SelfCommand")


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


#: The options of ``poetry install`` that choose what is installed, as flags.
_GROUP_OPTIONS = ("with", "without", "only")


def install_flags(io: Any) -> str:
    """The group and extras options given on the command line, shell-quoted,
    to repeat in a remedy (``--only main --all-extras``)."""
    flags: list[str] = []

    def values(name: str) -> list[str]:
        try:
            if not io.input.has_option(name):
                return []
            value = io.input.option(name)
        except Exception:  # noqa: BLE001 - an option this command lacks
            return []
        if isinstance(value, (list, tuple)):
            return [str(v) for v in value if v]
        return [str(value)] if value not in (None, False, "") else []

    for name in _GROUP_OPTIONS:
        flags.extend(f"--{name} {shlex.quote(v)}" for v in values(name))
    if values("all-groups"):
        flags.append("--all-groups")
    flags.extend(f"-E {shlex.quote(v)}" for v in values("extras"))
    if values("all-extras"):
        flags.append("--all-extras")
    return " ".join(flags)


class InstallingCommand:
    """One of Poetry's installing commands, with the event's ``io``."""

    def __init__(self, command: Any, io: IO) -> None:
        self.command = command
        self.io = io
        self.fallbacks = Fallbacks()
        self.name = str(getattr(command, "name", "") or "install")
        self.is_self = is_self_command(command)

    @property
    def runs_operations(self) -> bool:
        """Whether the command can execute operations: ``lock`` and ``self lock``
        only write the lock, ``self show`` and ``self show plugins`` only read
        (every ``self`` command is an ``InstallerCommand``, so the class alone
        does not tell)."""
        if self.name in LOCK_ONLY or self.name in READ_ONLY:
            return False
        return not any(_in_mro(self.command, c) for c in NO_OPERATION_CLASSES)

    @property
    def installer(self) -> Any:
        """The Installer Poetry configured for this command, or ``None``."""
        return getattr(self.command, "_installer", None)

    @property
    def guardable(self) -> bool:
        """Whether this Poetry hands the plugin an Installer with an Executor."""
        return self.installer is not None and hasattr(self.installer, "executor")

    @property
    def executor(self) -> Any:
        return self.installer.executor

    @property
    def poetry(self) -> Poetry:
        return self.command.poetry  # type: ignore[no-any-return]

    @functools.cached_property
    def env(self) -> Env:
        """The environment the executor will write to."""
        return executor_env(self.executor, self._command_env, self.fallbacks)

    @functools.cached_property
    def import_paths(self) -> tuple[str, ...]:
        """Poetry's own import paths (``sys.path``), by real path, read once
        per command: the lock, the lock read and the decision all ask."""
        import sys

        from poetry_env_audit.target import real_dirs

        return real_dirs(p for p in sys.path if p)

    @functools.cached_property
    def shares_with_poetry(self) -> bool:
        """Whether the target's site directories are among Poetry's import
        paths, by real path. ``self`` commands always share."""
        return self.shares_poetry_env(self.import_paths)

    def shares_poetry_env(self, import_paths: Iterable[str]) -> bool:
        """Whether the target's site directories are among ``import_paths``
        (Poetry's), by real path. ``self`` commands always share."""
        from poetry_env_audit.seams.environment import env_site_dirs
        from poetry_env_audit.target import overlap

        return self.is_self or bool(overlap(env_site_dirs(self.env), import_paths))

    def _command_env(self) -> Env:
        return self.command.env  # type: ignore[no-any-return]

    def wrap_execute(self, replacement: Execute) -> ExecutorHandle:
        """Route the executor's ``execute`` through ``replacement``."""
        return wrap_execute(self.executor, replacement, self.fallbacks)

    def warm_env(self) -> None:
        """Before a swap: Poetry's lazily cached facts about the target, computed now."""
        warm_env(self.env, self.fallbacks)

    def table(self) -> object:
        """``[tool.poetry-env-audit]`` of the project (``None`` when there is none)."""
        return project_table(self.poetry)

    def table_or_none(self) -> object:
        """The table, or ``None`` when even reading it fails (for error paths)."""
        try:
            return self.table()
        except Exception:  # noqa: BLE001 - best effort: the env var still counts
            return None

    @property
    def project_dir(self) -> Path:
        return project_dir(self.poetry)

    def dry_run(self) -> bool:
        """``--dry-run``: the Installer's own state once the command set it, the
        event's input before that (at COMMAND time the Installer is not told yet)."""
        probe = getattr(self.installer, "is_dry_run", None)
        if probe is None:
            self.fallbacks.note("Installer.is_dry_run", "reading --dry-run")
        elif probe():
            return True
        return input_option(self.io, "dry-run")

    def refresh_installed(self) -> None:
        """Re-read what is installed: another process may have changed it while we waited.

        The Installer reads the installed packages when it is built, before our
        lock is taken.
        """
        installer = self.installer
        if hasattr(installer, "_installed_repository") and hasattr(
            installer, "_get_installed"
        ):
            installer._installed_repository = installer._get_installed()
        else:
            self.fallbacks.note(
                "Installer._installed_repository", "the plan may predate the wait"
            )

    def install_options(self) -> tuple[frozenset[str] | None, tuple[str, ...]]:
        """The groups and extras this command installs (for checking remedies)."""
        try:
            groups: frozenset[str] | None = frozenset(self.command.activated_groups)
        except Exception:  # noqa: BLE001 - not a group command: the lock's default
            groups = None
        extras = getattr(self.installer, "_extras", None) or ()
        return groups, tuple(str(e) for e in extras)

    @property
    def synchronising(self) -> bool:
        """``poetry sync`` / ``install --sync``: the Installer removes what the lock lacks."""
        return bool(getattr(self.installer, "_requires_synchronization", False))

    @property
    def reresolves(self) -> bool:
        """Whether this Poetry re-resolves the lock (``installer.re-resolve``, 2.x)."""
        try:
            return bool(self.poetry.config.get("installer.re-resolve", True))
        except Exception:  # noqa: BLE001 - unreadable: assume the slower, exact way
            return True

    def retry_command(self) -> str | None:
        """For ``poetry remove``: the same removal without touching the environment."""
        if self.name != "remove":
            return None
        try:
            packages = [str(p) for p in self.command.argument("packages")]
        except Exception:  # noqa: BLE001 - an argument this version lacks
            packages = ["<package>"]
        return "poetry remove --lock " + " ".join(shlex.quote(p) for p in packages)
