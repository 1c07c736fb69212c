from __future__ import annotations

from types import SimpleNamespace
from typing import TYPE_CHECKING
from typing import cast

import pytest
from poetry.core.packages.dependency import Dependency

from poetry_env_audit.audit import assess
from poetry_env_audit.audit import environment_findings
from poetry_env_audit.audit import run_verdict
from poetry_env_audit.findings import EnvFinding
from poetry_env_audit.findings import EnvKind
from poetry_env_audit.findings import Finding
from poetry_env_audit.findings import Holder
from poetry_env_audit.findings import Verdict
from poetry_env_audit.plan import Action
from poetry_env_audit.plan import PlannedChange
from poetry_env_audit.policy import PolicyAction
from poetry_env_audit.policy import default_policy
from poetry_env_audit.policy import load_policy
from poetry_env_audit.report import EXIT_BLOCK
from poetry_env_audit.report import EXIT_OK
from poetry_env_audit.report import RunVerdict
from poetry_env_audit.seams.plan import project_holders
from unit.factories import change
from unit.factories import dist
from unit.factories import installation
from unit.factories import poetry_env
from unit.factories import target

if TYPE_CHECKING:
    from collections.abc import Sequence

    from poetry.poetry import Poetry

    from poetry_env_audit.poetry_env import Installation
    from poetry_env_audit.poetry_env import PoetryEnvironment
    from poetry_env_audit.target import TargetEnvironment


def env(install: Installation | None = None) -> PoetryEnvironment:
    return poetry_env(
        [
            dist("poetry", "2.5.1", ["packaging>=24.2", "dulwich>=0.22"]),
            dist("packaging", "25.0"),
            dist("dulwich", "0.22.8"),
            dist("requests", "2.32.3"),
        ],
        install=install,
    )


BREAKS = change("packaging", "25.0", "23.2")
CHANGES = change("packaging", "25.0", "24.2")
UNRELATED = change("requests", "2.32.3", "2.31.0")


@pytest.mark.parametrize(
    ("changes", "policy", "verdict", "exit_code"),
    [
        ([BREAKS], {}, RunVerdict.BLOCK, EXIT_BLOCK),
        ([BREAKS, CHANGES], {}, RunVerdict.BLOCK, EXIT_BLOCK),
        ([CHANGES], {}, RunVerdict.SERIALISE, EXIT_OK),
        ([UNRELATED], {}, RunVerdict.WARN, EXIT_OK),
        ([], {}, RunVerdict.WARN, EXIT_OK),
        ([BREAKS], {"breaks": "warn"}, RunVerdict.WARN, EXIT_OK),
        ([BREAKS], {"breaks": "serialize"}, RunVerdict.SERIALISE, EXIT_OK),
        ([BREAKS], {"breaks": "off", "shared": "off"}, RunVerdict.OK, EXIT_OK),
        ([CHANGES], {"changes": "block"}, RunVerdict.BLOCK, EXIT_BLOCK),
        ([CHANGES], {"changes": "off"}, RunVerdict.WARN, EXIT_OK),
        ([], {"shared": "block"}, RunVerdict.BLOCK, EXIT_BLOCK),
        ([], {"shared": "off"}, RunVerdict.OK, EXIT_OK),
    ],
    ids=[
        "breaks-blocks",
        "worst-wins",
        "changes-serialise",
        "unrelated-change-only-shared",
        "no-changes-shared-warns",
        "breaks-warn",
        "breaks-serialise",
        "everything-off",
        "changes-block",
        "changes-off",
        "shared-block",
        "shared-off",
    ],
)
def test_verdict_on_a_shared_target(
    changes: list[PlannedChange],
    policy: dict[str, object],
    verdict: RunVerdict,
    exit_code: int,
) -> None:
    report = assess(
        poetry=env(),
        target=target(),
        changes=changes,
        policy=load_policy(policy, {}),
    )
    assert report.verdict is verdict
    assert report.exit_code == exit_code
    assert report.changes == tuple(changes)


def test_policy_from_the_environment_reaches_the_verdict() -> None:
    policy = load_policy({"breaks": "block"}, {"POETRY_ENV_AUDIT_BREAKS": "warn"})
    report = assess(poetry=env(), target=target(), changes=[BREAKS], policy=policy)
    assert report.findings[0].policy is PolicyAction.WARN
    assert (report.verdict, report.exit_code) == (RunVerdict.WARN, EXIT_OK)
    assert report.blocking == ()


