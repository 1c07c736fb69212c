"""Ownership by file (issue 11): a wheel of another name that would write a
file of a distribution Poetry needs is refused before it is written."""

from __future__ import annotations

import sysconfig
import zipfile
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import pytest

from poetry_env_audit.audit import assess
from poetry_env_audit.audit import with_overwrites
from poetry_env_audit.findings import Verdict
from poetry_env_audit.guard import FileOwnershipError
from poetry_env_audit.ownership import Overwrite
from poetry_env_audit.ownership import Owner
from poetry_env_audit.ownership import check_planned
from poetry_env_audit.ownership import collisions
from poetry_env_audit.ownership import overwrites
from poetry_env_audit.ownership import protected_files
from poetry_env_audit.ownership import wheel_files
from poetry_env_audit.plan import Action
from poetry_env_audit.policy import PolicyAction
from poetry_env_audit.policy import load_policy
from poetry_env_audit.report import RunVerdict
from unit.factories import change
from unit.factories import dist
from unit.factories import poetry_env
from unit.factories import target
from unit.test_guard import make_setup
from unit.test_guard import operations

if TYPE_CHECKING:
    from collections.abc import Mapping


def make_wheel(dest: Path, name: str, version: str, files: Mapping[str, str]) -> Path:
    stem = name.replace("-", "_")
    path = dest / f"{stem}-{version}-py3-none-any.whl"
    dest.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        for rel, text in files.items():
            zf.writestr(rel, text)
        info = f"{stem}-{version}.dist-info"
        zf.writestr(
            f"{info}/METADATA",
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        )
        zf.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\n")
        zf.writestr(f"{info}/RECORD", "")
    return path


def test_wheel_files_maps_data_purelib_and_skips_scripts(tmp_path: Path) -> None:
    wheel = make_wheel(
        tmp_path,
        "tomlkit-shadow",
        "1.0",
        {
            "tomlkit/__init__.py": "",
            "tomlkit_shadow-1.0.data/purelib/tomlkit/api.py": "",
            "tomlkit_shadow-1.0.data/scripts/evil": "",
            "../escape.py": "",
        },
    )
    name, paths = wheel_files(wheel)
    assert name == "tomlkit-shadow"
    assert "tomlkit/__init__.py" in paths
    assert "tomlkit/api.py" in paths
    assert not [p for p in paths if "evil" in p or "escape" in p]


def _site_with_tomlkit(root: Path) -> Path:
    site = root / "site"
    (site / "tomlkit").mkdir(parents=True)
    (site / "tomlkit" / "__init__.py").write_text("")
    info = site / "tomlkit-0.13.2.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: tomlkit\nVersion: 0.13.2\n"
    )
    (info / "RECORD").write_text(
        "tomlkit/__init__.py,,\ntomlkit-0.13.2.dist-info/METADATA,,\n"
        "tomlkit/__pycache__/__init__.cpython-311.pyc,,\n../../bin/tomlkit,,\n"
    )
    return site


def test_protected_files_are_those_of_poetrys_distributions(tmp_path: Path) -> None:
    site = str(_site_with_tomlkit(tmp_path))
    poetry = poetry_env(
        [
            dist("poetry", "2.5.1", ["tomlkit>=0.11"]),
            dist("tomlkit", "0.13.2", location=site),
        ],
        import_paths=(site,),
    )
    protected = protected_files(poetry, [site])
    assert set(protected) == {
        "tomlkit/__init__.py",
        "tomlkit-0.13.2.dist-info/METADATA",
    }
    assert protected["tomlkit/__init__.py"] == Owner(
        "tomlkit", "tomlkit", "0.13.2", site
    )
    assert protected_files(poetry, [str(tmp_path / "elsewhere")]) == {}


