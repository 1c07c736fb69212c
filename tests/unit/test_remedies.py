from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import pytest

from poetry_env_audit.findings import Finding
from poetry_env_audit.findings import Holder
from poetry_env_audit.findings import Remedy
from poetry_env_audit.findings import Requirer
from poetry_env_audit.findings import Verdict
from poetry_env_audit.plan import Action
from poetry_env_audit.remedies import align_lock
from poetry_env_audit.remedies import combined_specifier
from poetry_env_audit.remedies import for_package
from poetry_env_audit.remedies import for_shared
from poetry_env_audit.remedies import isolate_in_place
from poetry_env_audit.remedies import isolate_poetry
from poetry_env_audit.remedies import repair
from poetry_env_audit.remedies import specifier_of
from poetry_env_audit.remedies import use_a_venv
from unit.factories import dist
from unit.factories import installation
from unit.factories import poetry_env
from unit.factories import target

if TYPE_CHECKING:
    from pathlib import Path

    from poetry_env_audit.poetry_env import PoetryEnvironment


def finding(
    package: str = "packaging",
    requirements: tuple[str, ...] = ("packaging>=24.2",),
    *,
    action: Action = Action.DOWNGRADE,
    verdict: Verdict = Verdict.BREAKS,
) -> Finding:
    return Finding(
        package=package,
        current="25.0",
        planned=None if action is Action.REMOVE else "23.2",
        action=action,
        verdict=verdict,
        required_by=tuple(
            Requirer(f"requirer-{i}", "1.0", text, satisfied=False)
            for i, text in enumerate(requirements)
        ),
        detail="",
    )


def env() -> PoetryEnvironment:
    return poetry_env(
        [
            dist("poetry", "2.5.1", ["packaging>=24.2", "poetry-plugin-export>=1.8"]),
            dist("poetry-plugin-export", "1.8.0", plugin=True),
            dist("poetry-plugin-shell", "1.0.1", plugin=True),
            dist("packaging", "25.0"),
        ],
        python="/usr/bin/python3",
    )


# ------------------------------------------------------------ combined_specifier


@pytest.mark.parametrize(
    ("requirements", "expected"),
    [
        ([">=2.5"], ">=2.5"),
        ([">=2.5", ">=3.18,<4"], ">=3.18,<4"),
        ([">=3.18,<4", ">=2.5"], ">=3.18,<4"),
        (["<4,>=3.18"], ">=3.18,<4"),
        (["==1.0"], "==1.0"),
        (["~=1.2"], "~=1.2"),
        (["~=1.2", ">=1.3"], ">=1.3,~=1.2"),
        (["not a specifier"], ""),
        (["not a specifier", ">=1"], ">=1"),
        ([], ""),
        ([""], ""),
        (["<4", "<5"], "<4"),
        (["<5", "<4"], "<4"),
        ([">=1", ">1"], ">1"),
        ([">1", ">=1"], ">1"),
        ([">=1", "<=2"], ">=1,<=2"),
        (["<=2", "<2"], "<2"),
        (["<2", "<=2"], "<2"),
        (["<=2", "<=3"], "<=2"),
        (["!=1.5", ">=1"], ">=1,!=1.5"),
        (["==1.*"], "==1.*"),
        (["==1.0", "==1.0"], "==1.0"),
        ([">=1", "==2.0", "!=2.1"], ">=1,==2.0,!=2.1"),
    ],
    ids=[
        "one-lower-bound",
        "highest-lower-bound",
        "order-does-not-matter",
        "lower-bound-first",
        "pin",
        "compatible",
        "compatible-kept-beside-bound",
        "invalid",
        "invalid-skipped",
        "nothing",
        "empty",
        "lowest-upper-bound",
        "lowest-upper-bound-reversed",
        "exclusive-lower-wins-tie",
        "exclusive-lower-wins-tie-reversed",
        "inclusive-bounds",
        "exclusive-upper-wins-tie",
        "exclusive-upper-wins-tie-reversed",
        "lowest-inclusive-upper-bound",
        "exclusion",
        "wildcard",
        "duplicate-pin",
        "mixed",
    ],
)
def test_combined_specifier(requirements: list[str], expected: str) -> None:
    assert combined_specifier(requirements) == expected


# ------------------------------------------------------------------ specifier_of


