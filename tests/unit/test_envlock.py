"""The environment lock, with real processes contending for it.

Processes are sequenced through pipes (a holder prints ``locked <pid>`` once it
holds the lock and releases when told on stdin, or when its stdin closes), never
with sleeps; every wait is bounded so a broken lock fails a test instead of
hanging it.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import pytest

import poetry_env_audit
from poetry_env_audit.envlock import LOCK_NAME
from poetry_env_audit.envlock import EnvironmentLock
from poetry_env_audit.envlock import EnvLockError
from poetry_env_audit.envlock import EnvLockTimeout
from poetry_env_audit.envlock import externally_managed_error
from poetry_env_audit.envlock import lock_path_for
from poetry_env_audit.lockholder import HOLDER_SUFFIX
from poetry_env_audit.lockholder import holder

if TYPE_CHECKING:
    from collections.abc import Iterator

    from filelock import BaseFileLock

pytestmark = pytest.mark.skipif(
    sys.platform == "win32", reason="POSIX processes and signals"
)

#: Upper bound for anything a child process is expected to do promptly.
BOUND = 15.0

HOLDER_SCRIPT = textwrap.dedent(
    """
    import os, sys
    from poetry_env_audit.envlock import EnvironmentLock

    lock = EnvironmentLock(
        sys.argv[1], timeout=float(sys.argv[2]), command="poetry install",
        notify=lambda message: print("notify", message, flush=True),
    )
    with lock:
        print("locked", os.getpid(), flush=True)
        sys.stdin.readline()
    print("released", flush=True)
    """
)


def _child_env() -> dict[str, str]:
    src = str(Path(poetry_env_audit.__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    return env


def _read_line(proc: subprocess.Popen[str], timeout: float = BOUND) -> str:
    """One line of the child's stdout, failing after ``timeout`` instead of hanging."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        pytest.fail(f"child {proc.pid} printed nothing in {timeout} s")
    return proc.stdout.readline()


class Spawner:
    """Starts lock holders and makes sure none outlives the test."""

    def __init__(self) -> None:
        self.running: list[subprocess.Popen[str]] = []

    def holder(
        self, env_dir: Path, timeout: float = BOUND
    ) -> tuple[subprocess.Popen[str], int]:
        """A process holding the lock on ``env_dir``, and its pid."""
        proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER_SCRIPT, str(env_dir), str(timeout)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_child_env(),
        )
        self.running.append(proc)
        line = _read_line(proc)
        if not line.startswith("locked "):
            out, err = proc.communicate(timeout=BOUND)
            pytest.fail(f"holder did not lock: {line!r} {out!r} {err!r}")
        return proc, int(line.split()[1])

    def stop_all(self) -> None:
        for proc in self.running:
            if proc.poll() is None:
                proc.kill()
            proc.communicate(timeout=BOUND)  # reaps it and closes every pipe


@pytest.fixture
def spawn() -> Iterator[Spawner]:
    spawner = Spawner()
    yield spawner
    spawner.stop_all()


def _release(proc: subprocess.Popen[str]) -> tuple[str, str]:
    out, err = proc.communicate("release\n", timeout=BOUND)
    return out, err


def _held(lock: EnvironmentLock) -> bool:
    """``lock.held``, read afresh (mypy keeps a narrowed property across calls)."""
    return lock.held


def _dead_pid() -> int:
    with subprocess.Popen([sys.executable, "-c", "pass"]) as proc:
        proc.wait(timeout=BOUND)
    return proc.pid


def _no_notify(message: str) -> None:
    pytest.fail(f"notify called: {message}")


def test_lock_path_is_inside_the_environment_and_resolved(tmp_path: Path) -> None:
    env = tmp_path / "site-packages"
    env.mkdir()
    alias = tmp_path / "alias"
    alias.symlink_to(env)
    assert lock_path_for(env) == env.resolve() / LOCK_NAME
    assert lock_path_for(alias) == lock_path_for(env)
    lock = EnvironmentLock(
        alias, timeout=1, command="poetry install", notify=_no_notify
    )
    assert lock.lock_path == lock_path_for(env)


