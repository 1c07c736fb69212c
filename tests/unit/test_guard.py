"""The install guard in process: its decision paths on fakes of Poetry's command,
installer, executor and environment, and real operations and packages.

The integration suite runs the same paths in real Poetry; here each path is
one small test that names what it expects of the executor (which operations
ran, in which calls) and of stderr.
"""

from __future__ import annotations

import os
import sysconfig
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import pytest
from cleo.io.buffered_io import BufferedIO
from poetry.core.packages.package import Package
from poetry.installation.operations import Install
from poetry.installation.operations import Uninstall
from poetry.installation.operations import Update

from poetry_env_audit import hooks
from poetry_env_audit.audit import assess
from poetry_env_audit.decision import Decision
from poetry_env_audit.decision import decide
from poetry_env_audit.guard import InstallGuard
from poetry_env_audit.guard import attach
from poetry_env_audit.policy import PolicyAction
from poetry_env_audit.policy import load_policy
from poetry_env_audit.report import RunVerdict
from poetry_env_audit.seams.command import InstallingCommand
from unit.factories import change
from unit.factories import dist
from unit.factories import poetry_env
from unit.factories import target

if TYPE_CHECKING:
    from collections.abc import Callable
    from collections.abc import Iterator
    from collections.abc import Sequence

    from poetry.installation.operations.operation import Operation

    from poetry_env_audit.policy import Policy
    from poetry_env_audit.report import Report

# ----------------------------------------------------------------- fakes


@dataclass
class FakeSitePackages:
    candidates: list[Path]

    def distributions(self, name: str | None = None) -> list[Any]:
        del name
        return []


@dataclass
class FakeEnv:
    """Poetry's ``Env``: the directories an install writes to, and its stdlib."""

    root: Path
    venv: bool = False
    site_dirs: list[Path] = field(default_factory=list)

    def __post_init__(self) -> None:
        (self.root / "site-packages").mkdir(parents=True, exist_ok=True)
        (self.root / "stdlib").mkdir(exist_ok=True)

    @property
    def path(self) -> Path:
        return self.root

    @property
    def paths(self) -> dict[str, str]:
        return {
            "purelib": str(self.root / "site-packages"),
            "stdlib": str(self.root / "stdlib"),
        }

    @property
    def site_packages(self) -> FakeSitePackages:
        return FakeSitePackages(self.site_dirs or [self.root / "site-packages"])

    @property
    def python(self) -> str:
        return str(self.root / "bin" / "python")

    def is_venv(self) -> bool:
        return self.venv


@dataclass
class FakeExecutor:
    """Poetry's Executor: ``execute`` records each call's package names."""

    _env: FakeEnv
    calls: list[list[str]] = field(default_factory=list)
    summaries: list[list[str]] = field(default_factory=list)
    status: int = 0
    _shutdown: bool = False
    _use_builtin_uninstall: bool = False

    def execute(self, operations: list[Operation]) -> int:
        self.calls.append([op.package.name for op in operations])
        return self.status

    def _display_summary(self, operations: list[Operation]) -> None:
        self.summaries.append([op.package.name for op in operations])


@dataclass
class FakeInstaller:
    executor: FakeExecutor
    dry_run: bool = False
    reread: int = 0

    def is_dry_run(self) -> bool:
        return self.dry_run

    _installed_repository: object = None

    def _get_installed(self) -> object:
        self.reread += 1
        return object()


@dataclass
class FakePyproject:
    data: dict[str, Any]


class FakePoetry:
    """The loaded project: no dependency of its own, and no readable lock."""

    def __init__(self, project: Path, table: dict[str, Any] | None) -> None:
        self.pyproject_path = project / "pyproject.toml"
        self.package = Package("project", "1.0")
        tool = {"poetry-env-audit": table} if table is not None else {}
        self.pyproject = FakePyproject({"tool": tool})


