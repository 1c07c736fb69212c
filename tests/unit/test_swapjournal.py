"""Swaps that survive interruption (issue 11): the journal, the backup and
the start-up recovery, on a small site-packages directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from poetry_env_audit import _recover
from poetry_env_audit import swapjournal

OLD = {"tomlkit/__init__.py": "OLD = 1\n", "tomlkit/api.py": "API = 1\n"}


def make_site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    for rel, text in OLD.items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(text)
    info = site / "tomlkit-0.13.2.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: tomlkit\nVersion: 0.13.2\n"
    )
    records = [
        *OLD,
        "tomlkit-0.13.2.dist-info/METADATA",
        "tomlkit-0.13.2.dist-info/RECORD",
    ]
    (info / "RECORD").write_text("".join(f"{r},,\n" for r in records))
    return site


def half_swapped(site: Path) -> None:
    """What an update leaves when killed half-way: the old files removed, the
    new version partly written."""
    for rel in OLD:
        (site / rel).unlink()
    (site / "tomlkit-0.13.2.dist-info" / "METADATA").unlink()
    (site / "tomlkit-0.13.2.dist-info" / "RECORD").unlink()
    (site / "tomlkit-0.13.2.dist-info").rmdir()
    (site / "tomlkit" / "__init__.py").write_text("NEW = 1\n")
    (site / "tomlkit" / "new.py").write_text("")
    info = site / "tomlkit-0.13.3.dist-info"
    info.mkdir()
    (info / "RECORD").write_text("tomlkit/__init__.py,,\ntomlkit/new.py,,\n")


def _as_dead(site: Path) -> None:
    """Make the journal's process one that no longer runs."""
    path = site / _recover.JOURNAL_DIR / _recover.JOURNAL
    data = json.loads(path.read_text())
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    data["pid"] = child.pid
    path.write_text(json.dumps(data))


def assert_old_and_clean(site: Path) -> None:
    for rel, text in OLD.items():
        assert (site / rel).read_text() == text
    assert sorted(p.name for p in site.iterdir()) == [
        "tomlkit",
        "tomlkit-0.13.2.dist-info",
    ]
    assert sorted(p.name for p in (site / "tomlkit").iterdir()) == [
        "__init__.py",
        "api.py",
    ]


def test_begin_journals_and_backs_up_and_finish_ok_removes_everything(
    tmp_path: Path,
) -> None:
    site = make_site(tmp_path)
    swap = swapjournal.begin([site], "tomlkit")
    assert swap is not None
    assert (swap.dist, swap.version) == ("tomlkit", "0.13.2")
    assert (site / _recover.PTH).read_text() == _recover.PTH_LINE
    assert (site / _recover.MODULE).is_file()
    backup = site / _recover.JOURNAL_DIR / _recover.BACKUP
    assert len(list(backup.iterdir())) == 4
    assert (site / "tomlkit/__init__.py").stat().st_nlink == 2  # a hard link
    assert swapjournal.finish(swap, ok=True) is None
    assert sorted(p.name for p in site.iterdir()) == [
        "tomlkit",
        "tomlkit-0.13.2.dist-info",
    ]


def test_a_failed_swap_is_restored_at_once(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    swap = swapjournal.begin([site], "tomlkit")
    assert swap is not None
    half_swapped(site)
    assert swapjournal.finish(swap, ok=False) == "tomlkit 0.13.2"
    assert_old_and_clean(site)


def test_a_running_swap_is_left_alone(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    assert swapjournal.begin([site], "tomlkit") is not None
    half_swapped(site)
    assert _recover.recover(str(site)) is None  # its process (this one) runs
    assert (site / _recover.PTH).exists()


@pytest.mark.parametrize("stage", ["before", "removed", "half-written"])
def test_a_killed_swap_heals_at_the_next_python_start(
    tmp_path: Path, stage: str
) -> None:
    site = make_site(tmp_path)
    assert swapjournal.begin([site], "tomlkit") is not None
    if stage == "removed":
        for rel in OLD:
            (site / rel).unlink()
    elif stage == "half-written":
        half_swapped(site)
    _as_dead(site)
    result = subprocess.run(
        [sys.executable, "-c", f"import site; site.addsitedir({str(site)!r})"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "restored tomlkit 0.13.2" in lines[0]
    assert_old_and_clean(site)


def test_a_pth_without_a_journal_only_cleans_up(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    (site / _recover.PTH).write_text(_recover.PTH_LINE)
    (site / _recover.MODULE).write_bytes(Path(_recover.__file__).read_bytes())
    assert _recover.recover(str(site)) is None
    assert sorted(p.name for p in site.iterdir()) == [
        "tomlkit",
        "tomlkit-0.13.2.dist-info",
    ]


def test_nothing_to_journal_for_a_fresh_install(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    assert swapjournal.begin([site], "leftpad") is None
    assert not (site / _recover.PTH).exists()


@pytest.mark.parametrize("step", [1, 2, 3], ids=["module", "journal", "pth"])
def test_a_journal_interrupted_while_it_is_written_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: int
) -> None:
    """Ctrl-C while the journal's module, journal or .pth is being written
    (each is flushed with one fsync), before the swap began: the old version
    is untouched, so nothing of the journal stays, no temporary file either."""
    site = make_site(tmp_path)
    calls: list[int] = []
    fsync = os.fsync

    def interrupted(fd: int) -> None:
        calls.append(fd)
        if len(calls) == step:
            raise KeyboardInterrupt
        fsync(fd)

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        swapjournal.begin([site], "tomlkit")
    monkeypatch.undo()
    assert_old_and_clean(site)
