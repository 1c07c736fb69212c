from __future__ import annotations

# `poetry env-audit` end to end: real Poetry with the plugin in throwaway
# interpreters, fixture projects locked against the local index.
#
# env-audit changes nothing, so the read-only checks share one clone per kind
# for the whole module (``pool``) and one locked copy of each fixture per kind
# (``locked``); the checks that install something (a fake plugin) or create
# something (an in-project venv) get their own.
#
# Kinds (see tests/harness/README.md): "system" runs with the global config
# ``virtualenvs.create = false`` the harness writes for system clones (so no
# per-project ``poetry config --local`` is needed); "venv" runs with
# ``VIRTUAL_ENV`` set to Poetry's own venv; "isolated" is Poetry in its own
# venv whose projects would get a new in-project ``.venv``.
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from harness.fakes import build_plugin_wheel
from harness.interpreters import pip_install
from harness.poetry import describe
from harness.poetry import run_poetry
from harness.poetry import run_python
from harness.poetry import sync_args
from harness.session import Projects
from harness.snapshot import installed_versions
from harness.snapshot import snapshot_diff
from harness.snapshot import snapshot_site_packages
from integration._audit import ACTIVATION_PROBE
from integration._audit import AT_EXIT_PROBE
from integration._audit import ClonePool
from integration._audit import ProjectPool
from integration._audit import closed_port
from integration._audit import findings_for
from integration._audit import normalise
from integration._audit import offline_env
from integration._audit import requirers
from integration._audit import run_audit
from integration._audit import snapshot_tree
from integration._audit import the_finding
from integration._audit import tree_diff

if TYPE_CHECKING:
    from collections.abc import Iterator

    from harness.interpreters import Interpreter
    from harness.interpreters import Kind
    from harness.session import TemplateStore
    from integration._audit import Report

# Why Poetry picks the target, per shared kind (README: target.reason).
SHARED_REASON = {"system": "virtualenvs.create = false", "venv": "VIRTUAL_ENV"}
SHARED_KINDS = [
    pytest.param("system", marks=pytest.mark.smoke, id="system"),
    pytest.param("venv", id="venv"),
]
# Modules `poetry --version` must not import because the plugin is installed:
# the engine is loaded only when an audit or a guarded install runs.
HEAVY_MODULES = (
    "poetry_env_audit.audit",
    "poetry_env_audit.seams",
    "poetry_env_audit.command",
    "poetry_env_audit.guard",
)
HEAVY_PACKAGES = ("poetry.installation",)


# --- fixtures ------------------------------------------------------------------


@pytest.fixture(scope="module")
def pool(
    templates: TemplateStore, poetry_version: str, scratch: Path
) -> Iterator[ClonePool]:
    """One clone per kind for the read-only checks of this module."""
    clones = ClonePool(templates, poetry_version, scratch)
    yield clones
    clones.close()


@pytest.fixture(scope="module")
def locked(
    tmp_path_factory: pytest.TempPathFactory,
    local_index: str,
    harness_cache: Path,
    poetry_version: str,
) -> ProjectPool:
    """Locked fixture projects shared by the read-only checks of this module."""
    root = tmp_path_factory.mktemp(f"env-audit-poetry{poetry_version}")
    return ProjectPool(
        Projects(root=root, index_url=local_index, cache_root=harness_cache)
    )


@pytest.fixture(params=SHARED_KINDS)
def shared(request: pytest.FixtureRequest, pool: ClonePool) -> Interpreter:
    """The module's clone of a kind whose Poetry shares the target: system, venv."""
    kind: Kind = request.param
    return pool.get(kind)


# --- assertions ------------------------------------------------------------------


def assert_shared_target(report: Report, interp: Interpreter) -> None:
    """The report says Poetry shares the target, and why, for a shared kind."""
    target = report["target"]
    assert target["shared"] is True, target
    assert target["reason"] == SHARED_REASON[interp.kind], target
    assert target["kind"] == interp.kind, target
    assert Path(target["path"]).resolve() == interp.prefix.resolve(), target
    site = {str(p.resolve()) for p in interp.site_packages()}
    assert set(target["shared_paths"]) <= site, target
    assert target["shared_paths"], target
    assert report["poetry"]["version"] == interp.poetry_version
    assert report["poetry"]["isolated"] is False
    assert "poetry-env-audit" in report["poetry"]["plugins"]
    assert [e["kind"] for e in report["environment"]].count("shared") == 1