def test_waiter_is_told_once_who_holds_it_then_gets_it(
    tmp_path: Path, spawn: Spawner
) -> None:
    proc, pid = spawn.holder(tmp_path)
    found = holder(lock_path_for(tmp_path))
    assert found is not None
    assert (found.pid, found.command, found.alive) == (pid, "poetry install", True)

    messages: list[str] = []

    def notify(message: str) -> None:
        messages.append(message)
        assert proc.stdin is not None
        proc.stdin.write("release\n")  # only now may the holder let go
        proc.stdin.flush()

    lock = EnvironmentLock(tmp_path, timeout=BOUND, command="poetry add", notify=notify)
    with lock:
        assert _held(lock)
        mine = holder(lock.lock_path)
        assert mine is not None
        assert (mine.pid, mine.command) == (os.getpid(), "poetry add")
    out, err = proc.communicate(timeout=BOUND)
    assert (out, err) == ("released\n", "")
    assert len(messages) == 1
    assert messages[0] == (
        f"Waiting for the environment lock on {lock.lock_path}: held by process {pid}"
        f" (poetry install) since {found.since}."
    )
    assert not _held(lock)
    assert holder(lock.lock_path) is None  # the holder file goes with the lock
    assert lock.lock_path.is_file()  # the lock file stays (unlinking it breaks waiters)


def test_holder_killed_with_sigkill_does_not_block(
    tmp_path: Path, spawn: Spawner
) -> None:
    proc, pid = spawn.holder(tmp_path)
    os.kill(pid, signal.SIGKILL)
    proc.wait(timeout=BOUND)

    stale = holder(lock_path_for(tmp_path))
    assert stale is not None
    assert (stale.pid, stale.alive) == (pid, False)
    assert f"(process {pid} no longer runs)" in stale.describe()

    # timeout=0 tries once: getting the lock proves nothing made it wait.
    waited: list[str] = []
    with EnvironmentLock(
        tmp_path, timeout=0, command="poetry install", notify=waited.append
    ) as lock:
        mine = holder(lock_path_for(tmp_path))
        assert mine is not None
        assert mine.pid == os.getpid()
        assert not lock.waited
    assert waited == []


def test_timeout_is_one_clear_line(
    tmp_path: Path, spawn: Spawner, monkeypatch: pytest.MonkeyPatch
) -> None:
    from filelock import BaseFileLock

    waits: list[object] = []
    acquire = BaseFileLock.acquire

    def recording(self: BaseFileLock, *args: Any, **kwargs: Any) -> Any:
        waits.append(kwargs.get("timeout"))
        return acquire(self, *args, **kwargs)

    monkeypatch.setattr(BaseFileLock, "acquire", recording)
    _proc, pid = spawn.holder(tmp_path)
    since = holder(lock_path_for(tmp_path))
    assert since is not None
    messages: list[str] = []
    lock = EnvironmentLock(
        tmp_path, timeout=0.5, command="poetry sync", notify=messages.append
    )
    with pytest.raises(EnvLockTimeout) as caught:
        lock.acquire()
    # One try without waiting, then filelock waits the configured timeout.
    assert waits == [None, 0.5]
    assert len(messages) == 1
    assert f"held by process {pid} (poetry install)" in messages[0]
    text = str(caught.value)
    assert "\n" not in text
    assert text == (
        f"Timed out after 0.5 s waiting for the environment lock on {lock.lock_path}"
        f" (held by process {pid}, poetry install, since {since.since})."
        " Set POETRY_ENV_AUDIT_LOCK_TIMEOUT to wait longer."
    )
    assert isinstance(caught.value, EnvLockError)
    assert not _held(lock)
    lock.release()  # nothing to release: still fine


def test_zero_timeout_tries_once(tmp_path: Path, spawn: Spawner) -> None:
    spawn.holder(tmp_path)
    messages: list[str] = []
    lock = EnvironmentLock(
        tmp_path, timeout=0, command="poetry install", notify=messages.append
    )
    with pytest.raises(EnvLockTimeout, match=r"^Timed out after 0 s "):
        lock.acquire()
    assert len(messages) == 1


def test_released_on_keyboard_interrupt(tmp_path: Path, spawn: Spawner) -> None:
    lock = EnvironmentLock(
        tmp_path, timeout=BOUND, command="poetry install", notify=_no_notify
    )
    with pytest.raises(KeyboardInterrupt), lock:
        raise KeyboardInterrupt
    assert not _held(lock)
    # Another process gets it at once (it would print "notify" first if it had to wait).
    proc, _pid = spawn.holder(tmp_path, timeout=0)
    out, err = _release(proc)
    assert (out, err) == ("released\n", "")


