from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from poetry_env_audit.findings import Finding
from poetry_env_audit.findings import Remedy
from poetry_env_audit.findings import Requirer
from poetry_env_audit.findings import Verdict
from poetry_env_audit.findings import evaluate
from poetry_env_audit.findings import with_policy
from poetry_env_audit.plan import Action
from poetry_env_audit.plan import PlannedChange
from poetry_env_audit.policy import PolicyAction
from unit.factories import change
from unit.factories import dist
from unit.factories import poetry_env
from unit.factories import target

if TYPE_CHECKING:
    from poetry_env_audit.poetry_env import DistInfo
    from poetry_env_audit.poetry_env import PoetryEnvironment

POETRY_DEPS = [
    dist("poetry", "2.5.1", ["packaging>=24.2", "poetry-core==2.5.0", "dulwich>=0.22"]),
    dist("packaging", "25.0"),
    dist("poetry-core", "2.5.0"),
    dist("dulwich", "0.22.8", ["urllib3>=1.25"]),
    dist("urllib3", "2.3.0"),
    dist("requests", "2.32.3"),  # installed, but Poetry does not need it here
]


def env() -> PoetryEnvironment:
    return poetry_env(POETRY_DEPS)


def verdicts(findings: tuple[Finding, ...]) -> list[tuple[str, Verdict]]:
    return [(f.package, f.verdict) for f in findings]


def test_downgrade_below_poetrys_specifier_breaks() -> None:
    (finding,) = evaluate(env(), target(), [change("packaging", "25.0", "23.2")])
    assert finding.verdict is Verdict.BREAKS
    assert finding.kind == "breaks"
    assert (finding.package, finding.current, finding.planned, finding.action) == (
        "packaging",
        "25.0",
        "23.2",
        Action.DOWNGRADE,
    )
    assert finding.required_by == (
        Requirer("poetry", "2.5.1", "packaging>=24.2", satisfied=False),
    )
    assert "poetry 2.5.1 requires packaging>=24.2" in finding.detail
    assert finding.detail == (
        "packaging would be downgraded (25.0 -> 23.2),"
        " but poetry 2.5.1 requires packaging>=24.2"
    )
    assert finding.policy is None
    assert finding.remedies == ()


@pytest.mark.parametrize(
    ("planned_change", "detail"),
    [
        (
            change("packaging", "25.0", "24.2"),
            "packaging would be downgraded (25.0 -> 24.2) in place;"
            " every requirement of Poetry still holds",
        ),
        (
            change("urllib3", "2.3.0", "2.4.0"),
            "urllib3 would be upgraded (2.3.0 -> 2.4.0) in place;"
            " every requirement of Poetry still holds",
        ),
        (
            change("poetry-core", "2.5.0", "2.5.0"),
            "poetry-core would be reinstalled (2.5.0) in place;"
            " every requirement of Poetry still holds",
        ),
    ],
    ids=["downgrade-within", "transitive-upgrade-within", "reinstall"],
)
def test_change_within_every_specifier_changes(
    planned_change: PlannedChange, detail: str
) -> None:
    (finding,) = evaluate(env(), target(), [planned_change])
    assert finding.verdict is Verdict.CHANGES
    assert all(r.satisfied for r in finding.required_by)
    assert finding.detail == detail


@pytest.mark.parametrize(
    ("name", "version", "requirer"),
    [
        ("packaging", "25.0", "poetry 2.5.1 requires packaging>=24.2"),
        ("urllib3", "2.3.0", "dulwich 0.22.8 requires urllib3>=1.25"),
    ],
    ids=["direct", "transitive"],
)
def test_removal_of_a_needed_dist_breaks(
    name: str, version: str, requirer: str
) -> None:
    (finding,) = evaluate(env(), target(), [change(name, version, None)])
    assert finding.verdict is Verdict.BREAKS
    assert finding.action is Action.REMOVE
    assert [r.satisfied for r in finding.required_by] == [False]
    assert finding.detail == f"{name} {version} would be removed ({requirer})"


def test_removal_of_poetry_itself_breaks() -> None:
    (finding,) = evaluate(env(), target(), [change("poetry", "2.5.1", None)])
    assert finding.verdict is Verdict.BREAKS
    assert finding.required_by == ()
    assert finding.detail == "poetry 2.5.1 would be removed (Poetry needs it)"


@pytest.mark.parametrize(
    "changes",
    [
        [change("requests", "2.32.3", "2.0.0")],
        [change("requests", "2.32.3", None)],
        [change("black", None, "24.1.0")],
        [change("black", None, "24.1.0", requires=["packaging>=22"])],
    ],
    ids=["downgrade", "remove", "new-install", "new-install-with-deps"],
)
def test_package_poetry_does_not_need_has_no_finding(
    changes: list[PlannedChange],
) -> None:
    assert evaluate(env(), target(), changes) == ()


