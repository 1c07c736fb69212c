from __future__ import annotations

# `poetry env-audit` on real-world-shaped projects (fixtures/realworld/, see
# tests/harness/realworld.py), in a system-like interpreter where Poetry
# shares the target, against an independent evaluation (_independent.py:
# packaging and the standard library only) of Poetry's closure read from the
# installed metadata, Poetry's own `--no-plugins` dry-run plan and the
# requirements the lock records for each planned version. Compared package
# by package: verdict, versions, action and `required_by`.
#
# env-audit and dry runs change nothing: the module shares one clone and
# one copy of each project; the committed locks are planned from, never
# installed, so they need no index (the git project is locked here, against
# a small index of its pins).
import json
from collections import Counter
from typing import TYPE_CHECKING

import pytest
from packaging.utils import canonicalize_name

from harness.index import build_simple_index
from harness.index import serve
from harness.poetry import describe
from harness.poetry import run_poetry
from harness.poetry import run_python
from harness.poetry import sync_args
from harness.projects import lock_project
from harness.realworld import copy_project
from harness.realworld import ensure_git_wheels
from harness.realworld import git_project
from harness.realworld import make_git_repository
from integration import _independent as independent
from integration._audit import ClonePool
from integration._audit import run_audit

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from harness.interpreters import Interpreter
    from harness.session import TemplateStore

# (project, lock format, env-audit options = install options, sync)
CASES = [
    ("webapp", "2.1", (), False),
    ("webapp", "2.0", (), False),
    ("cli", "2.1", (), True),
    ("poetry-plugin", "2.1", (), False),
    ("poetry-plugin", "2.0", (), False),
    ("extras", "2.1", (), False),
    ("extras", "2.0", ("--all-extras",), False),
    ("markers", "2.1", (), False),
    ("markers", "2.0", (), False),
    ("git", "", (), False),
]
# Everything the cases found on this leg, for the mix check at the end.
SEEN: list[independent.Expected] = []
NEW_REQUIREMENTS: list[str] = []
RAN: list[bool] = []


@pytest.fixture(scope="module")
def interp(
    templates: TemplateStore, poetry_version: str, scratch: Path
) -> Iterator[Interpreter]:
    clones = ClonePool(templates, poetry_version, scratch)
    yield clones.get("system")
    clones.close()


@pytest.fixture(scope="module")
def marker_env(interp: Interpreter) -> dict[str, str]:
    probe = run_python(interp, ["-c", independent.MARKER_ENV_PROBE], cwd=interp.prefix)
    assert probe.returncode == 0, describe(probe)
    env: dict[str, str] = json.loads(probe.stdout)
    return env


@pytest.fixture(scope="module")
def git_locked(
    interp: Interpreter,
    tmp_path_factory: pytest.TempPathFactory,
    download_python: str,
    harness_cache: Path,
) -> Path:
    """The git project, locked by this leg's Poetry (its own lock format)
    against a small index of its pins, its dependency a repository made here."""
    root = tmp_path_factory.mktemp("realworld-git")
    wheels = ensure_git_wheels(python=download_python, cache_root=harness_cache)
    build_simple_index([wheels], root / "index")
    repository = make_git_repository(interp, root / "gitdep")
    with serve(root / "index") as server:
        project = git_project(
            root / "git", index_url=server.url, repository_url=repository
        )
        # Its digest names this run's repository path: a lock cache of its own.
        lock_project(interp, project, index_url=server.url, cache_root=root)
    return project


def project_for(
    name: str, lock_format: str, root: Path, request: pytest.FixtureRequest
) -> Path:
    if name == "git":
        path: Path = request.getfixturevalue("git_locked")
        return path
    return copy_project(name, root / f"{name}-{lock_format}", lock_format)


@pytest.mark.smoke
@pytest.mark.parametrize(
    ("name", "lock_format", "options", "sync"),
    [
        pytest.param(
            *case, id=f"{case[0]}-{case[1] or 'own'}{'-sync' if case[3] else ''}"
        )
        for case in CASES
    ],
)
def test_findings_equal_an_independent_evaluation(
    name: str,
    lock_format: str,
    options: tuple[str, ...],
    sync: bool,
    interp: Interpreter,
    marker_env: dict[str, str],
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    project = project_for(name, lock_format, tmp_path, request)
    lock = (project / "poetry.lock").read_text(encoding="utf-8")
    assert f'lock-version = "{lock_format or own_format(interp)}"' in lock
    audit = run_audit(
        interp, project, *(["--sync"] if sync else []), *options, "--format", "json"
    )
    assert audit.code in (0, 1), audit.describe()
    report = audit.report()

    command = sync_args(interp) if sync else ["install"]
    dry = run_poetry(
        interp, ["--no-plugins", *command, *options, "--dry-run"], cwd=project
    )
    assert dry.returncode == 0, describe(dry)
    plan = independent.parse_dry_run(dry.stdout)
    assert plan, describe(dry)

    dists = independent.installed(interp.site_packages())
    requires = independent.lock_requirements(project / "poetry.lock")
    expected = independent.evaluate(dists, plan, requires, marker_env)

    # Poetry's closure: the same distributions on both sides.
    roots = ["poetry", *(d.name for d in dists.values() if d.plugin)]
    before = independent.closure(dists, roots, marker_env)
    needs = {n["package"] for n in report["poetry"]["needs"]}
    assert {canonicalize_name(n) for n in needs} == {
        n for n in before.needed if n in dists
    }

    found = independent.reported(report)
    assert sorted(found) == sorted(expected), (
        f"packages differ: only env-audit {sorted(set(found) - set(expected))},"
        f" only the evaluation {sorted(set(expected) - set(found))}"
    )
    for package in expected:
        assert found[package] == expected[package], package
    SEEN.extend(expected.values())
    RAN.append(True)
    planned = {c.name for c in plan if c.action != "remove"}
    NEW_REQUIREMENTS.extend(
        f"{row[0]} {row[1]} requires {row[2]}"
        for e in expected.values()
        for row in e.required_by
        if row[0] in planned
        and all(edge.requirer != row[0] for edge in before.into(e.package))
    )


def own_format(interp: Interpreter) -> str:
    """The lock format this leg's Poetry writes."""
    return "2.0" if interp.poetry_major < 2 else "2.1"


@pytest.mark.smoke
def test_the_comparison_saw_every_kind_of_finding() -> None:
    """Not vacuous: on every leg the cases above produced breaks and changes,
    removals, and a requirement that only a planned version has."""
    if RAN.count(True) < len(CASES):
        pytest.skip("not every comparison case ran (deselected, or failed above)")
    verdicts = Counter(e.verdict for e in SEEN)
    actions = Counter(e.action for e in SEEN)
    assert verdicts["breaks"] and verdicts["changes"], verdicts
    assert actions["remove"], actions
    assert NEW_REQUIREMENTS, "no planned version brought a new requirement"
