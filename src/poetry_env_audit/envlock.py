"""An exclusive, cross-process lock on the environment an install changes.

Where the lock lives
    ``<dir>/.poetry-env-audit.lock``, where ``<dir>`` is the *purelib
    site-packages directory of the target environment* (Poetry's
    ``env.paths["purelib"]``, the first of ``TargetEnvironment.site_dirs``),
    resolved with :func:`os.path.realpath`. That is the directory every install
    writes to anyway, so any process allowed to install may create the lock
    there; it is inside the environment it protects (never a shared,
    world-writable directory); and it names what is actually changed, which the
    prefix does not always do (Debian installs into ``/usr/local/...`` for the
    prefix ``/usr``; Homebrew keeps one ``site-packages`` outside the versioned
    prefixes that share it). Every process must pass the same directory, so
    callers compute it one way: from the interpreter's own ``purelib`` path,
    not from which directories happen to exist.

The locking primitive
    :class:`filelock.FileLock` (``flock(2)`` on POSIX, ``LockFileEx`` on
    Windows). The kernel drops such a lock when the process holding it dies,
    however it dies (``SIGKILL`` included), so a stale lock never blocks
    anybody. The lock file is created empty and left in place (unlinking a
    lock file breaks mutual exclusion for processes already waiting on it).

Symlinks
    filelock 3.20.1 and later open the lock file with ``O_NOFOLLOW``; 3.12 to
    3.20.0 follow a symlink and truncate and ``chmod`` its target. So before
    handing the path to filelock this module refuses anything at the lock path
    that is not a plain regular file with a single link, and creates the file
    itself with ``O_CREAT | O_EXCL | O_NOFOLLOW`` when it is missing. Once
    locked, it checks that the locked descriptor and ``os.lstat(path)`` name
    the same regular file, owned by this user, root or the directory's owner.

Who holds it
    :mod:`poetry_env_audit.lockholder`: a ``<lock>.holder`` record, only ever
    informative.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import stat
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from poetry_env_audit.errors import AuditError
from poetry_env_audit.lockholder import holder
from poetry_env_audit.lockholder import hostname
from poetry_env_audit.lockholder import now
from poetry_env_audit.lockholder import remove_holder
from poetry_env_audit.lockholder import write_holder

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType

    from filelock import BaseFileLock


LOCK_NAME = ".poetry-env-audit.lock"
TIMEOUT_VARIABLE = "POETRY_ENV_AUDIT_LOCK_TIMEOUT"
#: How often a waiter tries the lock again.
POLL_INTERVAL = 0.1

_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


class EnvLockError(AuditError):
    """The environment lock could not be taken (bad lock file, unlockable filesystem)."""


class EnvLockUnwritableError(EnvLockError):
    """The lock file cannot be created: the environment is read-only to us
    (``EROFS``, ``EACCES``, ``EPERM``). Then nothing can be installed there
    either, and a command that turns out to change nothing may go on."""


_UNWRITABLE = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})


def _create_error(message: str, exc: OSError) -> EnvLockError:
    error = _error(message)
    if exc.errno in _UNWRITABLE:
        return EnvLockUnwritableError(error.message, hint=error.hint)
    return error


class EnvLockTimeout(EnvLockError):  # noqa: N818 - the name the callers use
    """Another process held the environment lock for longer than the timeout."""


def lock_path_for(env_path: str | os.PathLike[str]) -> Path:
    """The lock file for the environment directory ``env_path`` (see the module doc)."""
    return Path(os.path.realpath(os.fspath(env_path))) / LOCK_NAME


def externally_managed_error(
    stdlib: str | os.PathLike[str], *, in_venv: bool
) -> str | None:
    """PEP 668: the one-line refusal for installing into this interpreter, or ``None``.

    ``stdlib`` is the target interpreter's ``sysconfig`` ``stdlib`` path. The
    ``EXTERNALLY-MANAGED`` marker only applies outside a virtual environment
    (PEP 668), so ``in_venv`` (``sys.prefix != sys.base_prefix`` of the
    target) always gives ``None``. The marker's text is folded onto one line.
    """
    if in_venv:
        return None
    from poetry_env_audit.poetry_env import externally_managed_message

    message = externally_managed_message(stdlib)
    if message is None:
        return None
    return " ".join(message.split())


class _Hold:
    """One process's hold on one lock file, shared by its :class:`EnvironmentLock` objects."""

    __slots__ = ("count", "lock", "pid", "since")

    def __init__(self, lock: BaseFileLock, since: str) -> None:
        self.lock = lock
        self.since = since
        self.pid = os.getpid()
        self.count = 1


# Lock file path -> this process's hold on it. A second EnvironmentLock on a
# path this process already holds joins the hold instead of waiting on itself.
_HOLDS: dict[str, _Hold] = {}
_HOLDS_GUARD = threading.Lock()