def test_findings_carry_policy_and_remedies() -> None:
    report = assess(
        poetry=env(),
        target=target(),
        changes=[BREAKS, CHANGES, UNRELATED],
        policy=default_policy(),
        project="/work/project",
        sync=True,
    )
    assert [(f.verdict, f.policy) for f in report.findings] == [
        (Verdict.BREAKS, PolicyAction.BLOCK),
        (Verdict.CHANGES, PolicyAction.SERIALISE),
    ]
    assert [r.command for r in report.findings[0].remedies][:3] == [
        "poetry self isolate",
        "poetry add 'packaging>=24.2'",
        "poetry config virtualenvs.create true --local",
    ]
    assert report.blocking == (report.findings[0],)
    assert (report.project, report.sync) == ("/work/project", True)


@pytest.mark.parametrize(
    "changes",
    [[], [BREAKS], [BREAKS, CHANGES, change("packaging", "25.0", None)]],
    ids=["nothing", "breaking", "several"],
)
def test_isolated_poetry_has_no_findings(changes: list[PlannedChange]) -> None:
    report = assess(
        poetry=env(installation("pipx", isolated=True)),
        target=target(shared=False, kind="venv", reason="in-project .venv"),
        changes=changes,
        policy=default_policy(),
    )
    assert report.findings == ()
    assert report.environment == ()
    assert (report.verdict, report.exit_code) == (RunVerdict.OK, EXIT_OK)


def test_shared_without_changes_is_one_shared_finding() -> None:
    report = assess(poetry=env(), target=target(), changes=[], policy=default_policy())
    assert report.findings == ()
    (shared,) = report.environment
    assert shared.kind == "shared"
    assert shared.policy is PolicyAction.WARN
    assert shared.message == (
        "Poetry 2.5.1 runs from /site, the environment this command installs into"
        " (virtualenvs.create = false)."
    )
    assert [r.command for r in shared.remedies][:2] == [
        "poetry self isolate",
        "poetry config virtualenvs.create true --local",
    ]
    assert report.verdict is RunVerdict.WARN


def test_inconsistent_environment_gets_a_pip_repair() -> None:
    poetry = poetry_env(
        [dist("poetry", "2.5.1", ["packaging>=24.2"]), dist("packaging", "23.2")],
        install=installation("pipx", isolated=True),
        python="/opt/pipx/venvs/poetry/bin/python",
    )
    report = assess(
        poetry=poetry,
        target=target(shared=False, kind="venv"),
        changes=[],
        policy=default_policy(),
    )
    (finding,) = report.environment
    assert finding.kind == "inconsistent"
    assert finding.policy is PolicyAction.WARN
    assert finding.message == (
        "Poetry's environment is already inconsistent: poetry 2.5.1 requires"
        " packaging>=24.2, but packaging 23.2 is installed."
    )
    assert [r.command for r in finding.remedies] == [
        "/opt/pipx/venvs/poetry/bin/python -m pip install 'packaging>=24.2'"
    ]
    assert report.verdict is RunVerdict.WARN


def test_inconsistent_can_be_blocking() -> None:
    poetry = poetry_env(
        [dist("poetry", "2.5.1", ["packaging>=24.2"])],
        install=installation("pipx", isolated=True),
    )
    report = assess(
        poetry=poetry,
        target=target(shared=False),
        changes=[],
        policy=load_policy({"inconsistent": "block"}, {}),
    )
    assert [e.kind for e in report.environment] == ["inconsistent"]
    assert report.environment[0].remedies[0].command == (
        "/usr/bin/python3 -m pip install 'packaging>=24.2'"
    )
    assert report.exit_code == EXIT_BLOCK


def test_not_isolated_poetry_is_a_note_without_policy() -> None:
    (note,) = environment_findings(
        env(installation("system", others=("black",))),
        target(shared=False, kind="venv", reason="in-project .venv"),
        default_policy(),
    )
    assert note.kind == "not-isolated"
    assert note.policy is None
    assert "shared (the system interpreter, with 1 other packages: black)" in (
        note.message
    )
    assert note.remedies[0].command is not None
    assert note.remedies[0].command.startswith('pipx install "poetry==2.5.1"')
    assert run_verdict([], [note]) is RunVerdict.OK