def test_released_on_error_and_released_twice(tmp_path: Path, spawn: Spawner) -> None:
    lock = EnvironmentLock(
        tmp_path, timeout=BOUND, command="poetry install", notify=_no_notify
    )
    with pytest.raises(RuntimeError), lock:
        raise RuntimeError("install failed")
    lock.release()
    lock.release()
    proc, _pid = spawn.holder(tmp_path, timeout=0)
    _release(proc)


def test_acquire_is_idempotent_and_same_process_never_waits_on_itself(
    tmp_path: Path, spawn: Spawner
) -> None:
    outer = EnvironmentLock(
        tmp_path, timeout=0, command="poetry install", notify=_no_notify
    )
    inner = EnvironmentLock(
        tmp_path, timeout=0, command="poetry install", notify=_no_notify
    )
    outer.acquire()
    outer.acquire()
    inner.acquire()  # joins this process's hold instead of timing out on it
    assert _held(outer)
    assert _held(inner)
    outer.release()
    # The inner hold keeps the OS lock: another process still has to wait.
    with pytest.raises(EnvLockTimeout):
        _try_in_child(tmp_path)
    inner.release()
    inner.release()
    assert not _held(inner)
    _try_in_child(tmp_path)


def _try_in_child(env_dir: Path) -> None:
    """Acquire once (timeout 0) in another process; raise EnvLockTimeout if it is held."""
    proc = subprocess.run(
        [sys.executable, "-c", HOLDER_SCRIPT, str(env_dir), "0"],
        input="\n",
        capture_output=True,
        text=True,
        env=_child_env(),
        timeout=BOUND,
        check=False,
    )
    if "EnvLockTimeout" in proc.stderr:
        raise EnvLockTimeout("held")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("locked "), proc.stdout


@pytest.mark.parametrize("existing", [False, True])
def test_symlink_at_the_lock_path_is_refused(tmp_path: Path, existing: bool) -> None:
    env = tmp_path / "env"
    env.mkdir()
    target = tmp_path / "precious"
    if existing:
        target.write_text("keep me\n")
        os.chmod(target, 0o600)  # noqa: PTH101 - the mode filelock 3.12 would chmod
    planted = lock_path_for(env)
    planted.symlink_to(target)

    lock = EnvironmentLock(env, timeout=1, command="poetry install", notify=_no_notify)
    with pytest.raises(EnvLockError, match="is a symbolic link; refusing to follow it"):
        lock.acquire()
    assert not _held(lock)
    assert planted.is_symlink()
    if existing:
        assert target.read_text() == "keep me\n"
        assert target.stat().st_mode & 0o777 == 0o600
    else:
        assert not target.exists()
        assert not target.is_symlink()


def test_hard_link_and_non_file_at_the_lock_path_are_refused(tmp_path: Path) -> None:
    env = tmp_path / "env"
    env.mkdir()
    precious = tmp_path / "precious"
    precious.write_text("keep me\n")
    os.link(precious, lock_path_for(env))
    lock = EnvironmentLock(env, timeout=1, command="poetry install", notify=_no_notify)
    with pytest.raises(EnvLockError, match="hard links"):
        lock.acquire()
    assert precious.read_text() == "keep me\n"

    lock_path_for(env).unlink()
    lock_path_for(env).mkdir()
    with pytest.raises(EnvLockError, match="is not a regular file"):
        lock.acquire()


def test_missing_environment_directory_is_created(tmp_path: Path) -> None:
    env = tmp_path / "lib" / "site-packages"
    with EnvironmentLock(
        env, timeout=1, command="poetry install", notify=_no_notify
    ) as lock:
        assert lock.lock_path.is_file()
        assert not lock.lock_path.is_symlink()