class EnvironmentLock:
    """Exclusive lock on one environment, across processes.

    ``env_path`` is the directory the lock file goes in (see the module doc:
    the target's purelib ``site-packages``); it is created if missing.
    ``timeout`` is in seconds; ``0`` tries once; a negative or infinite value
    waits for as long as it takes. ``notify`` is called once, with one line,
    when the lock is held elsewhere and this process starts to wait.

    :meth:`acquire` is idempotent and :meth:`release` may be called any number
    of times. Another :class:`EnvironmentLock` on the same environment in the
    same process joins the hold already there (so it never waits on its own
    process); the OS lock goes when the last of them releases. Used as a
    context manager, the lock is released on every way out of the block,
    ``KeyboardInterrupt`` included.

    Waiting happens under a process-wide guard, so other threads of this
    process that take an environment lock meanwhile wait too (Poetry installs
    from one thread).
    """

    def __init__(
        self,
        env_path: str | os.PathLike[str],
        *,
        timeout: float,
        command: str,
        notify: Callable[[str], None],
    ) -> None:
        if math.isnan(timeout):
            raise ValueError("timeout must be a number of seconds, not NaN")
        self.env_path = Path(os.path.realpath(os.fspath(env_path)))
        self.lock_path = self.env_path / LOCK_NAME
        self.timeout = timeout
        self.command = command
        self._notify = notify
        self._hold: _Hold | None = None
        #: True once this lock had to wait for another process.
        self.waited = False

    @property
    def held(self) -> bool:
        return self._hold is not None

    def __enter__(self) -> EnvironmentLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def __repr__(self) -> str:
        state = "held" if self.held else "not held"
        return f"<EnvironmentLock {self.lock_path} {state}>"

    # ------------------------------------------------------------- acquire

    def acquire(self) -> None:
        """Take the lock, waiting up to ``timeout`` seconds for another process.

        :raises EnvLockTimeout: another process held it for the whole timeout.
        :raises EnvLockError: the lock file is unsafe or cannot be locked.
        """
        if self._hold is not None:
            return
        key = str(self.lock_path)
        with _HOLDS_GUARD:
            hold = _HOLDS.get(key)
            if hold is not None and hold.pid == os.getpid():
                hold.count += 1
                self._hold = hold
                return
            lock = self._lock_object()
            try:
                self._take(lock)
                verify_locked(lock, self.env_path, self.lock_path)
                since = now()
                write_holder(self.lock_path, since, self.command)
            except BaseException:
                # Whatever stopped us (Ctrl-C included) must not leave the OS lock held.
                with contextlib.suppress(Exception):
                    if lock.is_locked:
                        lock.release(force=True)
                raise
            hold = _Hold(lock, since)
            self._hold = hold  # first, so that release() finds it whatever comes next
            _HOLDS[key] = hold

    def _lock_object(self) -> BaseFileLock:
        self._prepare()
        return _file_lock(self.lock_path)

    def _prepare(self) -> None:
        prepare_lock_file(self.env_path, self.lock_path)

    def _take(self, lock: BaseFileLock) -> None:
        def waiting(line: str) -> None:
            self.waited = True
            self._notify(line)

        take(lock, self.lock_path, self.timeout, waiting)

    # ------------------------------------------------------------- release

    def release(self) -> None:
        """Give the lock up. Safe to call when not held, and more than once."""
        with _HOLDS_GUARD:
            hold, self._hold = self._hold, None
            if hold is None:
                return
            hold.count -= 1
            if hold.count > 0:
                return
            if _HOLDS.get(str(self.lock_path)) is hold:
                del _HOLDS[str(self.lock_path)]
            if hold.pid != os.getpid():  # a forked child: the OS lock is the parent's
                return
            remove_holder(self.lock_path, hold.since)
            # An unlock that fails (EIO on some network filesystems) leaves nothing
            # to retry: the kernel drops the lock when this process ends.
            with contextlib.suppress(OSError):
                hold.lock.release(force=True)


_TIMEOUT_HINT = f"Set {TIMEOUT_VARIABLE} to wait longer."


# ------------------------------------------------------------ the lock file


def take(
    lock: BaseFileLock, lock_path: Path, timeout: float, waiting: Callable[[str], None]
) -> None:
    """Lock ``lock``, waiting up to ``timeout`` seconds; ``waiting`` is told
    (one line) when another process holds it."""
    from filelock import Timeout

    try:
        try:
            lock.acquire(blocking=False)
            return
        except Timeout:
            pass
        waiting(waiting_message(lock_path))
        wait = -1.0 if timeout < 0 or math.isinf(timeout) else timeout
        try:
            lock.acquire(timeout=wait, poll_interval=POLL_INTERVAL)
        except Timeout:
            raise EnvLockTimeout(
                timeout_message(lock_path, timeout), hint=_TIMEOUT_HINT
            ) from None
    except OSError as exc:
        raise _create_error(f"cannot lock {lock_path}: {_reason(exc)}", exc) from None
    except NotImplementedError as exc:
        raise _error(f"cannot lock {lock_path}: {_reason(exc)}") from None