def installed(interp: Interpreter, name: str) -> str:
    return installed_versions(interp.site_packages())[name]


# --- verdicts where Poetry shares the target ------------------------------------


def test_downgrade_below_poetrys_requirement_breaks(
    shared: Interpreter, locked: ProjectPool
) -> None:
    project = locked.get("downgrade-breaks", shared)
    audit = run_audit(shared, project, "--format", "json")
    assert audit.code == 1, audit.describe()
    report = audit.report()
    assert report["schema"] == 1
    assert Path(report["project"]).resolve() == project.resolve()
    assert_shared_target(report, shared)
    assert (report["verdict"], report["exit_code"], report["sync"]) == (
        "block",
        1,
        False,
    )
    assert len(report["findings"]) == 1, report["findings"]
    finding = the_finding(report, "packaging")
    assert finding["current"] == installed(shared, "packaging")
    assert finding["planned"] == "23.0"
    assert finding["action"] == "downgrade"
    assert finding["verdict"] == "breaks"
    assert finding["policy"] == "block"
    [poetry] = requirers(finding, "poetry")
    assert poetry["version"] == shared.poetry_version
    assert poetry["requirement"].startswith("packaging>="), poetry
    assert poetry["satisfied"] is False
    assert finding["remedies"], finding


def test_in_place_change_within_the_specifier_is_serialised(
    shared: Interpreter, locked: ProjectPool
) -> None:
    project = locked.get("changes-in-place", shared)
    audit = run_audit(shared, project, "--format", "json")
    assert audit.code == 0, audit.describe()
    report = audit.report()
    assert_shared_target(report, shared)
    assert (report["verdict"], report["exit_code"]) == ("serialise", 0)
    assert len(report["findings"]) == 1, report["findings"]
    finding = the_finding(report, "shellingham")
    current = installed(shared, "shellingham")
    assert current != "1.5.3", "the fixture assumes Poetry brings a newer one"
    assert (finding["current"], finding["planned"]) == (current, "1.5.3")
    assert finding["action"] == "downgrade"
    assert (finding["verdict"], finding["policy"]) == ("changes", "serialise")
    [poetry] = requirers(finding, "poetry")
    assert poetry["requirement"].startswith("shellingham"), poetry
    assert poetry["satisfied"] is True


def test_sync_plan_removing_poetry_breaks(
    shared: Interpreter, locked: ProjectPool
) -> None:
    project = locked.get("sync-removes", shared)
    audit = run_audit(shared, project, "--sync", "--format", "json")
    assert audit.code == 1, audit.describe()
    report = audit.report()
    assert_shared_target(report, shared)
    assert (report["verdict"], report["exit_code"], report["sync"]) == (
        "block",
        1,
        True,
    )
    poetry = the_finding(report, "poetry")
    assert (poetry["action"], poetry["verdict"]) == ("remove", "breaks")
    assert (poetry["current"], poetry["planned"]) == (shared.poetry_version, None)
    packaging = the_finding(report, "packaging")
    assert (packaging["action"], packaging["verdict"]) == ("remove", "breaks")
    assert requirers(packaging, "poetry"), packaging
    assert not findings_for(report, "six"), "six is in the lock: not removed"


@pytest.mark.parametrize("fixture", ["sync-removes", "plugin-breaks"])
def test_lock_outside_poetrys_closure_finds_nothing(
    fixture: str, pool: ClonePool, locked: ProjectPool
) -> None:
    # Without --sync, a lock of six alone touches nothing Poetry needs; nor does
    # plugin-breaks while no plugin needs six (the control of the plugin test).
    interp = pool.get("system")
    audit = run_audit(interp, locked.get(fixture, interp), "--format", "json")
    assert audit.code == 0, audit.describe()
    report = audit.report()
    assert_shared_target(report, interp)
    assert report["findings"] == []
    assert report["verdict"] == "warn"  # the one `shared` notice, policy warn


