"""ExecutorHandle.choose_uninstaller: Poetry's in-process uninstaller for serial swaps."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field

import pytest

from poetry_env_audit.seams import Fallbacks
from poetry_env_audit.seams.executor import ExecutorHandle


@dataclass
class Dist:
    files: dict[str, str]

    def read_text(self, name: str) -> str | None:
        return self.files.get(name)


@dataclass
class SitePackages:
    dists: dict[str, list[Dist]]

    def distributions(self, name: str | None = None) -> list[Dist]:
        return self.dists.get(name or "", [])


@dataclass
class Env:
    site_packages: SitePackages


@dataclass
class Executor25:
    """Poetry 2.5's Executor: has ``_use_builtin_uninstall``."""

    _env: Env
    _use_builtin_uninstall: bool = False


@dataclass
class Executor18:
    """Poetry < 2.5: no built-in uninstaller at all."""

    _env: Env
    calls: list[str] = field(default_factory=list)


RECORDED = Dist({"RECORD": "a/__init__.py,,\n"})
UNRECORDED = Dist({"METADATA": "Name: a\n"})
SITE = SitePackages(
    {
        "recorded": [RECORDED],
        "no-record": [UNRECORDED],
        "twice": [RECORDED, RECORDED],
    }
)


@pytest.mark.parametrize(
    ("name", "builtin", "configured", "chosen", "flag"),
    [
        ("recorded", True, False, True, True),
        ("recorded", False, False, False, False),
        ("recorded", False, True, False, True),  # the user's own setting stays
        ("no-record", True, False, False, False),  # pip refuses; builtin would skip
        ("twice", True, False, False, False),  # which one? leave it to Poetry
        ("absent", True, False, False, False),
    ],
)
def test_choice_on_poetry_with_a_builtin_uninstaller(
    name: str, builtin: bool, configured: bool, chosen: bool, flag: bool
) -> None:
    executor = Executor25(Env(SITE), configured)
    handle = ExecutorHandle(executor=executor, original=None, fallbacks=Fallbacks())

    assert handle.choose_uninstaller(name, builtin=builtin) is chosen
    assert executor._use_builtin_uninstall is flag

    handle.restore_uninstaller()
    assert executor._use_builtin_uninstall is configured


def test_choice_alternates_per_operation_and_restores_once() -> None:
    executor = Executor25(Env(SITE))
    handle = ExecutorHandle(executor=executor, original=None, fallbacks=Fallbacks())

    assert handle.choose_uninstaller("recorded", builtin=True)
    assert not handle.choose_uninstaller("no-record", builtin=True)
    assert executor._use_builtin_uninstall is False
    assert handle.choose_uninstaller("recorded", builtin=True)
    handle.restore_uninstaller()
    handle.restore_uninstaller()
    assert executor._use_builtin_uninstall is False


def test_older_poetry_keeps_its_uninstaller() -> None:
    executor = Executor18(Env(SITE))
    handle = ExecutorHandle(executor=executor, original=None, fallbacks=Fallbacks())

    assert handle.choose_uninstaller("recorded", builtin=True) is False
    handle.restore_uninstaller()
    assert not hasattr(executor, "_use_builtin_uninstall")