class InstallerCommand:
    """Named as Poetry's base class: the listener recognises it by name."""

    def __init__(
        self,
        name: str,
        installer: FakeInstaller | None,
        poetry: FakePoetry,
        env: FakeEnv,
    ) -> None:
        self.name = name
        self._installer = installer
        self.poetry = poetry
        self.env = env

    def argument(self, name: str) -> list[str]:
        assert name == "packages"
        return ["requests", "evil$(touch x)"]


class SelfCommand(InstallerCommand):
    """``poetry self ...``, recognised by this class name in the MRO."""


@dataclass
class Setup:
    """One command with its fakes, and the guard attached to it."""

    command: InstallerCommand
    io: BufferedIO
    executor: FakeExecutor
    installer: FakeInstaller
    env: FakeEnv

    def guard(self, report: Report | None = None, **kw: Any) -> InstallGuard:
        """The guard with a decision that answers ``report`` (or the real one)."""
        installing = InstallingCommand(self.command, self.io)
        if report is None:
            guard = InstallGuard(installing, **kw)
        else:
            answer = Decision(report=report)
            guard = InstallGuard(installing, decide=lambda *_: answer, **kw)
        installing.wrap_execute(guard.execute)
        return guard

    def run(self, guard: InstallGuard, names: Sequence[str]) -> int:
        """Poetry calling the executor's (wrapped) ``execute``."""
        assert guard.command.executor is self.executor
        return int(self.executor.execute(operations(names)))

    @property
    def err(self) -> str:
        return self.io.fetch_error()


def make_setup(
    tmp_path: Path,
    *,
    name: str = "install",
    cls: type[InstallerCommand] = InstallerCommand,
    table: dict[str, Any] | None = None,
    dry_run: bool = False,
    venv: bool = False,
    site_dirs: list[Path] | None = None,
) -> Setup:
    env = FakeEnv(tmp_path / "env", venv=venv, site_dirs=site_dirs or [])
    executor = FakeExecutor(env)
    installer = FakeInstaller(executor, dry_run=dry_run)
    command = cls(name, installer, FakePoetry(tmp_path / "project", table), env)
    return Setup(command, poetry_io(), executor, installer, env)


def poetry_io() -> BufferedIO:
    """A non-terminal io with Poetry's styles, so the text holds no tag."""
    from cleo.formatters.style import Style

    from unit.test_render_ci import POETRY_STYLES

    io = BufferedIO()
    for name in POETRY_STYLES:
        io.error_output.formatter.set_style(name, Style())
    return io


def operations(names: Sequence[str]) -> list[Operation]:
    """Real Poetry operations: ``name`` installs 1.0, ``name@a>b`` updates a to b,
    ``-name`` removes it."""
    ops: list[Operation] = []
    for text in names:
        if text.startswith("-"):
            ops.append(Uninstall(Package(text[1:], "1.0")))
        elif "@" in text:
            pkg, versions = text.split("@")
            before, after = versions.split(">")
            ops.append(Update(Package(pkg, before), Package(pkg, after)))
        else:
            ops.append(Install(Package(text, "1.0")))
    return ops


# ----------------------------------------------------------------- reports

POETRY = poetry_env(
    [
        dist("poetry", "2.5.1", ["packaging>=24.2", "tomlkit>=0.11"]),
        dist("packaging", "24.2"),
        dist("tomlkit", "0.13.2"),
    ]
)


def report_for(*changes: str, policy: Policy | None = None) -> Report:
    """The engine's report for ``name@a>b`` changes in a shared system target."""
    planned = []
    for text in changes:
        pkg, versions = text.split("@")
        before, after = versions.split(">")
        planned.append(change(pkg, before, after))
    return assess(
        poetry=POETRY,
        target=target(),
        changes=planned,
        policy=policy or load_policy(None, {}),
        project="/work/project",
    )


BREAKS = "packaging@24.2>23.0"
CHANGES = "tomlkit@0.13.2>0.13.3"

# ----------------------------------------------------------------- act