def test_violated_plugin_requirement_breaks(
    system_poetry: Interpreter,
    projects: Projects,
    find_links: list[Path],
    tmp_path: Path,
) -> None:
    wheel = build_plugin_wheel(tmp_path / "fake", "fake-plugin", "1.0", ["six>=1.16"])
    pip_install(system_poetry.python, [str(wheel)], [wheel.parent, *find_links])
    project = projects.locked("plugin-breaks", system_poetry)
    audit = run_audit(system_poetry, project, "--format", "json")
    assert audit.code == 1, audit.describe()
    report = audit.report()
    assert_shared_target(report, system_poetry)
    assert "fake-plugin" in report["poetry"]["plugins"]
    assert report["verdict"] == "block"
    assert len(report["findings"]) == 1, report["findings"]
    finding = the_finding(report, "six")
    assert finding["current"] == installed(system_poetry, "six")
    assert finding["planned"] == "1.15.0"
    assert (finding["action"], finding["verdict"]) == ("downgrade", "breaks")
    [plugin] = requirers(finding, "fake-plugin")
    assert (plugin["version"], plugin["requirement"]) == ("1.0", "six>=1.16")
    assert plugin["satisfied"] is False
    assert "fake-plugin" in finding["message"]


# --- the text report -------------------------------------------------------------


def test_text_report_names_the_shared_target_and_the_change(
    shared: Interpreter, locked: ProjectPool, tmp_path: Path
) -> None:
    project = locked.get("downgrade-breaks", shared)
    saved = tmp_path / "report.json"
    audit = run_audit(shared, project, "--output", str(saved))
    assert audit.code == 1, audit.describe()
    lines = audit.stdout.splitlines()
    version = re.escape(shared.poetry_version)
    reason = re.escape(SHARED_REASON[shared.kind])
    first = rf"^Poetry {version} shares the target environment .*\({reason}\)"
    assert re.match(first, lines[0]), audit.describe()
    have = re.escape(installed(shared, "packaging"))
    row = re.compile(
        rf"^packaging\s+{have}\s+23\.0\s+downgrade\s+"
        rf"poetry {version} \(packaging>=[^)]+\).*\sbreaks$"
    )
    assert [line for line in lines if row.match(line)], audit.describe()
    assert "Traceback" not in audit.stdout + audit.stderr
    # --output: the JSON report, whatever the format on stdout.
    data = json_file(saved)
    assert (data["exit_code"], data["verdict"]) == (1, "block")
    assert the_finding(data, "packaging")["verdict"] == "breaks"


def test_output_through_a_symlink_is_refused_and_the_linked_file_kept(
    pool: ClonePool, locked: ProjectPool, tmp_path: Path
) -> None:
    """A committed symlink must not aim the report at a file the job can write."""
    interp = pool.get("system")
    project = locked.get("downgrade-breaks", interp)
    archived = tmp_path / "archive" / "report.json"
    archived.parent.mkdir()
    archived.write_text("{}", encoding="utf-8")
    archived.chmod(0o600)
    link = tmp_path / "latest.json"
    link.symlink_to(archived)
    audit = run_audit(interp, project, "--format", "json", "--output", str(link))
    assert audit.code == 2, audit.describe()
    assert audit.stdout == "", audit.describe()
    lines = audit.result.stderr.strip().splitlines()
    assert len(lines) == 1, audit.describe()
    assert str(link) in lines[0] and "it is a symbolic link" in lines[0], (
        audit.describe()
    )
    assert link.is_symlink(), "--output replaced the symlink"
    assert archived.read_text(encoding="utf-8") == "{}"
    assert archived.stat().st_mode & 0o777 == 0o600


def json_file(path: Path) -> Report:
    data = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