def test_a_wheel_of_another_name_collides_its_own_name_does_not(tmp_path: Path) -> None:
    owner = Owner("tomlkit", "tomlkit", "0.13.2")
    protected = {"tomlkit/__init__.py": owner}
    shadow = make_wheel(tmp_path, "tomlkit-shadow", "1.0", {"tomlkit/__init__.py": ""})
    (found,) = collisions(shadow, protected)
    assert (
        found.describe()
        == "tomlkit-shadow would overwrite tomlkit/__init__.py of tomlkit 0.13.2"
    )
    update = make_wheel(
        tmp_path / "u", "tomlkit", "0.13.3", {"tomlkit/__init__.py": ""}
    )
    assert collisions(update, protected) == []
    other = make_wheel(tmp_path / "o", "leftpad", "1.0", {"leftpad/__init__.py": ""})
    assert collisions(other, protected) == []


# ----------------------------------------------------------------- in the guard


@dataclass
class FakeWheelInstaller:
    installed: list[Path] = field(default_factory=list)

    def install(self, wheel: Path) -> None:
        self.installed.append(wheel)


def _shadowing_setup(
    tmp_path: Path, name: str = "tomlkit-shadow", **kw: Any
) -> tuple[Any, FakeWheelInstaller, Path]:
    own_site = [Path(sysconfig.get_paths()["purelib"])]
    setup = make_setup(tmp_path, site_dirs=own_site, **kw)
    wheels = FakeWheelInstaller()
    payload = "tomlkit" if name == "tomlkit-shadow" else name
    archive = make_wheel(
        tmp_path / "wheels", name, "1.0", {f"{payload}/__init__.py": ""}
    )
    executor = setup.executor
    executor._wheel_installer = wheels  # type: ignore[attr-defined]
    original = type(executor).execute

    def execute(self: Any, ops: list[Any]) -> int:
        status = original(self, ops)
        for _ in ops:
            self._wheel_installer.install(archive)
        return status

    type(executor).execute = execute  # type: ignore[method-assign,assignment]
    return setup, wheels, archive


@pytest.fixture
def _restore_fake_executor() -> Any:
    from unit.test_guard import FakeExecutor

    original = FakeExecutor.execute
    yield
    FakeExecutor.execute = original  # type: ignore[method-assign]


@pytest.mark.usefixtures("_restore_fake_executor")
def test_guard_refuses_a_wheel_that_shadows_poetrys_files(tmp_path: Path) -> None:
    setup, wheels, _ = _shadowing_setup(tmp_path)
    guard = setup.guard()
    with pytest.raises(
        FileOwnershipError, match=r"tomlkit-shadow would overwrite tomlkit/__init__\.py"
    ):
        setup.executor.execute(operations(["tomlkit-shadow"]))
    assert wheels.installed == []
    err = setup.err
    assert "refusing to install tomlkit-shadow" in err
    assert "POETRY_ENV_AUDIT_BREAKS=warn" in err
    del guard


@pytest.mark.usefixtures("_restore_fake_executor")
def test_breaks_warn_installs_the_shadowing_wheel_with_a_warning(
    tmp_path: Path,
) -> None:
    setup, wheels, archive = _shadowing_setup(tmp_path, table={"breaks": "warn"})
    setup.guard()
    assert setup.executor.execute(operations(["tomlkit-shadow"])) == 0
    assert wheels.installed == [archive]
    assert "installing anyway as configured" in setup.err


@pytest.mark.usefixtures("_restore_fake_executor")
def test_wheels_that_shadow_nothing_are_installed(tmp_path: Path) -> None:
    setup, wheels, archive = _shadowing_setup(tmp_path, name="leftpad-x")
    setup.guard()
    assert setup.executor.execute(operations(["leftpad-x"])) == 0
    assert wheels.installed == [archive]
    assert "refusing" not in setup.err


# ----------------------------------------------------------------- content, verdicts


