from __future__ import annotations

import json
from typing import TYPE_CHECKING
from typing import Any
from typing import cast

import pytest

from poetry_env_audit.audit import assess
from poetry_env_audit.policy import default_policy
from poetry_env_audit.render.json import SCHEMA_VERSION
from poetry_env_audit.render.json import render
from poetry_env_audit.render.json import to_dict
from poetry_env_audit.target import TargetEnvironment
from poetry_env_audit.target import TargetKind
from poetry_env_audit.target import TargetReason
from unit.factories import change
from unit.factories import dist
from unit.factories import installation
from unit.factories import poetry_env
from unit.factories import target

if TYPE_CHECKING:
    from poetry_env_audit.report import Report

POETRY = poetry_env(
    [
        dist("poetry", "2.5.1", ["packaging>=24.2", "dulwich>=0.22"]),
        dist("poetry-plugin-x", "1.0", ["packaging<25"], plugin=True),
        dist("packaging", "24.2"),
        dist("dulwich", "0.22.8"),
    ],
    python="/usr/bin/python3",
    prefix="/usr",
)


def report_for(tgt: TargetEnvironment, *changes_: str) -> Report:
    changes = {
        "breaks": change("packaging", "24.2", "23.2"),
        "changes": change("dulwich", "0.22.8", "0.22.9"),
    }
    return assess(
        poetry=POETRY,
        target=tgt,
        changes=[changes[c] for c in changes_],
        policy=default_policy(),
        project="/work/project",
    )


def parsed(report: Report) -> dict[str, Any]:
    data = json.loads(render(report))
    assert isinstance(data, dict)
    return data


def test_documented_keys() -> None:
    data = parsed(report_for(target(), "breaks", "changes"))
    assert data["schema"] == SCHEMA_VERSION
    assert data["project"] == "/work/project"
    assert {k: data["poetry"][k] for k in ("version", "python", "prefix")} == {
        "version": "2.5.1",
        "python": "/usr/bin/python3",
        "prefix": "/usr",
    }
    assert {k: data["target"][k] for k in ("path", "shared")} == {
        "path": "/usr",
        "shared": True,
    }
    first = data["findings"][0]
    assert {
        k: first[k] for k in ("package", "current", "planned", "action", "verdict")
    } == {
        "package": "packaging",
        "current": "24.2",
        "planned": "23.2",
        "action": "downgrade",
        "verdict": "breaks",
    }
    assert [(r["package"], r["requirement"]) for r in first["required_by"]] == [
        ("poetry", "packaging>=24.2"),
        ("poetry-plugin-x", "packaging<25"),
    ]
    assert [r["satisfied"] for r in first["required_by"]] == [False, True]
    assert first["policy"] == "block"
    assert first["message"].endswith("but poetry 2.5.1 requires packaging>=24.2")
    assert first["remedies"][0]["command"] == "poetry self isolate"
    assert first["remedies"][1] == {
        "title": "Align the lock with Poetry's requirement (packaging>=24.2,<25)",
        "command": "poetry add 'packaging>=24.2,<25'",
    }
    assert data["findings"][1]["verdict"] == "changes"
    assert data["verdict"] == "block"
    assert data["exit_code"] == 1