def test_block_runs_nothing_and_says_why(tmp_path: Path) -> None:
    setup = make_setup(tmp_path)
    report = report_for(BREAKS)
    assert report.verdict is RunVerdict.BLOCK
    status = setup.run(setup.guard(report), ["requests", "packaging@24.2>23.0"])
    assert status == 1
    assert setup.executor.calls == []
    err = setup.err
    assert "refusing to run this install" in err
    assert "packaging 24.2 -> 23.0" in err
    assert "Nothing was installed, removed or written." in err


def test_block_in_a_dry_run_runs_poetrys_dry_run(tmp_path: Path) -> None:
    setup = make_setup(tmp_path, dry_run=True)
    status = setup.run(setup.guard(report_for(BREAKS)), ["packaging@24.2>23.0"])
    assert status == 0
    assert setup.executor.calls == [["packaging"]]
    err = setup.err
    assert "would refuse to run this install" in err
    assert "Nothing was installed" not in err


def test_serialise_runs_poetrys_packages_last_and_alone(tmp_path: Path) -> None:
    setup = make_setup(tmp_path)
    report = report_for(CHANGES, "packaging@24.2>25.0")
    assert report.verdict is RunVerdict.SERIALISE
    names = ["requests", "tomlkit@0.13.2>0.13.3", "idna", "packaging@24.2>25.0"]
    assert setup.run(setup.guard(report), names) == 0
    assert setup.executor.calls == [["requests", "idna"], ["tomlkit"], ["packaging"]]
    # One summary for the whole plan, then the executor's own again.
    assert setup.executor.summaries == [["requests", "tomlkit", "idna", "packaging"]]
    assert "_display_summary" not in vars(setup.executor)
    assert "serialising tomlkit 0.13.2 -> 0.13.3" in setup.err


def test_serialise_stops_at_the_first_failure(tmp_path: Path) -> None:
    setup = make_setup(tmp_path)
    setup.executor.status = 1
    report = report_for(CHANGES)
    assert setup.run(setup.guard(report), ["requests", "tomlkit@0.13.2>0.13.3"]) == 1
    assert setup.executor.calls == [["requests"]]


def test_serialise_stops_when_poetry_is_shutting_down(tmp_path: Path) -> None:
    setup = make_setup(tmp_path)
    setup.executor._shutdown = True  # Ctrl-C during the parallel phase
    report = report_for(CHANGES)
    assert setup.run(setup.guard(report), ["requests", "tomlkit@0.13.2>0.13.3"]) == 1
    assert setup.executor.calls == [["requests"]]


def test_serialise_in_a_dry_run_runs_everything_at_once(tmp_path: Path) -> None:
    setup = make_setup(tmp_path, dry_run=True)
    report = report_for(CHANGES)
    assert setup.run(setup.guard(report), ["requests", "tomlkit@0.13.2>0.13.3"]) == 0
    assert setup.executor.calls == [["requests", "tomlkit"]]
    assert "would serialise tomlkit" in setup.err


def test_warn_runs_everything_and_warns(tmp_path: Path) -> None:
    setup = make_setup(tmp_path)
    policy = load_policy({"breaks": "warn"}, {})
    report = report_for(BREAKS, policy=policy)
    assert report.verdict is RunVerdict.WARN
    assert setup.run(setup.guard(report), ["packaging@24.2>23.0"]) == 0
    assert setup.executor.calls == [["packaging"]]
    err = setup.err
    assert "packaging 24.2 -> 23.0 (downgrade) breaks Poetry" in err
    assert "shares the environment it installs into" in err


def test_nothing_to_judge_runs_poetry_as_is(tmp_path: Path) -> None:
    setup = make_setup(tmp_path)
    guard = setup.guard()
    guard._decide = lambda *_: Decision()
    assert setup.run(guard, ["requests"]) == 0
    assert setup.executor.calls == [["requests"]]
    assert setup.err == ""


