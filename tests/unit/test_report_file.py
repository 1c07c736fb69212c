"""``--output FILE`` (``ci.write_report_file``) for every kind of path (issue 11):
a regular file is replaced atomically with its mode, a symlink is refused,
FIFOs, character devices and the standard streams are written through."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from poetry_env_audit import ci
from poetry_env_audit.errors import AuditError

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file kinds")


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o664])
def test_regular_file_is_replaced_atomically_keeping_its_mode(
    tmp_path: Path, mode: int
) -> None:
    target = tmp_path / "report.json"
    target.write_text("old and longer than the new one\n", encoding="utf-8")
    target.chmod(mode)
    inode = target.stat().st_ino
    ci.write_report_file(target, "{}\n")
    assert target.read_text(encoding="utf-8") == "{}\n"
    assert stat.S_IMODE(target.stat().st_mode) == mode
    assert target.stat().st_ino != inode  # a new file renamed over the old one
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_new_file_is_0644(tmp_path: Path) -> None:
    target = tmp_path / "new.json"
    ci.write_report_file(target, "{}\n")
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


@pytest.mark.parametrize("dangling", [False, True], ids=["to-a-file", "dangling"])
def test_symlink_is_refused_and_its_target_untouched(
    tmp_path: Path, dangling: bool
) -> None:
    victim = tmp_path / "victim.txt"
    if not dangling:
        victim.write_text("precious\n", encoding="utf-8")
        victim.chmod(0o600)
    link = tmp_path / "report.json"
    link.symlink_to(victim)
    with pytest.raises(AuditError) as info:
        ci.write_report_file(link, "{}\n")
    message = str(info.value)
    assert "\n" not in message
    assert str(link) in message
    assert "symbolic link" in message
    assert link.is_symlink()
    if dangling:
        assert not victim.exists()
    else:
        assert victim.read_text(encoding="utf-8") == "precious\n"
        assert stat.S_IMODE(victim.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["report.json"] + ([] if dangling else ["victim.txt"])
    )


def test_symlink_refusal_is_exit_code_2(
    tmp_path: Path, env_audit_command: object
) -> None:
    from poetry_env_audit.audit import assess
    from poetry_env_audit.policy import default_policy
    from unit.factories import poetry_env
    from unit.factories import target

    report = assess(
        poetry=poetry_env([]),
        target=target(shared=False),
        changes=[],
        policy=default_policy(),
    )
    link = tmp_path / "out.json"
    link.symlink_to(tmp_path / "elsewhere.json")
    code, _, err = env_audit_command(report, f"--output {link}")  # type: ignore[operator]
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert "symbolic link" in err
    assert not (tmp_path / "elsewhere.json").exists()


def test_fifo_is_written_through(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []

    def read() -> None:
        with fifo.open("rb") as stream:
            received.append(stream.read())

    reader = threading.Thread(target=read)
    reader.start()
    ci.write_report_file(fifo, "{}\n")
    reader.join(timeout=30)
    assert received == [b"{}\n"]
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


def test_character_device_is_written_through() -> None:
    ci.write_report_file("/dev/null", "{}\n")
    assert stat.S_ISCHR(os.lstat("/dev/null").st_mode)


@pytest.mark.parametrize("name", ["/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"])
def test_stdout_appended_to_a_log_does_not_truncate_it(
    tmp_path: Path, name: str
) -> None:
    if not Path(name).exists():
        pytest.skip(f"{name} does not exist here")
    log = tmp_path / "log"
    log.write_text("earlier lines\n" * 3, encoding="utf-8")
    script = textwrap.dedent(
        f"""
        from poetry_env_audit import ci
        print("before", flush=True)
        ci.write_report_file({name!r}, "report\\n")
        print("after", flush=True)
        """
    )
    src = Path(ci.__file__).resolve().parents[1]
    program = tmp_path / "write.py"
    program.write_text(script, encoding="utf-8")
    command = f'"{sys.executable}" "{program}" >> "{log}"'
    subprocess.run(
        ["/bin/sh", "-c", command],
        check=True,
        env={**os.environ, "PYTHONPATH": str(src)},
        timeout=60,
    )
    assert log.read_text(encoding="utf-8") == (
        "earlier lines\n" * 3 + "before\nreport\nafter\n"
    )