def test_full_shape() -> None:
    data = parsed(report_for(target(), "changes"))
    assert list(data) == [
        "schema",
        "project",
        "poetry",
        "target",
        "sync",
        "findings",
        "environment",
        "wheels",
        "verdict",
        "exit_code",
        "assumed_shared",
        "assumed",
    ]
    assert data["wheels"] == {"checked": 0, "unchecked": 0}
    assert data["poetry"]["plugins"] == ["poetry-plugin-x"]
    assert data["poetry"]["installation"] == "system"
    assert data["poetry"]["isolated"] is False
    assert data["poetry"]["vendored"] == []
    needs = {n["package"]: n for n in data["poetry"]["needs"]}
    assert sorted(needs) == ["dulwich", "packaging", "poetry", "poetry-plugin-x"]
    assert needs["packaging"]["version"] == "24.2"
    assert needs["packaging"]["location"] == "/site"
    assert needs["packaging"]["required_by"][0] == {
        "package": "poetry",
        "version": "2.5.1",
        "requirement": "packaging>=24.2",
    }
    assert data["target"] == {
        "path": "/usr",
        "python": "/usr/bin/python3",
        "kind": "system",
        "reason": "virtualenvs.create = false",
        "shared": True,
        "shared_paths": ["/site"],
        "externally_managed": False,
    }
    (shared,) = data["environment"]
    assert shared["kind"] == "shared"
    assert shared["policy"] == "warn"
    assert [r["command"] for r in shared["remedies"]][:2] == [
        "poetry self isolate",
        "poetry config virtualenvs.create true --local",
    ]
    assert (data["verdict"], data["exit_code"]) == ("serialise", 0)


@pytest.mark.parametrize(
    ("isolated", "tgt", "expected"),
    [
        (True, target(shared=False), True),
        (True, target(), False),
        (False, target(shared=False), False),
    ],
    ids=["isolated", "isolated-but-shared-target", "not-isolated"],
)
def test_isolated_flag(isolated: bool, tgt: TargetEnvironment, expected: bool) -> None:
    env = poetry_env(
        [dist("poetry", "2.5.1")],
        install=installation("pipx" if isolated else "system", isolated=isolated),
    )
    report = assess(poetry=env, target=tgt, changes=[], policy=default_policy())
    assert parsed(report)["poetry"]["isolated"] is expected


def test_isolated_report() -> None:
    env = poetry_env(
        [dist("poetry", "2.5.1")], install=installation("pipx", isolated=True)
    )
    report = assess(
        poetry=env,
        target=target(shared=False, externally_managed=None),
        changes=[change("packaging", "24.2", "23.2")],
        policy=default_policy(),
    )
    data = parsed(report)
    assert data["findings"] == []
    assert data["environment"] == []
    assert (data["verdict"], data["exit_code"]) == ("ok", 0)
    assert data["target"]["shared"] is False
    assert data["target"]["shared_paths"] == []


def test_externally_managed_and_missing_version() -> None:
    env = poetry_env([dist("poetry", "2.5.1", ["packaging>=24.2"])])
    data = parsed(
        assess(
            poetry=env,
            target=target(externally_managed="Use apt."),
            changes=[],
            policy=default_policy(),
        )
    )
    assert data["target"]["externally_managed"] is True
    assert [e["kind"] for e in data["environment"]] == [
        "shared",
        "externally-managed",
        "inconsistent",
    ]
    needs = {n["package"]: n for n in data["poetry"]["needs"]}
    assert needs["packaging"]["version"] is None
    assert needs["packaging"]["location"] is None


@pytest.mark.parametrize(
    "text",
    [
        '"quoted"',
        "back\\slash",
        "new\nline",
        "<error>",
        "\u00e9\u4e2d\U0001f600",
        "\x00",
    ],
    ids=["quote", "backslash", "newline", "markup", "unicode", "nul"],
)
def test_hostile_strings_round_trip(text: str) -> None:
    tgt = TargetEnvironment(
        path=f"/srv/{text}",
        python=None,
        kind=TargetKind.SYSTEM,
        reason=cast("TargetReason", text),  # hostile text, never a real reason
        site_dirs=("/site",),
        shared_dirs=("/site",),
    )
    data = parsed(report_for(tgt, "breaks"))
    assert data["target"]["path"] == f"/srv/{text}"
    assert data["target"]["reason"] == text
    assert data["target"]["python"] is None
    assert "\n" not in render(report_for(tgt)).split('"path": ', 1)[1].split(",")[0]


def test_render_is_to_dict_as_json() -> None:
    report = report_for(target(), "breaks", "changes")
    assert json.loads(render(report)) == to_dict(report)
    assert render(report).startswith('{\n  "schema": 1,')
