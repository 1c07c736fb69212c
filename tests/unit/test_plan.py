from __future__ import annotations

import pytest

from poetry_env_audit.plan import Action
from poetry_env_audit.plan import PlannedChange
from poetry_env_audit.plan import classify


@pytest.mark.parametrize(
    ("job_type", "current", "planned", "expected"),
    [
        ("install", None, "1.0", Action.INSTALL),
        ("install", "1.0", "2.0", Action.INSTALL),
        ("update", None, "1.0", Action.INSTALL),
        ("update", "1.0", "2.0", Action.UPGRADE),
        ("update", "1.9", "1.10", Action.UPGRADE),
        ("update", "2.0", "1.0", Action.DOWNGRADE),
        ("update", "25.0", "24.2", Action.DOWNGRADE),
        ("update", "1.0", "1.0", Action.REINSTALL),
        ("update", "1.0", "1.0.0", Action.REINSTALL),
        ("update", "1.0", "1.0+local", Action.UPGRADE),
        ("update", "1.0", None, Action.REINSTALL),
        ("update", "2.0rc1", "2.0", Action.UPGRADE),
        ("update", "2.0", "2.0rc1", Action.DOWNGRADE),
        ("update", "1.0.post1", "1.0", Action.DOWNGRADE),
        ("update", "1!1.0", "2.0", Action.DOWNGRADE),
        ("uninstall", "1.0", None, Action.REMOVE),
        ("uninstall", None, None, Action.REMOVE),
        ("update", "abc", "abd", Action.UPGRADE),
        ("update", "abd", "abc", Action.DOWNGRADE),
        ("update", "custom", "custom", Action.REINSTALL),
        ("update", "1.0", "custom", Action.UPGRADE),
        ("update", "1.9-custom", "1.10-custom", Action.UPGRADE),
        ("update", "1.10-custom", "1.9-custom", Action.DOWNGRADE),
        ("update", "2024.1-abc", "2024.1-abd", Action.UPGRADE),
    ],
    ids=[
        "install",
        "install-over-existing",
        "update-of-nothing",
        "upgrade",
        "upgrade-numeric-not-lexical",
        "downgrade",
        "downgrade-below-poetry",
        "reinstall-same-text",
        "reinstall-equal-versions",
        "local-version-is-newer",
        "reinstall-without-planned",
        "prerelease-to-final",
        "final-to-prerelease",
        "post-to-final",
        "epoch-counts",
        "remove",
        "remove-unknown-version",
        "non-pep440-up",
        "non-pep440-down",
        "non-pep440-same",
        "mixed-pep440",
        "non-pep440-numbers-compare-as-numbers",
        "non-pep440-numbers-compare-as-numbers-down",
        "non-pep440-same-numbers",
    ],
)
def test_classify(
    job_type: str, current: str | None, planned: str | None, expected: Action
) -> None:
    assert classify(job_type, current, planned) is expected


@pytest.mark.parametrize(
    ("current", "planned"),
    [("1.0", "2.0"), ("1.0", None), (None, "1.0"), (None, None)],
    ids=["with-versions", "without-planned", "without-current", "without-versions"],
)
def test_unknown_job_type_is_an_error(current: str | None, planned: str | None) -> None:
    with pytest.raises(ValueError, match="unknown operation type 'bogus'"):
        classify("bogus", current, planned)


def test_action_prints_as_its_value() -> None:
    assert [str(a) for a in Action] == [
        "install",
        "upgrade",
        "downgrade",
        "reinstall",
        "remove",
        "overwrite",
    ]


@pytest.mark.parametrize(
    ("constraint", "specifier", "allows"),
    [
        (">=24", "===26.4", True),
        ("<25", "===26.4", False),
        ("<25", ">=24.2,===26.4", False),
        (">=24", ">=24.2", True),
        ("<24", ">=24.2", False),
        ("*", "===not-a-version", True),
        (">=1", "", True),
    ],
)
def test_constraint_allows_every_pep440_operator(
    constraint: str, specifier: str, allows: bool
) -> None:
    from poetry.core.constraints.version import parse_constraint

    from poetry_env_audit.seams.plan import constraint_allows

    assert constraint_allows(parse_constraint(constraint), specifier) is allows


def _planned(name: str, action: Action = Action.DOWNGRADE) -> PlannedChange:
    return PlannedChange(
        name, name, action, "2.0", None if action is Action.REMOVE else "1.0"
    )


@pytest.mark.parametrize(
    ("changes", "lock", "wanted"),
    [
        # poetry -> a (installed) -> b (planned): b counts, c (unrelated) not
        (["b", "c"], {}, {"b"}),
        # a planned version's new requirement reaches another planned package
        (["b", "d"], {"b": ["d>=1"]}, {"b", "d"}),
        # through an extra or a marker: still followed (a superset)
        (["b", "d"], {"b": ['d ; extra == "x"']}, {"b", "d"}),
        # a planned version reaches an installed package that reaches a planned one
        (["b", "d"], {"b": ["c"]}, {"b", "d"}),
        (["poetry", "b"], {"poetry": []}, {"poetry"}),
    ],
    ids=[
        "installed-path",
        "new-requirement",
        "extra",
        "planned-chain",
        "poetry-planned",
    ],
)
def test_only_changes_that_can_reach_poetrys_closure_need_requirements(
    changes: list[str], lock: dict[str, list[str]], wanted: set[str]
) -> None:
    from poetry_env_audit.plan import reach_from

    installed = {"poetry": ["a>=1", "poetry-core"], "a": ["b<3"], "c": ["d"]}
    read: list[str] = []

    def requirements(name: str) -> list[str]:
        read.append(name)
        return lock.get(name, [])

    reach = reach_from(["poetry"], installed)
    assert reach([_planned(n) for n in changes], requirements) == wanted
    assert set(read) == wanted


def test_a_removed_package_is_not_followed() -> None:
    from poetry_env_audit.plan import reach_from

    reach = reach_from(["poetry"], {"poetry": ["a"], "a": ["b"]})
    got = reach([_planned("a", Action.REMOVE), _planned("b")], lambda name: [])
    assert got == set()