@pytest.mark.parametrize(
    ("install", "tgt", "kinds"),
    [
        (
            installation(externally_managed="Use apt."),
            target(externally_managed="Use apt."),
            ["shared", "externally-managed"],
        ),
        (
            installation(externally_managed="Use apt."),
            target(),
            ["shared", "externally-managed"],
        ),
        (
            installation(externally_managed="Use apt."),
            target(shared=False, kind="venv"),
            ["not-isolated"],
        ),
        (
            installation("pipx", isolated=True),
            target(shared=False, externally_managed="Use\n  apt."),
            ["externally-managed"],
        ),
    ],
    ids=[
        "target-marked",
        "poetry-marked-and-shared",
        "poetry-marked-not-shared",
        "target-only",
    ],
)
def test_externally_managed(
    install: Installation, tgt: TargetEnvironment, kinds: list[str]
) -> None:
    findings = environment_findings(env(install), tgt, default_policy())
    assert [f.kind for f in findings] == kinds
    for f in findings:
        if f.kind == "externally-managed":
            assert f.message == "/usr/bin/python3 is externally managed: Use apt."
            assert f.policy is PolicyAction.BLOCK  # the default refuses PEP 668


@pytest.mark.parametrize(
    ("policy", "verdict", "exit_code"),
    [
        ({}, RunVerdict.BLOCK, EXIT_BLOCK),
        ({"externally-managed": "warn"}, RunVerdict.WARN, EXIT_OK),
        ({"externally-managed": "off", "shared": "off"}, RunVerdict.OK, EXIT_OK),
    ],
    ids=["default-blocks", "warn", "off"],
)
def test_externally_managed_verdict(
    policy: dict[str, object], verdict: RunVerdict, exit_code: int
) -> None:
    report = assess(
        poetry=env(),
        target=target(externally_managed="Use apt."),
        changes=[],
        policy=load_policy(policy, {}),
    )
    assert (report.verdict, report.exit_code) == (verdict, exit_code)


def test_holders_are_asked_only_for_breaking_findings() -> None:
    asked: list[tuple[str, str]] = []

    def holders_for(name: str, specifier: str) -> Sequence[Holder]:
        asked.append((name, specifier))
        return [Holder("my-project (pyproject.toml)", "<24", allows=False)]

    report = assess(
        poetry=env(),
        target=target(),
        changes=[BREAKS, change("dulwich", "0.22.8", "0.22.9")],
        policy=default_policy(),
        holders_for=holders_for,
    )
    assert asked == [("packaging", ">=24.2")]
    isolate, first = report.findings[0].remedies[:2]
    assert isolate.command == "poetry self isolate"
    assert first.command is None
    assert "my-project (pyproject.toml) requires packaging (<24)" in first.title


def test_holders_are_found_for_a_package_with_a_display_name() -> None:
    # Regression: holders_for got Poetry's display name (PyYAML) while
    # seams.project_holders compares canonical Dependency names (pyyaml).
    fake = SimpleNamespace(
        package=SimpleNamespace(
            pretty_name="my-project", all_requires=[Dependency("PyYAML", "<6")]
        ),
        locker=SimpleNamespace(locked_repository=lambda: SimpleNamespace(packages=[])),
    )
    project = cast("Poetry", fake)
    poetry = poetry_env(
        [dist("poetry", "2.5.1", ["pyyaml>=6"]), dist("PyYAML", "6.0.2")]
    )
    report = assess(
        poetry=poetry,
        target=target(),
        changes=[change("pyyaml", "6.0.2", "5.4")],
        policy=default_policy(),
        holders_for=lambda name, spec: project_holders(project, name, spec),
    )
    assert report.findings[0].package == "PyYAML"
    isolate, first = report.findings[0].remedies[:2]
    assert isolate.command == "poetry self isolate"
    assert first.command is None
    assert first.title == (
        "The project's constraints exclude what Poetry needs (PyYAML>=6):"
        " my-project (pyproject.toml) requires PyYAML (<6); isolate Poetry instead"
    )


def _finding(policy: PolicyAction | None) -> Finding:
    return Finding(
        package="packaging",
        current="25.0",
        planned="23.2",
        action=Action.DOWNGRADE,
        verdict=Verdict.BREAKS,
        required_by=(),
        detail="",
        policy=policy,
    )


def _env_finding(policy: PolicyAction | None) -> EnvFinding:
    return EnvFinding(kind=EnvKind.SHARED, message="", policy=policy)