# --- isolated Poetry ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "args"),
    [
        pytest.param("downgrade-breaks", (), marks=pytest.mark.smoke, id="downgrade"),
        pytest.param("changes-in-place", (), id="changes"),
        pytest.param("sync-removes", ("--sync",), id="sync"),
        pytest.param("plugin-breaks", (), id="plugin"),
    ],
)
def test_isolated_poetry_has_no_findings(
    fixture: str, args: tuple[str, ...], pool: ClonePool, locked: ProjectPool
) -> None:
    interp = pool.get("isolated")
    project = locked.get(fixture, interp)
    audit = run_audit(interp, project, *args, "--format", "json")
    assert audit.code == 0, audit.describe()
    report = audit.report()
    assert report["findings"] == []
    assert report["target"]["shared"] is False
    assert report["target"]["shared_paths"] == []
    assert report["poetry"]["isolated"] is True
    assert (report["verdict"], report["exit_code"]) == ("ok", 0)
    assert not (project / ".venv").exists(), "env-audit created the project's venv"


def test_isolated_poetry_with_an_existing_in_project_venv(
    isolated_poetry: Interpreter, projects: Projects
) -> None:
    project = projects.locked("downgrade-breaks", isolated_poetry)
    made = run_python(
        isolated_poetry,
        ["-m", "venv", "--without-pip", str(project / ".venv")],
        cwd=project,
    )
    assert made.returncode == 0, describe(made)
    audit = run_audit(isolated_poetry, project, "--format", "json")
    assert audit.code == 0, audit.describe()
    report = audit.report()
    target = report["target"]
    assert (target["kind"], target["reason"]) == ("venv", "in-project .venv"), target
    assert Path(target["path"]).resolve() == (project / ".venv").resolve()
    assert target["shared"] is False
    assert report["findings"] == []
    assert report["verdict"] == "ok"


# --- bad input ---------------------------------------------------------------------

BAD_FIXTURES = {
    "bad-corrupt-lock": "could not be read",
    "bad-missing-lock": "does not exist",
    "bad-stale-lock": "out of date",
    "not-a-project": "not a Poetry project",
}


@pytest.mark.parametrize(
    ("kind", "args"),
    [("system", ()), ("isolated", ("--format", "json"))],
    ids=["system-text", "isolated-json"],
)
@pytest.mark.parametrize(
    "fixture",
    [
        pytest.param(name, marks=pytest.mark.smoke, id=name)
        if name == "bad-missing-lock"
        else name
        for name in BAD_FIXTURES
    ],
)
def test_bad_input_fails_in_one_line(
    fixture: str,
    kind: Kind,
    args: tuple[str, ...],
    pool: ClonePool,
    locked: ProjectPool,
) -> None:
    # JSON on the isolated kind: an error is never half a report on stdout.
    interp = pool.get(kind)
    project = locked.get(fixture, interp)
    before = snapshot_tree(project)
    audit = run_audit(interp, project, *args)
    assert_one_line_failure(audit.code, audit.stdout, audit.stderr, audit.describe())
    assert BAD_FIXTURES[fixture] in audit.stderr, audit.describe()
    assert tree_diff(before, snapshot_tree(project)) == []


@pytest.mark.parametrize(
    ("args", "env", "says"),
    [
        pytest.param(("--format", "yaml"), {}, "yaml", id="unknown-format"),
        pytest.param(("--only", "no-such-group"), {}, "no-such-group", id="no-group"),
        pytest.param(
            ("-E", "extra", "--all-extras"), {}, "--all-extras", id="extras-twice"
        ),
        pytest.param(
            ("--output", "{project}/pyproject.toml/report.json"),
            {},
            "report.json",
            id="output-unwritable",
        ),
        pytest.param(
            (), {"POETRY_ENV_AUDIT_BREAKS": "sometimes"}, "sometimes", id="bad-policy"
        ),
        pytest.param(
            (), {"POETRY_ENV_AUDIT_BRAKES": "warn"}, "BRAKES", id="unknown-variable"
        ),
    ],
)
def test_bad_option_or_configuration_fails_in_one_line(
    args: tuple[str, ...],
    env: dict[str, str],
    says: str,
    pool: ClonePool,
    locked: ProjectPool,
) -> None:
    interp = pool.get("system")
    project = locked.get("downgrade-breaks", interp)
    filled = [a.replace("{project}", str(project)) for a in args]
    audit = run_audit(interp, project, *filled, extra_env=env)
    assert_one_line_failure(audit.code, audit.stdout, audit.stderr, audit.describe())
    assert says in audit.stderr, audit.describe()