# ----------------------------------------------------------------- errors


def test_internal_error_lets_poetry_carry_on(tmp_path: Path) -> None:
    setup = make_setup(tmp_path)
    guard = setup.guard()

    def broken(*_: object) -> Decision:
        raise RuntimeError("boom")

    guard._decide = broken
    assert setup.run(guard, ["packaging@24.2>23.0"]) == 0
    assert setup.executor.calls == [["packaging"]]
    assert "internal error (RuntimeError: boom); Poetry carries on" in setup.err


@pytest.mark.parametrize(
    ("table", "environ"),
    [({"strict": True}, {}), (None, {"POETRY_ENV_AUDIT_STRICT": "1"})],
    ids=["table", "variable"],
)
def test_internal_error_in_strict_mode_stops(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    table: dict[str, Any] | None,
    environ: dict[str, str],
) -> None:
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    setup = make_setup(tmp_path, table=table)
    guard = setup.guard()

    def broken(*_: object) -> Decision:
        raise RuntimeError("boom")

    guard._decide = broken
    assert setup.run(guard, ["packaging@24.2>23.0"]) == 1
    assert setup.executor.calls == []
    assert "strict mode stops here" in setup.err


def test_bad_configuration_stops_with_one_line(tmp_path: Path) -> None:
    setup = make_setup(tmp_path, table={"breaks": "maybe"})
    guard = setup.guard(report_for(BREAKS))
    assert setup.run(guard, ["packaging@24.2>23.0"]) == 1
    assert setup.executor.calls == []
    assert setup.err.strip().splitlines() == [
        "poetry-env-audit: [tool.poetry-env-audit]: breaks must be one of block,"
        " serialise, warn, off, not 'maybe'."
    ]


# ----------------------------------------------------------------- the real decision


@pytest.fixture
def own_site() -> Iterator[list[Path]]:
    """The site-packages this test process (and its Poetry) imports from."""
    yield [Path(sysconfig.get_paths()["purelib"])]


def _installed(name: str) -> str:
    from importlib.metadata import version

    return version(name)


def test_decision_not_shared_is_the_fast_path(tmp_path: Path) -> None:
    setup = make_setup(tmp_path)  # its site-packages is not on sys.path
    guard = setup.guard()
    assert guard._decide is decide
    assert setup.run(guard, ["packaging@24.2>1.0"]) == 0
    assert setup.executor.calls == [["packaging"]]
    assert setup.err == ""


def test_decision_shared_breaking_downgrade_blocks(
    tmp_path: Path, own_site: list[Path]
) -> None:
    setup = make_setup(tmp_path, site_dirs=own_site)
    packaging = _installed("packaging")
    assert setup.run(setup.guard(), [f"packaging@{packaging}>1.0"]) == 1
    assert setup.executor.calls == []
    assert f"packaging {packaging} -> 1.0 (downgrade)" in setup.err


def test_decision_shared_with_no_change_says_one_line(
    tmp_path: Path, own_site: list[Path]
) -> None:
    setup = make_setup(tmp_path, site_dirs=own_site)
    assert setup.run(setup.guard(), []) == 0
    assert setup.executor.calls == [[]]
    lines = setup.err.strip().splitlines()
    assert len(lines) == 1
    assert "shares the environment it installs into" in lines[0]
    assert "virtualenvs.create = false" in lines[0]


def test_self_commands_serialise_changes_instead_of_blocking(
    tmp_path: Path, own_site: list[Path]
) -> None:
    setup = make_setup(
        tmp_path,
        name="self update",
        cls=SelfCommand,
        table={"changes": "block"},
        site_dirs=own_site,
    )
    packaging = _installed("packaging")
    ops = ["cleo-extra", f"packaging@{packaging}>{packaging}"]
    assert setup.run(setup.guard(), ops) == 0
    assert setup.executor.calls == [["cleo-extra"], ["packaging"]]
    err = setup.err
    assert "serialising packaging" in err
    assert "shares the environment" not in err  # a self command always does