def test_holder_file_of_a_dead_process_is_reported_not_running(tmp_path: Path) -> None:
    lock_path = lock_path_for(tmp_path)
    dead = _dead_pid()
    holder_file = lock_path.with_name(LOCK_NAME + HOLDER_SUFFIX)
    holder_file.write_text(
        json.dumps(
            {
                "pid": dead,
                "since": "2026-11-22T05:40:12Z",
                "command": "poetry install",
                "host": socket.gethostname(),
            }
        )
    )
    found = holder(lock_path)
    assert found is not None
    assert (found.pid, found.alive, found.since) == (
        dead,
        False,
        "2026-11-22T05:40:12Z",
    )
    assert found.describe() == (
        f"process {dead} (poetry install) since 2026-11-22T05:40:12Z"
        f" (process {dead} no longer runs)"
    )
    # It is only informative: nothing holds the lock, so it is taken at once.
    with EnvironmentLock(
        tmp_path, timeout=1, command="poetry install", notify=_no_notify
    ):
        mine = holder(lock_path)
        assert mine is not None
        assert mine.pid == os.getpid()


@pytest.mark.parametrize(
    "content",
    [b"", b"not json", b"[1, 2]", b'{"pid": "12"}', b'{"pid": true}', b"\xff\xfe"],
)
def test_unreadable_holder_file_is_ignored(tmp_path: Path, content: bytes) -> None:
    lock_path_for(tmp_path).with_name(LOCK_NAME + HOLDER_SUFFIX).write_bytes(content)
    assert holder(lock_path_for(tmp_path)) is None


def test_holder_file_symlink_or_fifo_is_not_followed(tmp_path: Path) -> None:
    holder_file = lock_path_for(tmp_path).with_name(LOCK_NAME + HOLDER_SUFFIX)
    real = tmp_path / "elsewhere.json"
    real.write_text(
        json.dumps({"pid": os.getpid(), "since": "x", "command": "y", "host": ""})
    )
    holder_file.symlink_to(real)
    assert holder(lock_path_for(tmp_path)) is None
    holder_file.unlink()
    os.mkfifo(holder_file)
    assert holder(lock_path_for(tmp_path)) is None  # and did not block opening it
    with EnvironmentLock(
        tmp_path, timeout=1, command="poetry install", notify=_no_notify
    ):
        assert not holder_file.is_fifo()  # replaced by the holder's record


def test_externally_managed_error(tmp_path: Path) -> None:
    assert externally_managed_error(tmp_path, in_venv=False) is None
    (tmp_path / "EXTERNALLY-MANAGED").write_text(
        "[externally-managed]\nError=To install Python packages system-wide, try\n"
        "  apt install python3-xyz.\n"
    )
    assert externally_managed_error(tmp_path, in_venv=True) is None
    assert externally_managed_error(tmp_path, in_venv=False) == (
        "To install Python packages system-wide, try apt install python3-xyz."
    )


def test_lock_file_replaced_while_locking_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spawn: Spawner
) -> None:
    take = EnvironmentLock._take

    def take_then_replace(self: EnvironmentLock, lock: BaseFileLock) -> None:
        take(self, lock)
        other = tmp_path / "other"
        other.write_text("")
        other.replace(self.lock_path)  # a different inode now sits at the path

    monkeypatch.setattr(EnvironmentLock, "_take", take_then_replace)
    lock = EnvironmentLock(
        tmp_path, timeout=1, command="poetry install", notify=_no_notify
    )
    with pytest.raises(EnvLockError, match="was replaced while it was being locked"):
        lock.acquire()
    assert not _held(lock)
    monkeypatch.undo()
    proc, _pid = spawn.holder(tmp_path, timeout=0)  # nothing was left locked
    _release(proc)


def test_symlink_swapped_in_after_the_check_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = tmp_path / "env"
    env.mkdir()
    target = tmp_path / "precious"
    prepare = EnvironmentLock._prepare

    def prepare_then_swap(self: EnvironmentLock) -> None:
        prepare(self)
        self.lock_path.unlink()
        self.lock_path.symlink_to(target)

    monkeypatch.setattr(EnvironmentLock, "_prepare", prepare_then_swap)
    lock = EnvironmentLock(env, timeout=1, command="poetry install", notify=_no_notify)
    # filelock >= 3.20.1 refuses to open it (O_NOFOLLOW); older ones follow it
    # and the check after locking refuses it.
    with pytest.raises(EnvLockError, match="symbolic link"):
        lock.acquire()
    assert not _held(lock)
    assert lock_path_for(env).is_symlink()