@pytest.mark.parametrize(
    "changes",
    [
        [],
        [change("packaging", "25.0", "20.0")],
        [change("packaging", "25.0", None)],
        [change("poetry", "2.5.1", "1.0.0")],
        [change("packaging", "25.0", "24.2"), change("urllib3", "2.3.0", None)],
    ],
    ids=["nothing", "breaking-downgrade", "removal", "poetry-itself", "several"],
)
def test_target_not_shared_has_no_findings(changes: list[PlannedChange]) -> None:
    assert evaluate(env(), target(shared=False), changes) == ()


def test_change_outside_the_shared_dirs_has_no_finding() -> None:
    poetry = poetry_env(
        [
            dist("poetry", "2.5.1", ["packaging>=24.2"], location="/poetry-site"),
            dist("packaging", "25.0", location="/poetry-site"),
        ],
        import_paths=("/poetry-site", "/site"),
    )
    assert evaluate(poetry, target(), [change("packaging", "25.0", "20.0")]) == ()


@pytest.mark.parametrize(
    ("import_paths", "expected"),
    [
        (("/site", "/system-site"), [("packaging", Verdict.BREAKS)]),
        (("/system-site", "/site"), []),
        (("/other", "/site", "/system-site", "/site"), [("packaging", Verdict.BREAKS)]),
    ],
    ids=[
        "shared-dir-first-shadows",
        "poetrys-copy-first-wins",
        "first-occurrence-counts",
    ],
)
def test_install_shadowing_a_dist_later_on_poetrys_path(
    import_paths: tuple[str, ...], expected: list[tuple[str, Verdict]]
) -> None:
    # Regression: only dists located in a shared dir counted, so a copy written
    # to a shared dir earlier on Poetry's path than Poetry's own went unseen.
    poetry = poetry_env(
        [
            dist("poetry", "2.5.1", ["packaging>=24.2"]),
            dist("packaging", "25.0", location="/system-site"),
        ],
        import_paths=import_paths,
    )
    findings = evaluate(poetry, target(), [change("packaging", "25.0", "21.0")])
    assert verdicts(findings) == expected


def test_plugin_requirement_violated_breaks_attributed_to_the_plugin() -> None:
    # Listed before POETRY_DEPS: the first packaging of the search path wins.
    poetry = poetry_env(
        [
            dist("poetry-plugin-x", "1.2.0", ["packaging>=24.2,<25"], plugin=True),
            dist("packaging", "24.2"),
            *POETRY_DEPS,
        ]
    )
    assert poetry.plugins == ("poetry-plugin-x",)
    assert poetry.problems == ()
    (finding,) = evaluate(poetry, target(), [change("packaging", "24.2", "25.0")])
    assert finding.verdict is Verdict.BREAKS
    assert finding.required_by == (
        Requirer("poetry", "2.5.1", "packaging>=24.2", satisfied=True),
        Requirer("poetry-plugin-x", "1.2.0", "packaging<25,>=24.2", satisfied=False),
    )
    assert finding.detail.endswith(
        "but poetry-plugin-x 1.2.0 requires packaging<25,>=24.2"
    )
    assert "poetry 2.5.1" not in finding.detail


def test_requirers_are_listed_poetry_first() -> None:
    poetry = poetry_env(
        [
            dist("poetry", "2.5.1", ["aardvark", "packaging>=24.2"]),
            dist("aardvark", "1.0", ["packaging>=25"]),
            dist("packaging", "25.0"),
        ]
    )
    (finding,) = evaluate(poetry, target(), [change("packaging", "25.0", "20.0")])
    assert [r.package for r in finding.required_by] == ["poetry", "aardvark"]
    assert finding.detail.endswith(
        "but poetry 2.5.1 requires packaging>=24.2; aardvark 1.0 requires packaging>=25"
    )


@pytest.mark.parametrize(
    ("requires", "verdict", "detail_end"),
    [
        (
            ["packaging>=26", "poetry-core==2.5.0", "dulwich>=0.22"],
            Verdict.BREAKS,
            "but then poetry 2.6.0 requires packaging>=26,"
            " but packaging 25.0 is installed",
        ),
        (
            ["packaging>=24.2", "poetry-core==2.5.0", "dulwich>=0.22", "pbs-installer"],
            Verdict.BREAKS,
            "but then poetry 2.6.0 requires pbs-installer, which is not installed",
        ),
        (
            ["packaging>=24.2", "poetry-core>=2.5", "dulwich>=0.22"],
            Verdict.CHANGES,
            "in place; every requirement of Poetry still holds",
        ),
        (
            [],
            Verdict.CHANGES,
            "in place; every requirement of Poetry still holds",
        ),
    ],
    ids=[
        "unmet-specifier",
        "new-dependency-missing",
        "requirements-met",
        "no-requires",
    ],
)
def test_upgrade_of_poetry_itself_checks_its_new_requirements(
    requires: list[str], verdict: Verdict, detail_end: str
) -> None:
    (finding,) = evaluate(
        env(), target(), [change("poetry", "2.5.1", "2.6.0", requires=requires)]
    )
    assert finding.verdict is verdict
    assert finding.required_by == ()
    assert finding.detail.endswith(detail_end)