def _owned_site(root: Path, text: str = "OWN = 1\n") -> tuple[Path, Owner]:
    site = root / "owned"
    (site / "tomlkit").mkdir(parents=True)
    (site / "tomlkit" / "__init__.py").write_text(text)
    (site / "tomlkit" / "api.py").write_text("API = 1\n")
    return site, Owner("tomlkit", "tomlkit", "0.13.2", str(site))


@pytest.mark.parametrize(
    ("init", "api", "identical"),
    [
        pytest.param("OWN = 1\n", "API = 1\n", True, id="same-bytes"),
        pytest.param("OWN = 2\n", "API = 1\n", False, id="one-file-differs"),
        pytest.param("OWN = 1\n", None, True, id="writes-one-file-same"),
        pytest.param("OWN = 1\r\n", None, False, id="line-endings-differ"),
    ],
)
def test_an_overwrite_is_identical_only_when_every_file_keeps_its_bytes(
    tmp_path: Path, init: str, api: str | None, identical: bool
) -> None:
    _, owner = _owned_site(tmp_path)
    files = {"tomlkit/__init__.py": init}
    if api is not None:
        files["tomlkit/api.py"] = api
    wheel = make_wheel(tmp_path / "w", "tomlkit-shadow", "1.0", files)
    protected = {"tomlkit/__init__.py": owner, "tomlkit/api.py": owner}
    found = collisions(wheel, protected)
    assert len(found) == len(files)
    (over,) = overwrites(found)
    assert over.identical is identical
    assert (over.wheel, over.wheel_version, over.owner) == (
        "tomlkit-shadow",
        "1.0",
        owner,
    )
    what = "the same bytes" if identical else "other content"
    more = " (and 1 more files)" if api is not None else ""
    assert over.describe() == (
        f"tomlkit-shadow 1.0 would overwrite tomlkit/__init__.py{more} of"
        f" tomlkit 0.13.2 with {what}"
    )


def test_a_file_missing_on_disk_is_not_identical(tmp_path: Path) -> None:
    site, owner = _owned_site(tmp_path)
    (site / "tomlkit" / "api.py").unlink()
    wheel = make_wheel(tmp_path / "w", "tomlkit-shadow", "1.0", {"tomlkit/api.py": ""})
    (found,) = collisions(wheel, {"tomlkit/api.py": owner})
    assert found.identical is False


def test_overwrites_group_by_wheel_and_owner(tmp_path: Path) -> None:
    _, tomlkit = _owned_site(tmp_path)
    other = Owner("packaging", "packaging", "24.2", tomlkit.site)
    wheel = make_wheel(
        tmp_path / "w",
        "both-shadow",
        "2.0",
        {
            "tomlkit/__init__.py": "OWN = 1\n",
            "packaging/x.py": "",
            "tomlkit/api.py": "",
        },
    )
    protected = {
        "tomlkit/__init__.py": tomlkit,
        "tomlkit/api.py": tomlkit,
        "packaging/x.py": other,
    }
    groups = overwrites(collisions(wheel, protected))
    assert [(g.owner.name, g.paths, g.identical) for g in groups] == [
        ("tomlkit", ("tomlkit/__init__.py", "tomlkit/api.py"), False),
        ("packaging", ("packaging/x.py",), False),
    ]


SHADOW_POETRY = poetry_env(
    [
        dist("poetry", "2.5.1", ["tomlkit>=0.11.4,<1.0.0"]),
        dist("tomlkit", "0.13.2"),
    ]
)