@pytest.mark.parametrize(
    ("requirement", "expected"),
    [
        ("packaging>=24.2", ">=24.2"),
        ("cachecontrol[filecache]>=0.14", ">=0.14"),
        ("cachecontrol[filecache,redis]<0.15,>=0.14", "<0.15,>=0.14"),
        ("idna<4,>=2.5", "<4,>=2.5"),
        ("foo==1.0", "==1.0"),
        ("foo~=1.2", "~=1.2"),
        ("foo!=1", "!=1"),
        ("foo", ""),
        ("foo[bar]", ""),
        ("Foo.Bar_baz>=1", ">=1"),
    ],
    ids=[
        "lower-bound",
        "extra",
        "extras",
        "two-clauses",
        "pin",
        "compatible",
        "exclusion",
        "bare",
        "bare-with-extra",
        "dotted-name",
    ],
)
def test_specifier_of(requirement: str, expected: str) -> None:
    assert specifier_of(requirement) == expected


# -------------------------------------------------------------------- align_lock


@pytest.mark.parametrize(
    "holders",
    [
        [],
        [Holder("my-project (pyproject.toml)", ">=24", allows=True)],
        [
            Holder("my-project (pyproject.toml)", "*", allows=True),
            Holder("black 24.1.0", ">=22.0", allows=True),
        ],
    ],
    ids=["no-holders", "pyproject-allows", "all-allow"],
)
def test_align_lock_when_the_project_allows(holders: list[Holder]) -> None:
    assert align_lock(finding(), holders) == Remedy(
        title="Align the lock with Poetry's requirement (packaging>=24.2)",
        command="poetry add 'packaging>=24.2'",
    )


@pytest.mark.parametrize(
    ("holders", "who"),
    [
        (
            [Holder("my-project (pyproject.toml)", "<24", allows=False)],
            "my-project (pyproject.toml) requires packaging (<24)",
        ),
        (
            [
                Holder("my-project (pyproject.toml)", "*", allows=True),
                Holder("old-lib 1.0", "<22", allows=False),
                Holder("older-lib 0.1", "==21.3", allows=False),
            ],
            "old-lib 1.0 requires packaging (<22);"
            " older-lib 0.1 requires packaging (==21.3)",
        ),
    ],
    ids=["pyproject-excludes", "locked-dependencies-exclude"],
)
def test_align_lock_when_the_project_does_not_allow(
    holders: list[Holder], who: str
) -> None:
    remedy = align_lock(finding(), holders)
    assert remedy.command is None
    assert remedy.title == (
        "The project's constraints exclude what Poetry needs (packaging>=24.2):"
        f" {who}; isolate Poetry instead"
    )


@pytest.mark.parametrize(
    ("requirements", "command"),
    [
        (("packaging>=24.2", "packaging<26,>=22"), "poetry add 'packaging>=24.2,<26'"),
        ((), "poetry add packaging"),
        (("packaging",), "poetry add packaging"),
    ],
    ids=["combined", "no-requirers", "unconstrained"],
)
def test_align_lock_command(requirements: tuple[str, ...], command: str) -> None:
    assert align_lock(finding(requirements=requirements), []).command == command


def test_align_lock_of_a_removal_installs_without_sync() -> None:
    blocking = [Holder("my-project (pyproject.toml)", "<1", allows=False)]
    remedy = align_lock(finding(action=Action.REMOVE), blocking)
    assert remedy == Remedy(
        title="Install without synchronising (a plain install removes nothing)",
        command="poetry install",
    )


# ------------------------------------------------------------ for_package & co.


def test_isolate_poetry_injects_plugins_poetry_does_not_require() -> None:
    assert isolate_poetry(env()) == Remedy(
        title="Install Poetry in its own environment (pipx or the official installer)",
        command=(
            'pipx install "poetry==2.5.1" &&'
            " pipx inject poetry poetry-env-audit poetry-plugin-shell"
        ),
    )


@pytest.mark.parametrize(
    ("reason", "command"),
    [
        ("virtualenvs.create = false", "poetry config virtualenvs.create true --local"),
        ("VIRTUAL_ENV", "env -u VIRTUAL_ENV poetry install"),
        ("CONDA_PREFIX", "conda deactivate && poetry install"),
        ("in-project .venv", None),
        ("poetry self", None),
    ],
    ids=["system", "virtual-env", "conda", "in-project", "self"],
)
def test_use_a_venv(reason: str, command: str | None) -> None:
    remedy = use_a_venv(target(reason=reason))
    assert (remedy.command if remedy else None) == command


ISOLATE = "poetry self isolate"