def test_new_dependency_installed_by_the_same_plan_is_fine() -> None:
    findings = evaluate(
        env(),
        target(),
        [
            change(
                "poetry",
                "2.5.1",
                "2.6.0",
                requires=["packaging>=24.2", "pbs-installer>=2"],
            ),
            change("pbs-installer", None, "2025.1"),
        ],
    )
    assert verdicts(findings) == [
        ("poetry", Verdict.CHANGES),
        ("pbs-installer", Verdict.CHANGES),
    ]
    assert findings[1].required_by == (
        Requirer("poetry", "2.6.0", "pbs-installer>=2", satisfied=True),
    )


def test_relaxed_requirement_in_the_same_plan_allows_the_downgrade() -> None:
    findings = evaluate(
        env(),
        target(),
        [
            change("poetry", "2.5.1", "2.6.0", requires=["packaging>=23"]),
            change("packaging", "25.0", "23.2"),
        ],
    )
    assert verdicts(findings) == [
        ("poetry", Verdict.CHANGES),
        ("packaging", Verdict.CHANGES),
    ]


def test_requirement_dropped_by_the_same_plan_does_not_break() -> None:
    # Regression: requirers of a package the plan makes unneeded were taken from
    # before the plan, so y 1.0's x<2 "broke" although y 2.0 does not need x.
    poetry = poetry_env(
        [dist("poetry", "2.5.1", ["y"]), dist("y", "1.0", ["x<2"]), dist("x", "1.5")]
    )
    findings = evaluate(
        poetry, target(), [change("y", "1.0", "2.0"), change("x", "1.5", "3.0")]
    )
    assert verdicts(findings) == [("y", Verdict.CHANGES), ("x", Verdict.CHANGES)]
    assert findings[1].required_by == ()


@pytest.mark.parametrize(
    ("dists", "planned_change", "expected"),
    [
        (
            POETRY_DEPS,
            change("shellingham", None, "1.5.4"),
            [],
        ),
        (
            [dist("poetry", "2.5.1", ["shellingham>=1.5"])],
            change("shellingham", None, "1.5.4"),
            [("shellingham", Verdict.CHANGES)],
        ),
        (
            [dist("poetry", "2.5.1", ["shellingham>=1.5"])],
            change("shellingham", None, "1.4.0"),
            [("shellingham", Verdict.BREAKS)],
        ),
    ],
    ids=["not-needed", "needed-and-missing-now-met", "needed-but-too-old"],
)
def test_install_of_a_new_dist(
    dists: list[DistInfo],
    planned_change: PlannedChange,
    expected: list[tuple[str, Verdict]],
) -> None:
    findings = evaluate(poetry_env(dists), target(), [planned_change])
    assert verdicts(findings) == expected


def test_existing_problem_is_not_blamed_on_an_unrelated_change() -> None:
    poetry = poetry_env(
        [
            dist("poetry", "2.5.1", ["packaging>=24.2", "requests>=2.26"]),
            dist("packaging", "25.0"),
            dist("requests", "2.32.3", ["idna>=2.5"]),  # idna is missing already
        ]
    )
    assert len(poetry.problems) == 1
    findings = evaluate(
        poetry,
        target(),
        [
            change("packaging", "25.0", "25.1"),
            change("requests", "2.32.3", "2.32.3", requires=["idna>=2.5"]),
        ],
    )
    assert verdicts(findings) == [
        ("packaging", Verdict.CHANGES),
        ("requests", Verdict.CHANGES),
    ]


def test_finding_keeps_poetrys_display_name() -> None:
    poetry = poetry_env(
        [dist("poetry", "2.5.1", ["pyyaml>=6"]), dist("PyYAML", "6.0.2")]
    )
    (finding,) = evaluate(poetry, target(), [change("pyyaml", "6.0.2", "5.4")])
    assert finding.package == "PyYAML"
    assert finding.verdict is Verdict.BREAKS


def test_with_policy_sets_policy_and_remedies() -> None:
    (finding,) = evaluate(env(), target(), [change("packaging", "25.0", "23.2")])
    remedy = Remedy("Do this", "poetry add packaging")
    judged = with_policy(finding, PolicyAction.BLOCK, [remedy])
    assert judged.policy is PolicyAction.BLOCK
    assert judged.remedies == (remedy,)
    assert judged.detail == finding.detail
    assert str(Verdict.BREAKS) == "breaks"