@pytest.mark.parametrize(
    ("findings", "environment", "verdict"),
    [
        ([], [], RunVerdict.OK),
        ([None], [None], RunVerdict.OK),
        ([PolicyAction.OFF], [PolicyAction.OFF], RunVerdict.OK),
        ([PolicyAction.WARN], [], RunVerdict.WARN),
        ([], [PolicyAction.WARN], RunVerdict.WARN),
        ([PolicyAction.SERIALISE, PolicyAction.WARN], [], RunVerdict.SERIALISE),
        ([PolicyAction.WARN], [PolicyAction.SERIALISE], RunVerdict.SERIALISE),
        ([PolicyAction.SERIALISE], [PolicyAction.BLOCK], RunVerdict.BLOCK),
        ([PolicyAction.BLOCK, PolicyAction.OFF], [None], RunVerdict.BLOCK),
    ],
    ids=[
        "nothing",
        "no-policy",
        "off",
        "warn-finding",
        "warn-environment",
        "serialise-beats-warn",
        "environment-serialise",
        "environment-block",
        "block",
    ],
)
def test_run_verdict(
    findings: list[PolicyAction | None],
    environment: list[PolicyAction | None],
    verdict: RunVerdict,
) -> None:
    got = run_verdict(
        [_finding(p) for p in findings], [_env_finding(p) for p in environment]
    )
    assert got is verdict


# ----------------------------------------------------------- checked remedies

REMOVAL = change("packaging", "25.0", None)


@pytest.mark.parametrize(
    ("answers", "command"),
    [
        ({False: True, True: True}, "poetry install --only main"),
        ({False: False, True: True}, "poetry install --only main --all-extras"),
        ({False: False, True: False}, None),
    ],
    ids=["plain", "all-extras", "none"],
)
def test_the_way_out_of_a_removal_is_checked_first(
    answers: dict[bool, bool], command: str | None
) -> None:
    asked: list[bool] = []

    def check(all_extras: bool) -> bool:
        asked.append(all_extras)
        return answers[all_extras]

    report = assess(
        poetry=env(),
        target=target(),
        changes=[REMOVAL],
        policy=default_policy(),
        sync=True,
        install_check=check,
        flags="--only main",
    )
    (finding,) = report.findings
    installs = [r for r in finding.remedies if "synchronising" in r.title]
    assert len(installs) == 1
    assert installs[0].command == command
    if command is None:
        assert installs[0].title.startswith("No install without synchronising")
    assert asked == [False] if answers[False] else [False, True]


def test_a_check_that_fails_offers_no_unchecked_command() -> None:
    def check(all_extras: bool) -> bool:
        raise RuntimeError("cannot plan")

    report = assess(
        poetry=env(),
        target=target(),
        changes=[REMOVAL],
        policy=default_policy(),
        install_check=check,
    )
    commands = [r.command for r in report.findings[0].remedies]
    assert "poetry install" not in commands


def test_install_check_judges_the_planned_changes() -> None:
    from poetry_env_audit.audit import install_check

    plans = {False: [REMOVAL], True: [UNRELATED]}
    check = install_check(lambda all_extras: plans[all_extras], env(), target())
    assert (check(False), check(True)) == (False, True)


@pytest.mark.parametrize(
    ("locked", "asked"),
    [
        (frozenset({"requests"}), [False]),
        (frozenset({"requests", "poetry"}), [False, True]),
    ],
    ids=["requirer-not-locked", "requirer-locked"],
)
def test_the_plan_with_every_extra_is_skipped_when_it_cannot_help(
    locked: frozenset[str], asked: list[bool]
) -> None:
    """The plain install breaks Poetry's requirement on packaging with a
    version the lock pins; every extra only adds installs from that lock, so
    unless the lock can change the requirer (poetry) that plan breaks too."""
    from poetry_env_audit.audit import install_check

    planned: list[bool] = []

    def plan(all_extras: bool) -> list[PlannedChange]:
        planned.append(all_extras)
        return [BREAKS]

    check = install_check(plan, env(), target(), lambda: locked)
    assert (check(False), check(True)) == (False, False)
    assert planned == asked


def test_a_derived_plain_install_is_the_sync_plan_without_removals() -> None:
    from poetry_env_audit.audit import plain_install

    planned: list[bool] = []

    def plan(all_extras: bool) -> list[PlannedChange]:
        planned.append(all_extras)
        return [CHANGES]

    derived = plain_install([REMOVAL, UNRELATED], plan, derived=True)
    assert list(derived(False)) == [UNRELATED]
    assert planned == []
    assert list(derived(True)) == [CHANGES]  # every extra: Poetry plans it
    assert planned == [True]
    planned_each = plain_install([REMOVAL, UNRELATED], plan, derived=False)
    assert list(planned_each(False)) == [CHANGES]