def _file_lock(lock_path: Path) -> BaseFileLock:
    import inspect

    from filelock import FileLock

    if "fallback_to_soft" in inspect.signature(FileLock.__init__).parameters:
        # Newer filelock would otherwise fall back to an existence lock on a
        # filesystem without flock, which a killed holder leaves behind.
        return FileLock(
            lock_path, mode=0o644, thread_local=False, fallback_to_soft=False
        )
    # Older filelock has no such fallback: it raises NotImplementedError.
    return FileLock(lock_path, mode=0o644, thread_local=False)


def prepare_lock_file(env_path: Path, lock_path: Path) -> None:
    """Create the lock file safely, or check the one already there."""
    try:
        env_path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _create_error(f"cannot create {env_path}: {_reason(exc)}", exc) from None
    try:
        fd = os.open(
            lock_path,
            os.O_RDWR | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC,
            0o644,
        )
    except FileExistsError:
        pass  # already there (or a symlink, which O_EXCL never follows): check it
    except OSError as exc:
        raise _create_error(f"cannot create {lock_path}: {_reason(exc)}", exc) from None
    else:
        os.close(fd)
    _inspect(env_path, lock_path)


def verify_locked(lock: BaseFileLock, env_path: Path, lock_path: Path) -> None:
    """The descriptor filelock locked and the lock path are the same plain file."""
    info = _inspect(env_path, lock_path)
    # filelock keeps its descriptor in ``_context.lock_file_fd`` (3.x and 4.x);
    # when a later version does not, the lstat checks above still stand.
    fd = getattr(getattr(lock, "_context", None), "lock_file_fd", None)
    if isinstance(fd, int):
        locked = os.fstat(fd)
        if (locked.st_dev, locked.st_ino) != (info.st_dev, info.st_ino):
            raise _error(
                f"{lock_path} was replaced while it was being locked.",
                hint="Remove it and try again.",
            )


def _inspect(env_path: Path, lock_path: Path) -> os.stat_result:
    """``lstat`` of the lock path, checked to be a plain file we may trust."""
    try:
        info = os.lstat(lock_path)
    except OSError as exc:
        raise _error(f"cannot inspect {lock_path}: {_reason(exc)}") from None
    if stat.S_ISLNK(info.st_mode):
        raise _error(
            f"{lock_path} is a symbolic link; refusing to follow it.",
            hint="Remove it; the lock file is created as a plain empty file.",
        )
    if not stat.S_ISREG(info.st_mode):
        raise _error(f"{lock_path} is not a regular file.", hint="Remove it.")
    if info.st_nlink > 1:
        raise _error(
            f"{lock_path} has {info.st_nlink} hard links; refusing to use it.",
            hint="Remove it; the lock file is created as a plain empty file.",
        )
    trusted = {0, _euid()}
    with contextlib.suppress(OSError):
        trusted.add(env_path.stat().st_uid)
    if sys.platform != "win32" and info.st_uid not in trusted:
        raise _error(
            f"{lock_path} belongs to user id {info.st_uid}, neither this user, root"
            " nor the owner of its directory.",
            hint="Remove it if that is expected.",
        )
    return info


# ------------------------------------------------------------ messages


def waiting_message(lock_path: Path) -> str:
    found = holder(lock_path)
    who = f"held by {found.describe()}" if found else "held by another process"
    return f"Waiting for the environment lock on {lock_path}: {who}."


def timeout_message(lock_path: Path, timeout: float) -> str:
    found = holder(lock_path)
    if found is None:
        who = "held by another process"
    else:
        where = "" if found.host in ("", hostname()) else f" on {found.host}"
        who = (
            f"held by process {found.pid}{where}, {found.command}, since {found.since}"
        )
        if found.alive is False:
            who += f"; process {found.pid} no longer runs"
    return (
        f"Timed out after {timeout:g} s waiting for the environment lock"
        f" on {lock_path} ({who})."
    )


def _error(message: str, *, hint: str | None = None) -> EnvLockError:
    return EnvLockError(message if message.endswith(".") else message + ".", hint=hint)


def _euid() -> int:
    geteuid = getattr(os, "geteuid", None)
    return int(geteuid()) if geteuid is not None else 0


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno == errno.ELOOP:
        return "it is a symbolic link"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[0].lower() + exc.strerror[1:]
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