def test_error_line_shows_no_console_markup(
    pool: ClonePool, locked: ProjectPool
) -> None:
    interp = pool.get("system")
    project = locked.get("downgrade-breaks", interp)
    audit = run_audit(interp, project, "--only", "no-such-group")
    assert audit.code == 2, audit.describe()
    assert not re.search(r"</?(fg|bg|options)=|</>", audit.stderr), audit.describe()


def assert_one_line_failure(code: int, stdout: str, stderr: str, what: str) -> None:
    assert code == 2, what
    assert stdout.strip() == "", what
    assert len(stderr.strip().splitlines()) == 1, what
    assert stderr.startswith("env-audit: "), what
    assert "Traceback" not in stderr, what


# --- options ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "packaging_found"),
    [
        pytest.param(("--only", "main"), True, id="only-main"),
        pytest.param(("--without", "main"), False, id="without-main"),
    ],
)
def test_group_options_are_honoured(
    args: tuple[str, ...], packaging_found: bool, pool: ClonePool, locked: ProjectPool
) -> None:
    # No fixture has a group besides the implicit "main": leaving it out
    # leaves nothing to install.
    interp = pool.get("system")
    project = locked.get("downgrade-breaks", interp)
    audit = run_audit(interp, project, *args, "--format", "json")
    assert audit.code == (1 if packaging_found else 0), audit.describe()
    report = audit.report()
    assert bool(findings_for(report, "packaging")) is packaging_found


def test_policy_from_the_environment_is_honoured(
    pool: ClonePool, locked: ProjectPool
) -> None:
    interp = pool.get("system")
    project = locked.get("downgrade-breaks", interp)
    env = {"POETRY_ENV_AUDIT_BREAKS": "warn"}
    audit = run_audit(interp, project, "--format", "json", extra_env=env)
    assert audit.code == 0, audit.describe()
    report = audit.report()
    finding = the_finding(report, "packaging")
    assert (finding["verdict"], finding["policy"]) == ("breaks", "warn")
    assert (report["verdict"], report["exit_code"]) == ("warn", 0)


# --- the prediction is Poetry's own ------------------------------------------------

# One line per operation in Poetry's dry run: "  - Downgrading packaging (24.2 -> 23.0)";
# a version may be followed by where it came from ("(0.1.0 /path/to.whl)").
DRY_RUN_OPERATION = re.compile(
    r"^\s*- (Installing|Updating|Downgrading|Removing) (\S+) \((.*)\)$", re.M
)


@pytest.mark.parametrize(
    ("fixture", "sync"),
    [
        pytest.param("changes-in-place", False, marks=pytest.mark.smoke, id="changes"),
        pytest.param("downgrade-breaks", False, id="breaks"),
        pytest.param("sync-removes", True, id="sync"),
    ],
)
def test_prediction_matches_poetrys_own_dry_run(
    fixture: str, sync: bool, pool: ClonePool, locked: ProjectPool
) -> None:
    """env-audit plans without solving where Poetry can (the lock's markers, 2.x):
    the changes to Poetry's packages it judges are exactly those Poetry's own
    dry run, plugins disabled and settings untouched, prints."""
    interp = pool.get("system")
    project = locked.get(fixture, interp)
    audit = run_audit(
        interp, project, *(["--sync"] if sync else []), "--format", "json"
    )
    report = audit.report()
    predicted = {
        normalise(f["package"]): (f["current"], f["planned"])
        for f in report["findings"]
    }
    assert predicted, audit.describe()

    command = sync_args(interp) if sync else ["install"]
    dry = run_poetry(interp, ["--no-plugins", *command, "--dry-run"], cwd=project)
    assert dry.returncode == 0, describe(dry)
    poetrys = {normalise(n["package"]) for n in report["poetry"]["needs"]} | {"poetry"}
    poetrys |= {normalise(p) for p in report["poetry"]["plugins"]}
    planned: dict[str, tuple[str | None, str | None]] = {}
    for verb, name, versions in DRY_RUN_OPERATION.findall(dry.stdout):
        if normalise(name) not in poetrys:
            continue
        sides = [side.split()[0] for side in versions.split(" -> ")]
        if verb == "Installing":
            planned[normalise(name)] = (None, sides[0])
        elif verb == "Removing":
            planned[normalise(name)] = (sides[0], None)
        else:
            planned[normalise(name)] = (sides[0], sides[1])
    assert predicted == planned, describe(dry)