@pytest.mark.parametrize(
    ("identical", "table", "verdict", "policy", "run"),
    [
        (False, {}, Verdict.BREAKS, PolicyAction.BLOCK, RunVerdict.BLOCK),
        (True, {}, Verdict.CHANGES, PolicyAction.SERIALISE, RunVerdict.SERIALISE),
        (
            True,
            {"changes": "block"},
            Verdict.CHANGES,
            PolicyAction.BLOCK,
            RunVerdict.BLOCK,
        ),
        (False, {"breaks": "warn"}, Verdict.BREAKS, PolicyAction.WARN, RunVerdict.WARN),
    ],
)
def test_an_overwrite_is_a_finding_on_the_owner_judged_by_policy(
    identical: bool,
    table: dict[str, str],
    verdict: Verdict,
    policy: PolicyAction,
    run: RunVerdict,
) -> None:
    owner = Owner("tomlkit", "tomlkit", "0.13.2", "/site")
    over = Overwrite(
        "tomlkit-shadow", "1.0", owner, ("tomlkit/__init__.py",), identical
    )
    rules = load_policy({"shared": "off", **table}, {})
    base = assess(poetry=SHADOW_POETRY, target=target(), changes=[], policy=rules)
    report = with_overwrites(base, [over], rules, checked=3, unchecked=1)
    (finding,) = report.findings
    assert (finding.package, finding.by, finding.action) == (
        "tomlkit",
        "tomlkit-shadow",
        Action.OVERWRITE,
    )
    assert (finding.verdict, finding.policy, report.verdict) == (verdict, policy, run)
    assert finding.current == "0.13.2"
    assert finding.planned == ("0.13.2" if identical else None)
    assert [r.satisfied for r in finding.required_by] == [identical]
    assert finding.required_by[0].package == "poetry"
    assert (report.wheels_checked, report.wheels_unchecked) == (3, 1)
    commands = [r.command or "" for r in finding.remedies]
    assert not [c for c in commands if c.startswith("poetry add")]
    assert "poetry self isolate" in commands
    assert with_overwrites(base, [], rules) == base


def test_check_planned_reads_local_wheels_and_the_cache_never_a_directory(
    tmp_path: Path,
) -> None:
    _, owner = _owned_site(tmp_path)
    protected = {"tomlkit/__init__.py": owner}
    shadow = make_wheel(
        tmp_path / "a", "tomlkit-shadow", "1.0", {"tomlkit/__init__.py": ""}
    )
    clean = make_wheel(tmp_path / "b", "leftpad", "1.0", {"leftpad/__init__.py": ""})
    broken = tmp_path / "broken-1.0-py3-none-any.whl"
    broken.write_bytes(b"not a zip")
    cache = {("leftpad", "1.0"): clean, ("broken", "1.0"): broken}
    asked: list[tuple[str, str]] = []

    def find(name: str, version: str) -> Path | None:
        asked.append((name, version))
        return cache.get((name, version))

    changes = [
        replace(change("tomlkit-shadow", None, "1.0"), local_wheel=str(shadow)),
        change("leftpad", None, "1.0"),
        change("broken", None, "1.0"),
        change("missing", None, "1.0"),
        replace(change("built", None, "1.0"), source_type="directory"),
        change("gone", "1.0", None),
    ]
    result = check_planned(changes, protected, find)
    assert [o.wheel for o in result.overwrites] == ["tomlkit-shadow"]
    assert (result.checked, result.unchecked) == (2, 3)
    assert asked == [("leftpad", "1.0"), ("broken", "1.0"), ("missing", "1.0")]


def test_an_overwrite_annotation_points_at_the_wheels_lock_entry() -> None:
    from poetry_env_audit.render.annotations import annotations_of

    owner = Owner("tomlkit", "tomlkit", "0.13.2", "/site")
    over = Overwrite("tomlkit-shadow", "1.0", owner, ("tomlkit/__init__.py",), False)
    rules = load_policy({"shared": "off"}, {})
    base = assess(poetry=SHADOW_POETRY, target=target(), changes=[], policy=rules)
    report = with_overwrites(base, [over], rules)
    lines = {"tomlkit": 3, "tomlkit-shadow": 40}
    (note,) = annotations_of(report, lock_path="poetry.lock", lock_lines=lines)
    assert (note.file, note.line) == ("poetry.lock", 40)
    assert note.title == "env-audit: tomlkit breaks Poetry"
    assert "tomlkit-shadow 1.0 would overwrite tomlkit/__init__.py" in note.message
