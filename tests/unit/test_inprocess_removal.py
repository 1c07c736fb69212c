"""Cheap swaps on every Poetry (issue 11): a serialised swap removes the old
files in process, from the journal's file list, where Poetry would start a
``pip uninstall`` subprocess."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from typing import TYPE_CHECKING
from typing import Any

from poetry.core.packages.package import Package
from poetry.installation.operations import Update

from poetry_env_audit import swapjournal
from poetry_env_audit.seams import Fallbacks
from poetry_env_audit.seams.executor import ExecutorHandle
from unit.test_swapjournal import OLD
from unit.test_swapjournal import make_site

if TYPE_CHECKING:
    from pathlib import Path


def test_remove_old_removes_every_recorded_file_and_the_empty_dirs(
    tmp_path: Path,
) -> None:
    site = make_site(tmp_path)
    (site / "tomlkit" / "__pycache__").mkdir()
    (site / "tomlkit" / "__pycache__" / "api.cpython-311.pyc").write_bytes(b"")
    swap = swapjournal.begin([site], "tomlkit")
    assert swap is not None
    swapjournal.remove_old(swap)
    names = sorted(p.name for p in site.iterdir())
    assert "tomlkit" not in names
    assert "tomlkit-0.13.2.dist-info" not in names
    swapjournal.finish(swap, ok=True)
    assert list(site.iterdir()) == []


@dataclass
class FakeSite:
    candidates: list[Path]


@dataclass
class FakeEnv:
    site: Path

    @property
    def site_packages(self) -> FakeSite:
        return FakeSite([self.site])


@dataclass
class PipExecutor:
    """Poetry < 2.5's Executor: an update removes with ``run_pip("uninstall", ...)``."""

    _env: FakeEnv
    pip_calls: list[tuple[Any, ...]] = field(default_factory=list)
    seen: list[list[str]] = field(default_factory=list)

    def run_pip(self, *args: Any) -> int:
        self.pip_calls.append(args)
        return 0

    def execute(self, operations: list[Any]) -> int:
        for op in operations:
            self.run_pip("uninstall", op.initial_package.name, "-y")
            names = (p.name for p in self._env.site.iterdir())
            self.seen.append(
                sorted(
                    n for n in names if "env_audit" not in n and "env-audit" not in n
                )
            )
        return 0


def _handle(executor: PipExecutor) -> ExecutorHandle:
    return ExecutorHandle(
        executor=executor, original=executor.execute, fallbacks=Fallbacks()
    )


def test_serialised_swap_removes_in_process_instead_of_pip(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    executor = PipExecutor(FakeEnv(site))
    op = Update(Package("tomlkit", "0.13.2"), Package("tomlkit", "0.13.3"))
    status = _handle(executor).run_serialised(
        [op], {"tomlkit"}, builtin=True, before_swaps=lambda: None
    )
    assert status == 0
    assert executor.pip_calls == []  # no subprocess
    assert executor.seen == [
        []
    ]  # the old files were gone when the new would be written
    assert "run_pip" not in vars(executor)  # restored


def test_configured_uninstaller_keeps_pip(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    executor = PipExecutor(FakeEnv(site))
    op = Update(Package("tomlkit", "0.13.2"), Package("tomlkit", "0.13.3"))
    _handle(executor).run_serialised(
        [op], {"tomlkit"}, builtin=False, before_swaps=lambda: None
    )
    assert executor.pip_calls == [("uninstall", "tomlkit", "-y")]
    for rel, text in OLD.items():
        assert (site / rel).read_text() == text