def test_self_commands_still_refuse_what_breaks_poetry(
    tmp_path: Path, own_site: list[Path]
) -> None:
    setup = make_setup(tmp_path, name="self add", cls=SelfCommand, site_dirs=own_site)
    assert setup.run(setup.guard(), ["-packaging"]) == 1
    assert setup.executor.calls == []
    assert "packaging" in setup.err


def test_remove_offers_the_lock_only_removal_quoted(
    tmp_path: Path, own_site: list[Path]
) -> None:
    setup = make_setup(tmp_path, name="remove", site_dirs=own_site)
    assert setup.run(setup.guard(), ["-packaging"]) == 1
    assert "poetry remove --lock requests 'evil$(touch x)'" in setup.err


# ----------------------------------------------------------------- COMMAND time


def _externally_managed(setup: Setup) -> None:
    marker = Path(setup.env.paths["stdlib"]) / "EXTERNALLY-MANAGED"
    marker.write_text("[externally-managed]\nError=Use apt, not pip.\n")


def test_pep_668_target_is_refused_before_poetry_plans(tmp_path: Path) -> None:
    setup = make_setup(tmp_path)
    _externally_managed(setup)
    guard = setup.guard()
    guard.prepare()
    assert guard.refused
    assert "externally managed (PEP 668). Use apt, not pip." in setup.err
    assert guard.lock is None


def test_pep_668_warn_goes_on_and_takes_the_lock(
    tmp_path: Path, own_site: list[Path]
) -> None:
    setup = make_setup(
        tmp_path, table={"externally-managed": "warn"}, site_dirs=own_site
    )
    _externally_managed(setup)
    guard = setup.guard()
    guard.prepare()
    try:
        assert not guard.refused
        assert "installing anyway as configured" in setup.err
        assert guard.lock is not None
        assert guard.lock.held
    finally:
        guard.finish()
    assert guard.lock is None


def test_pep_668_does_not_apply_to_a_venv_or_poetry_self(tmp_path: Path) -> None:
    for kw in ({"venv": True}, {"cls": SelfCommand, "name": "self add"}):
        setup = make_setup(tmp_path / str(len(kw)), **kw)
        _externally_managed(setup)
        guard = setup.guard()
        guard.prepare()
        guard.finish()
        assert not guard.refused
        assert setup.err == ""


def test_dry_run_takes_no_lock(tmp_path: Path) -> None:
    setup = make_setup(tmp_path, dry_run=True)
    guard = setup.guard()
    guard.prepare()
    assert (guard.refused, guard.lock) == (False, None)


def test_lock_off_takes_no_lock(tmp_path: Path) -> None:
    setup = make_setup(tmp_path, table={"lock": False})
    guard = setup.guard()
    guard.prepare()
    assert (guard.refused, guard.lock) == (False, None)


def test_configuration_error_at_command_time_refuses(tmp_path: Path) -> None:
    setup = make_setup(tmp_path, table={"nope": 1})
    guard = setup.guard()
    guard.prepare()
    assert guard.refused
    assert "unknown key 'nope'" in setup.err


# ----------------------------------------------------------------- attach and hooks


def test_attach_skips_commands_that_only_lock(tmp_path: Path) -> None:
    setup = make_setup(tmp_path, name="lock")
    assert attach(setup.command, setup.io) is None
    assert setup.executor.execute.__func__ is FakeExecutor.execute  # type: ignore[attr-defined]


def test_attach_says_when_it_cannot_guard(tmp_path: Path) -> None:
    setup = make_setup(tmp_path)
    setup.command._installer = None
    guard = attach(setup.command, setup.io)
    assert guard is not None
    assert not guard.refused
    assert "this command is NOT guarded" in setup.err


def test_attach_unguardable_in_strict_mode_refuses(tmp_path: Path) -> None:
    setup = make_setup(tmp_path, table={"strict": True})
    setup.command._installer = None
    guard = attach(setup.command, setup.io)
    assert guard is not None
    assert guard.refused
    assert "strict mode stops here" in setup.err