# --- changes nothing, needs nothing ------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "args"),
    [("downgrade-breaks", ()), ("sync-removes", ("--sync",))],
    ids=["downgrade", "sync"],
)
def test_env_audit_modifies_nothing(
    fixture: str, args: tuple[str, ...], pool: ClonePool, locked: ProjectPool
) -> None:
    interp = pool.get("system")
    project = locked.get(fixture, interp)
    site = interp.site_packages()
    packages_before = snapshot_site_packages(site)
    site_before = {str(d): snapshot_tree(d) for d in site}
    project_before = snapshot_tree(project)
    audit = run_audit(interp, project, *args)
    assert audit.code == 1, audit.describe()
    assert snapshot_diff(packages_before, snapshot_site_packages(site)) == []
    for directory in site:
        after = snapshot_tree(directory)
        assert tree_diff(site_before[str(directory)], after) == [], directory
    assert tree_diff(project_before, snapshot_tree(project)) == []


def test_env_audit_needs_no_network_with_a_fresh_lock(
    pool: ClonePool, locked: ProjectPool, local_index: str
) -> None:
    interp = pool.get("system")
    project = locked.get("downgrade-breaks", interp)
    with closed_port() as port:
        offline = offline_env(port)
        # The control: with these variables Poetry's HTTP client cannot reach
        # even the loopback index.
        probe = (
            "import sys, requests\n"
            "try:\n    requests.get(sys.argv[1], timeout=10)\n"
            "except requests.RequestException as error:\n"
            "    print(type(error).__name__)\nelse:\n    print('reached')\n"
        )
        control = run_python(
            interp, ["-c", probe, local_index], cwd=project, extra_env=offline
        )
        assert control.returncode == 0, describe(control)
        assert control.stdout.strip() in {"ProxyError", "ConnectionError"}, describe(
            control
        )
        audit = run_audit(interp, project, "--format", "json", extra_env=offline)
    assert audit.code == 1, audit.describe()
    assert the_finding(audit.report(), "packaging")["verdict"] == "breaks"


# --- cost of being installed ------------------------------------------------------


@pytest.mark.smoke
def test_activating_the_plugin_imports_nothing_heavy(pool: ClonePool) -> None:
    # What every Poetry command pays for the plugin: loading and activating it.
    # (Timing belongs to the benchmarks; this checks the imports behind it.)
    interp = pool.get("system")
    probe = run_python(interp, ["-c", ACTIVATION_PROBE], cwd=interp.prefix)
    assert probe.returncode == 0, describe(probe)
    modules = json.loads(probe.stdout)
    assert heavy(set(modules["before"])) == [], "the check would prove nothing"
    added = set(modules["added"])
    assert "poetry_env_audit.plugin" in added, describe(probe)
    assert heavy(added) == [], describe(probe)


def test_poetry_version_loads_the_plugin_but_not_the_engine(
    pool: ClonePool, tmp_path: Path
) -> None:
    interp = pool.get("system")
    out = tmp_path / "modules.json"
    args = ["-c", AT_EXIT_PROBE, str(out), "poetry", "--version"]
    result = run_python(interp, args, cwd=tmp_path)
    assert result.returncode == 0, describe(result)
    assert f"version {interp.poetry_version}" in result.stdout, describe(result)
    loaded = set(json.loads(out.read_text(encoding="utf-8")))
    assert "poetry_env_audit.plugin" in loaded, "Poetry did not load the plugin"
    # poetry.installation is left out here: Poetry's own plugin manager imports
    # it on some versions, whoever the plugins are.
    assert [m for m in heavy(loaded) if m.startswith("poetry_env_audit")] == []


def heavy(modules: set[str]) -> list[str]:
    return sorted(
        m
        for m in modules
        if m in HEAVY_MODULES
        or any(m == p or m.startswith(p + ".") for p in HEAVY_PACKAGES)
    )
