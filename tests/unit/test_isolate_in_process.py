"""``poetry self isolate`` in this process: the whole cycle on the Poetry this
test runs with, every write under ``tmp_path``.

The launcher is a script in ``tmp_path`` whose ``#!`` names this interpreter
(the running Poetry's), so the switch and the undo happen there; the new
environment goes into a data directory in ``tmp_path``; the files are copied
from this environment's own RECORDs, which nothing writes to. The integration
suite runs the same on real pip-installed Poetry in throwaway interpreters.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture
def isolate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., tuple[int, str, str]]]:
    """``run(ARGS)``: ``poetry self isolate ARGS`` through cleo's CommandTester."""
    from cleo.testers.command_tester import CommandTester

    from poetry_env_audit.isolate_command import SelfIsolateCommand

    launcher = tmp_path / "bin" / "poetry"
    launcher.parent.mkdir()
    launcher.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        "from poetry.console.application import main\n"
        "sys.exit(main())\n"
    )
    launcher.chmod(0o755)
    monkeypatch.setattr(sys, "argv", [str(launcher)])
    monkeypatch.setenv("POETRY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("POETRY_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(launcher.parent) + os.pathsep + os.environ["PATH"])
    for name in ("VIRTUAL_ENV", "CONDA_PREFIX"):
        monkeypatch.delenv(name, raising=False)

    def run(args: str = "") -> tuple[int, str, str]:
        tester = CommandTester(SelfIsolateCommand())
        code = tester.execute(args, decorated=False)
        return code, tester.io.fetch_output(), tester.io.fetch_error()

    yield run


def _launcher(tmp_path: Path) -> Path:
    return tmp_path / "bin" / "poetry"


def test_dry_run_says_what_it_would_do_and_changes_nothing(
    isolate: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    before = _launcher(tmp_path).read_text()
    code, out, err = isolate("--dry-run")
    assert (code, err) == (0, "")
    assert out.startswith("Would isolate Poetry ")
    assert "create the virtual environment" in out
    assert _launcher(tmp_path).read_text() == before
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").iterdir())


def test_undo_without_an_isolation(
    isolate: Callable[..., tuple[int, str, str]],
) -> None:
    assert isolate("--undo --dry-run")[:2] == (
        0,
        "Poetry is not isolated by `poetry self isolate`.\n",
    )
    code, out, err = isolate("--undo")
    assert (code, err) == (0, "")
    assert out.startswith("Poetry is not isolated by `poetry self isolate` (")
    assert out.rstrip().endswith("nothing to undo.")


def test_a_read_only_launcher_is_refused_in_one_line(
    isolate: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    _launcher(tmp_path).chmod(0o555)
    code, out, err = isolate()
    assert (code, out) == (1, "")
    assert err.strip().splitlines() == [
        f"poetry-env-audit: cannot isolate Poetry: the launcher {_launcher(tmp_path)}"
        " is not writable."
    ]


def test_isolate_again_and_undo(
    isolate: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    launcher = _launcher(tmp_path)
    before = launcher.read_text()
    code, out, err = isolate()
    assert (code, err) == (0, ""), out
    assert "is isolated:" in out
    venv = tmp_path / "data" / "isolated-venv"
    assert str(venv) in launcher.read_text()
    version = subprocess.run(
        [str(launcher), "--version"], capture_output=True, text=True, check=False
    )
    assert version.returncode == 0, version.stderr
    assert "Poetry" in version.stdout
    code, out, _ = isolate()
    assert code == 0
    assert out.startswith("Poetry is already isolated (")
    code, out, err = isolate("--undo --dry-run")
    assert (code, err) == (0, "")
    assert out.startswith(f"Would point {launcher} back at ")
    code, out, err = isolate("--undo")
    assert (code, err) == (0, ""), out
    assert launcher.read_text() == before
    assert not venv.exists()