@pytest.mark.parametrize(
    ("verdict", "reason", "commands"),
    [
        (
            Verdict.BREAKS,
            "virtualenvs.create = false",
            [
                ISOLATE,
                "poetry add 'packaging>=24.2'",
                "poetry config virtualenvs.create true --local",
                "pipx",
            ],
        ),
        (
            Verdict.BREAKS,
            "in-project .venv",
            [ISOLATE, "poetry add 'packaging>=24.2'", "pipx"],
        ),
        (
            Verdict.CHANGES,
            "VIRTUAL_ENV",
            [ISOLATE, "env -u VIRTUAL_ENV poetry install", "pipx"],
        ),
        (Verdict.CHANGES, "managed virtualenv", [ISOLATE, "pipx"]),
    ],
    ids=["breaks-system", "breaks-venv", "changes-virtual-env", "changes-managed"],
)
def test_for_package(verdict: Verdict, reason: str, commands: list[str]) -> None:
    remedies = for_package(finding(verdict=verdict), env(), target(reason=reason), [])
    got = [r.command or "" for r in remedies]
    assert [c if not c.startswith("pipx") else "pipx" for c in got] == commands
    assert remedies[0] == isolate_in_place(env(), target(reason=reason))
    assert remedies[-1] == isolate_poetry(env())


def test_for_package_without_isolation_keeps_the_old_order() -> None:
    pipx = poetry_env(
        [dist("poetry", "2.5.1", ["packaging>=24.2"]), dist("packaging", "25.0")],
        install=installation("pipx", isolated=True),
    )
    remedies = for_package(finding(), pipx, target(reason="VIRTUAL_ENV"), [])
    assert [r.command for r in remedies][:2] == [
        "poetry add 'packaging>=24.2'",
        "env -u VIRTUAL_ENV poetry install",
    ]


def test_for_package_passes_the_holders_to_align_lock() -> None:
    blocking = [Holder("my-project (pyproject.toml)", "<24", allows=False)]
    first, second = for_package(finding(), env(), target(), blocking)[:2]
    assert first.command == ISOLATE
    assert second.command is None
    assert "isolate Poetry instead" in second.title


def test_for_shared() -> None:
    assert for_shared(env(), target(reason="VIRTUAL_ENV")) == (
        Remedy(
            title=(
                "Move Poetry into its own virtualenv, same interpreter and versions,"
                " offline (the project still installs here)"
            ),
            command=ISOLATE,
        ),
        Remedy(
            title="Do not install into the virtualenv that holds Poetry",
            command="env -u VIRTUAL_ENV poetry install",
        ),
        isolate_poetry(env()),
    )
    assert for_shared(env(), target(reason="managed virtualenv")) == (
        isolate_in_place(env(), target()),
        isolate_poetry(env()),
    )


@pytest.mark.parametrize(
    ("kind", "shared", "marked", "offered"),
    [
        ("system", True, False, True),
        ("venv", True, False, True),
        ("user", True, False, True),
        ("conda", True, False, True),
        ("system", False, False, False),
        ("pipx", True, False, False),
        ("installer", True, False, False),
        ("venv", True, True, False),
    ],
    ids=[
        "system",
        "venv",
        "user",
        "conda",
        "not-shared",
        "pipx",
        "installer",
        "isolated-by-the-command",
    ],
)
def test_isolate_in_place_applies_when_shared_and_not_yet_isolated(
    tmp_path: Path, kind: str, shared: bool, marked: bool, offered: bool
) -> None:
    install = installation(kind, isolated=kind in ("pipx", "installer"))
    poetry = poetry_env(
        [dist("poetry", "2.5.1")],
        install=replace(install, self_isolated=marked),
        prefix=str(tmp_path),
    )
    remedy = isolate_in_place(poetry, target(shared=shared))
    assert (remedy.command if remedy else None) == (ISOLATE if offered else None)


@pytest.mark.parametrize(
    ("python", "package", "specifier", "command"),
    [
        (
            "/usr/bin/python3",
            "packaging",
            ">=24.2",
            "/usr/bin/python3 -m pip install 'packaging>=24.2'",
        ),
        (
            "/opt/my python/bin/python",
            "idna",
            "<4,>=2.5",
            "'/opt/my python/bin/python' -m pip install 'idna<4,>=2.5'",
        ),
        ("/usr/bin/python3", "dulwich", "", "/usr/bin/python3 -m pip install dulwich"),
    ],
    ids=["plain", "quoted", "no-specifier"],
)
def test_repair(python: str, package: str, specifier: str, command: str) -> None:
    poetry = poetry_env([dist("poetry", "2.5.1")], python=python)
    remedy = repair(poetry, package, specifier)
    assert remedy.title == "Repair Poetry's environment with pip"
    assert remedy.command == command