@pytest.mark.parametrize(
    ("planned", "action"),
    [(None, Action.REMOVE), ("2.2.0", Action.DOWNGRADE)],
    ids=["removal", "downgrade"],
)
def test_current_is_the_installed_version_not_the_plans(
    planned: str | None, action: Action
) -> None:
    """Poetry 1.8 names the lock's version in removals of unrequested extras;
    what the user has installed is what the report must say."""
    stale = change("urllib3", "2.1.0", planned, action=action)
    (finding,) = evaluate(env(), target(), [stale])
    assert finding.current == "2.3.0"
    assert "2.1.0" not in finding.detail
    assert "2.3.0" in finding.detail


def test_a_planned_versions_new_requirement_is_judged() -> None:
    """A planned dulwich that needs a newer urllib3 than the one installed breaks."""
    planned = change("dulwich", "0.22.8", "0.23.0", requires=["urllib3>=2.4"])
    (finding,) = evaluate(env(), target(), [planned])
    assert finding.verdict is Verdict.BREAKS
    assert "urllib3" in finding.detail


# ------------------------------------------------------- unverified (issue 11)

DEEP = "packaging>=1; " + "(" * 1200 + 'os_name == "posix"' + ")" * 1200


def _with_deep_plugin() -> PoetryEnvironment:
    return poetry_env(
        [
            dist("poetry", "2.5.1", ["packaging>=24.2"]),
            dist("packaging", "26.4"),
            dist("adv-plugin", "1.0", [DEEP], plugin=True),
        ]
    )


def test_change_with_an_unreadable_requirement_on_it_is_unverified() -> None:
    (finding,) = evaluate(
        _with_deep_plugin(), target(), [change("packaging", "26.4", "25.0")]
    )
    assert finding.verdict is Verdict.UNVERIFIED
    assert finding.kind == "unverified"
    assert "adv-plugin 1.0 requires packaging>=1; (((" in finding.detail
    assert "POETRY_ENV_AUDIT_UNVERIFIED=warn" in finding.detail
    assert len(finding.detail) < 400


def test_breaks_wins_over_unverified() -> None:
    (finding,) = evaluate(
        _with_deep_plugin(), target(), [change("packaging", "26.4", "23.0")]
    )
    assert finding.verdict is Verdict.BREAKS


def test_unreadable_requirement_leaves_other_packages_alone() -> None:
    assert (
        evaluate(_with_deep_plugin(), target(), [change("leftpad", None, "1.0")]) == ()
    )


def test_unreadable_requirement_of_a_package_poetry_does_not_need_yet() -> None:
    poetry = poetry_env(
        [
            dist("poetry", "2.5.1"),
            dist(
                "adv-plugin", "1.0", [DEEP.replace("packaging", "leftpad")], plugin=True
            ),
        ]
    )
    (finding,) = evaluate(poetry, target(), [change("leftpad", None, "1.0")])
    assert finding.verdict is Verdict.UNVERIFIED


def test_unverified_policy_defaults_to_block() -> None:
    from poetry_env_audit.audit import assess
    from poetry_env_audit.policy import load_policy
    from poetry_env_audit.report import RunVerdict

    report = assess(
        poetry=_with_deep_plugin(),
        target=target(),
        changes=[change("packaging", "26.4", "25.0")],
        policy=load_policy(None, {}),
    )
    assert report.verdict is RunVerdict.BLOCK
    warned = assess(
        poetry=_with_deep_plugin(),
        target=target(),
        changes=[change("packaging", "26.4", "25.0")],
        policy=load_policy(None, {"POETRY_ENV_AUDIT_UNVERIFIED": "warn"}),
    )
    assert warned.verdict is RunVerdict.WARN


def test_a_planned_requirement_without_pep_508_form_is_unverified_not_dropped() -> None:
    """Poetry can write a union PEP 440 cannot spell (a real gap): the change
    it constrains cannot be checked, and says so."""
    planned = PlannedChange(
        name="dulwich",
        display_name="dulwich",
        action=Action.UPGRADE,
        current="0.22.8",
        planned="0.23.0",
        requires=(),
        unreadable=("urllib3 (>=1.25,<2 || >=2.3)",),
    )
    findings = evaluate(env(), target(), [planned, change("urllib3", "2.3.0", "2.2.0")])
    urllib3 = next(f for f in findings if f.package == "urllib3")
    assert urllib3.verdict is Verdict.UNVERIFIED
    assert "urllib3 (>=1.25,<2 || >=2.3)" in urllib3.detail