def test_attach_wraps_execute_and_prepares(
    tmp_path: Path, own_site: list[Path]
) -> None:
    setup = make_setup(tmp_path, site_dirs=own_site)
    guard = attach(setup.command, setup.io)
    assert guard is not None
    try:
        assert guard.lock is not None  # prepare() ran
        assert setup.executor.execute(operations(["leftpad-x"])) == 0
        assert setup.executor.calls == [["leftpad-x"]]
    finally:
        guard.finish()


def test_missing_seam_is_reported_once_with_its_fallback(tmp_path: Path) -> None:
    setup = make_setup(tmp_path)
    del setup.executor._env  # an Executor without _env: the command's env is used
    guard = setup.guard()  # the real decision: not shared, after reading the env
    assert setup.run(guard, ["requests"]) == 0
    assert setup.run(guard, ["idna"]) == 0
    assert setup.executor.calls == [["requests"], ["idna"]]
    assert setup.err.strip().splitlines() == [
        "poetry-env-audit: this Poetry lacks Executor._env; using the command's env."
    ]


@dataclass
class FakeEvent:
    command: object
    io: BufferedIO
    disabled: bool = False
    exit_code: int | None = None

    def disable_command(self) -> None:
        self.disabled = True

    def set_exit_code(self, code: int) -> None:
        self.exit_code = code


def test_hooks_disable_a_refused_command_and_fail_it(tmp_path: Path) -> None:
    setup = make_setup(tmp_path)
    _externally_managed(setup)
    event = FakeEvent(setup.command, setup.io)
    hooks.on_command(event, "console.command", None)  # type: ignore[arg-type]
    assert event.disabled
    hooks.on_terminate(event, "console.terminate", None)  # type: ignore[arg-type]
    assert event.exit_code == 1


def test_hooks_ignore_other_commands(tmp_path: Path) -> None:
    event = FakeEvent(object(), poetry_io())
    hooks.on_command(event, "console.command", None)  # type: ignore[arg-type]
    hooks.on_terminate(event, "console.terminate", None)  # type: ignore[arg-type]
    assert (event.disabled, event.exit_code) == (False, None)


def test_hooks_turn_an_error_into_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup = make_setup(tmp_path)

    def broken(command: object, io: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("poetry_env_audit.guard.attach", broken)
    event = FakeEvent(setup.command, setup.io)
    hooks.on_command(event, "console.command", None)  # type: ignore[arg-type]
    assert not event.disabled
    assert setup.err.strip() == (
        "poetry-env-audit: internal error (RuntimeError); Poetry carries on without"
        " the guard."
    )


def test_lock_is_released_at_terminate(tmp_path: Path, own_site: list[Path]) -> None:
    setup = make_setup(tmp_path, site_dirs=own_site)
    event = FakeEvent(setup.command, setup.io)
    hooks.on_command(event, "console.command", None)  # type: ignore[arg-type]
    guard = hooks._GUARDS[id(setup.command)]
    assert guard.lock is not None
    lock = guard.lock
    hooks.on_terminate(event, "console.terminate", None)  # type: ignore[arg-type]
    assert not lock.held
    assert event.exit_code is None
    assert id(setup.command) not in hooks._GUARDS


def test_policy_is_read_once(tmp_path: Path) -> None:
    setup = make_setup(tmp_path)
    guard = setup.guard()
    first = guard.policy()
    setup.command.poetry = FakePoetry(tmp_path, {"breaks": "maybe"})
    assert guard.policy() is first
    assert first.action("breaks") is PolicyAction.BLOCK


# ----------------------------------------------------------------- fail safe (issue 11)

DEEP = 1200


def deep_marker(depth: int = DEEP) -> str:
    """A valid marker nested ``depth`` parentheses deep."""
    return "(" * depth + 'python_version >= "3"' + ")" * depth


def _fake_plugin(root: Path, name: str, requires: Sequence[str]) -> Path:
    """A dist-info of a Poetry plugin in ``root`` (put on sys.path by the caller)."""
    info = root / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    lines = ["Metadata-Version: 2.1", f"Name: {name}", "Version: 1.0"]
    lines += [f"Requires-Dist: {r}" for r in requires]
    (info / "METADATA").write_text("\n".join(lines) + "\n\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(
        f"[poetry.application.plugin]\n{name} = x:Plugin\n", encoding="utf-8"
    )
    return root


@pytest.fixture
def plugin_with(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[[Sequence[str]], None]:
    """Install a fake plugin with the given Requires-Dist next to Poetry."""

    def install(requires: Sequence[str]) -> None:
        root = _fake_plugin(tmp_path / "plugin-site", "adv-plugin", requires)
        monkeypatch.syspath_prepend(str(root))

    return install


def test_arbitrary_equality_in_poetrys_closure_blocks_the_downgrade(
    tmp_path: Path, own_site: list[Path], plugin_with: Callable[[Sequence[str]], None]
) -> None:
    packaging = _installed("packaging")
    plugin_with([f"packaging==={packaging}"])
    setup = make_setup(tmp_path, site_dirs=own_site)
    assert setup.run(setup.guard(), [f"packaging@{packaging}>1.0"]) == 1
    assert setup.executor.calls == []
    err = setup.err
    assert "internal error" not in err
    assert f"packaging {packaging} -> 1.0 (downgrade)" in err
    assert f"adv-plugin 1.0 requires packaging==={packaging}" in err


def test_deep_marker_in_poetrys_closure_makes_the_change_unverified(
    tmp_path: Path, own_site: list[Path], plugin_with: Callable[[Sequence[str]], None]
) -> None:
    packaging = _installed("packaging")
    plugin_with([f"packaging>=1; {deep_marker()}"])
    setup = make_setup(tmp_path, site_dirs=own_site)
    assert setup.run(setup.guard(), [f"packaging@{packaging}>{packaging}"]) == 1
    assert setup.executor.calls == []
    err = setup.err
    assert "internal error" not in err
    assert "could not be read" in err
    assert "adv-plugin 1.0" in err
    assert "POETRY_ENV_AUDIT_UNVERIFIED=warn" in err


def test_deep_marker_elsewhere_lets_other_packages_through(
    tmp_path: Path, own_site: list[Path], plugin_with: Callable[[Sequence[str]], None]
) -> None:
    plugin_with([f"leftpad>=1; {deep_marker()}"])
    setup = make_setup(tmp_path, site_dirs=own_site)
    assert setup.run(setup.guard(), ["leftpad-x"]) == 0
    assert setup.executor.calls == [["leftpad-x"]]
    err = setup.err
    assert "refusing" not in err
    assert "internal error" not in err


def test_unverified_policy_warn_lets_the_change_through(
    tmp_path: Path,
    own_site: list[Path],
    plugin_with: Callable[[Sequence[str]], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    packaging = _installed("packaging")
    plugin_with([f"packaging>=1; {deep_marker()}"])
    monkeypatch.setenv("POETRY_ENV_AUDIT_UNVERIFIED", "warn")
    setup = make_setup(tmp_path, site_dirs=own_site)
    assert setup.run(setup.guard(), [f"packaging@{packaging}>{packaging}"]) == 0
    assert setup.executor.calls == [["packaging"]]
    assert "unverified" in setup.err


def test_internal_error_touching_poetrys_closure_refuses(
    tmp_path: Path, own_site: list[Path]
) -> None:
    setup = make_setup(tmp_path, site_dirs=own_site)
    guard = setup.guard()

    def broken(*_: object) -> Decision:
        raise RuntimeError("boom")

    guard._decide = broken
    packaging = _installed("packaging")
    assert setup.run(guard, ["requests", f"packaging@{packaging}>1.0"]) == 1
    assert setup.executor.calls == []
    lines = setup.err.strip().splitlines()
    assert len(lines) == 1
    assert "internal error (RuntimeError: boom)" in lines[0]
    assert "packaging" in lines[0]
    assert "POETRY_ENV_AUDIT_UNVERIFIED=warn" in lines[0]
    assert "--no-plugins" in lines[0]


def test_internal_error_touching_poetrys_closure_with_unverified_warn_carries_on(
    tmp_path: Path, own_site: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POETRY_ENV_AUDIT_UNVERIFIED", "warn")
    setup = make_setup(tmp_path, site_dirs=own_site)
    guard = setup.guard()

    def broken(*_: object) -> Decision:
        raise RuntimeError("boom")

    guard._decide = broken
    packaging = _installed("packaging")
    assert setup.run(guard, [f"packaging@{packaging}>1.0"]) == 0
    assert setup.executor.calls == [["packaging"]]
    assert "Poetry carries on" in setup.err


# ----------------------------------------------------------------- nothing written where nothing is shared


def test_target_that_shares_nothing_gets_no_lock_and_no_file(tmp_path: Path) -> None:
    setup = make_setup(tmp_path)  # its site-packages is not on sys.path
    guard = attach(setup.command, setup.io)
    assert guard is not None
    assert guard.lock is None
    assert setup.executor.execute(operations(["requests"])) == 0
    guard.finish()
    assert list(Path(setup.env.paths["purelib"]).iterdir()) == []
    assert setup.err == ""


def test_lock_always_locks_a_target_that_shares_nothing(tmp_path: Path) -> None:
    setup = make_setup(tmp_path, table={"lock": "always"})
    guard = setup.guard()
    guard.prepare()
    try:
        assert guard.lock is not None
        assert guard.lock.held
    finally:
        guard.finish()


@pytest.mark.parametrize("name", ["self show plugins", "self show", "self lock"])
def test_commands_that_run_no_operation_are_not_attached(
    tmp_path: Path, name: str
) -> None:
    setup = make_setup(tmp_path, name=name, cls=SelfCommand)
    assert attach(setup.command, setup.io) is None
    assert list(Path(setup.env.paths["purelib"]).iterdir()) == []


def test_show_command_class_is_recognised_under_any_name(tmp_path: Path) -> None:
    class ShowCommand(SelfCommand):
        pass

    setup = make_setup(tmp_path, name="self show outdated", cls=ShowCommand)
    assert attach(setup.command, setup.io) is None


@pytest.fixture
def read_only_lock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Creating the lock file fails as on a read-only filesystem."""
    import errno

    from poetry_env_audit import envlock

    real_open = os.open

    def fake_open(path: Any, flags: int, *args: Any) -> int:
        if str(path).endswith(envlock.LOCK_NAME) and flags & os.O_CREAT:
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", fake_open)


@pytest.mark.usefixtures("read_only_lock")
def test_read_only_target_never_fails_a_no_op(
    tmp_path: Path, own_site: list[Path]
) -> None:
    setup = make_setup(tmp_path, site_dirs=own_site)
    guard = setup.guard()
    guard.prepare()
    assert not guard.refused
    assert guard.lock is None
    assert setup.run(guard, []) == 0
    assert setup.executor.calls == [[]]
    assert "read-only" not in setup.err


@pytest.mark.usefixtures("read_only_lock")
def test_read_only_target_refuses_operations_with_the_lock_error(
    tmp_path: Path, own_site: list[Path]
) -> None:
    setup = make_setup(tmp_path, site_dirs=own_site)
    guard = setup.guard()
    guard.prepare()
    assert not guard.refused
    assert setup.run(guard, ["leftpad-x"]) == 1
    assert setup.executor.calls == []
    (line,) = setup.err.strip().splitlines()
    assert "cannot create" in line
    assert "read-only file system" in line
