"""seams.plan: Poetry's dependencies as PEP 508 requirements, faithfully."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from poetry.core.constraints.version import parse_constraint
from poetry.core.packages.dependency import Dependency
from poetry.core.packages.package import Package

from poetry_env_audit.seams.plan import pep508
from poetry_env_audit.seams.plan import requirements_of
from poetry_env_audit.seams.plan import specifier_of_constraint

if TYPE_CHECKING:
    from pathlib import Path


@pytest.mark.parametrize(
    ("constraint", "expected"),
    [
        ("*", ""),
        (">=2.0.2,<3.0.5 || >3.0.5", "!=3.0.5,>=2.0.2"),
        (">=1.0,<1.5 || >1.5,<1.7 || >1.7,<2.0", "!=1.5,!=1.7,<2.0,>=1.0"),
        ("<3.0.5 || >3.0.5", "!=3.0.5"),
        ("!=3.0.*", "!=3.0.*"),
        ("^1.2", "<2.0.0,>=1.2"),
        ("~2.1", "<2.2,>=2.1"),
        ("==1.2.3", "==1.2.3"),
        ("1.2.*", "==1.2.*"),
        (">=1,<2 || >=3,<4", None),  # a real gap: no PEP 440 form
        ("1.0 || 2.0", None),
    ],
)
def test_specifier_of_constraint(constraint: str, expected: str | None) -> None:
    got = specifier_of_constraint(parse_constraint(constraint))
    if expected is None:
        assert got is None
        return
    assert got is not None
    # Same set of versions: compare as packaging reads them.
    from packaging.specifiers import SpecifierSet

    assert SpecifierSet(got) == SpecifierSet(expected)


@pytest.mark.parametrize(
    ("constraint", "allowed", "refused"),
    [
        (
            ">=2.0.2,<3.0.5 || >3.0.5",
            ["2.0.2", "3.0.4", "3.0.6", "9"],
            ["2.0.1", "3.0.5"],
        ),
        ("^0.4", ["0.4.0", "0.4.9"], ["0.5.0", "0.3.9"]),
        (">=1.0,<1.5 || >1.5", ["1.4", "1.6"], ["1.5", "0.9"]),
    ],
)
def test_pep508_allows_what_poetry_allows(
    constraint: str, allowed: list[str], refused: list[str]
) -> None:
    """The requirement packaging reads holds exactly where Poetry's constraint does."""
    from poetry.core.constraints.version import Version

    dep = Dependency("pyparsing", constraint)
    text = pep508(dep)
    assert text is not None
    spec = Requirement(text).specifier
    poetry = dep.constraint
    for version in allowed + refused:
        assert spec.contains(version, prereleases=True) is poetry.allows(
            Version.parse(version)
        ), version
    assert all(spec.contains(v) for v in allowed)
    assert not any(spec.contains(v) for v in refused)


def test_pep508_keeps_markers_and_extras() -> None:
    dep = Dependency("typing-extensions", ">=4.0", extras=["x"])
    dep.marker = dep.marker.intersect(
        __import__(
            "poetry.core.version.markers", fromlist=["parse_marker"]
        ).parse_marker('python_version < "3.11"')
    )
    text = pep508(dep)
    assert text is not None
    req = Requirement(text)
    assert (req.name, str(req.specifier), req.extras) == (
        "typing-extensions",
        ">=4.0",
        {"x"},
    )
    assert str(req.marker) == 'python_version < "3.11"'


def test_pep508_of_a_union_with_a_real_gap_is_none() -> None:
    assert pep508(Dependency("a", ">=1,<2 || >=3")) is None


def _package(name: str, version: str, *deps: Dependency) -> Package:
    package = Package(name, version)
    for dep in deps:
        package.add_dependency(dep)
    return package


def test_requirements_of_a_package_with_extras_and_unions() -> None:
    optional = Dependency("sniffio", ">=1.1", optional=True)
    package = _package(
        "anyio",
        "4.6.0",
        Dependency("idna", ">=2.8"),
        Dependency("pyparsing", ">=2.0.2,<3.0.5 || >3.0.5"),
        Dependency("odd", ">=1,<2 || >=3"),
        optional,
    )
    package.extras = {canonicalize_name("trio"): [optional]}
    requires, unreadable = requirements_of(package)
    parsed = {Requirement(r).name: Requirement(r) for r in requires}
    assert set(parsed) == {"idna", "pyparsing", "sniffio"}
    assert parsed["pyparsing"].specifier.contains("3.0.6")
    assert not parsed["pyparsing"].specifier.contains("3.0.5")
    assert str(parsed["sniffio"].marker) == 'extra == "trio"'
    assert len(unreadable) == 1
    assert unreadable[0].startswith("odd")


def test_requirements_of_nothing() -> None:
    assert requirements_of(_package("certifi", "2024.8.30")) == ((), ())


# ----------------------------------------------------------------- messages


@pytest.mark.parametrize(
    ("version", "command"),
    [("1.8.5", "poetry lock --no-update"), ("2.5.1", "poetry lock")],
)
def test_stale_lock_hint_is_right_for_the_running_poetry(
    monkeypatch: pytest.MonkeyPatch, version: str, command: str
) -> None:
    import poetry_env_audit.seams as seams
    from poetry_env_audit.errors import AuditError
    from poetry_env_audit.seams.plan import check_fresh

    class Locker:
        lock = "/p/poetry.lock"

        def is_fresh(self) -> bool:
            return False

    class Poetry:
        locker = Locker()

    monkeypatch.setattr(seams, "poetry_version", lambda: version)
    with pytest.raises(AuditError) as caught:
        check_fresh(Poetry())  # type: ignore[arg-type]
    assert f"Run `{command}` to bring it up to date." in str(caught.value)


class _Unloadable:
    """A command whose project Poetry cannot load."""

    def __init__(self, directory: object) -> None:
        class App:
            project_directory = directory

        self.application = App()

    @property
    def poetry(self) -> object:
        raise RuntimeError("The Poetry configuration is invalid:\n  - bad key")


def test_a_project_poetry_rejects_is_named_as_such(tmp_path: Path) -> None:
    from poetry_env_audit.errors import AuditError
    from poetry_env_audit.seams.project import load_poetry

    project = tmp_path / "app"
    (project / "src").mkdir(parents=True)
    (project / "pyproject.toml").write_text("[tool.poetry]\n")
    with pytest.raises(AuditError) as caught:
        load_poetry(_Unloadable(project / "src"))
    assert str(caught.value) == (
        f"Poetry cannot load the project {project / 'pyproject.toml'}:"
        " The Poetry configuration is invalid: - bad key."
    )


def test_no_pyproject_is_not_a_poetry_project(tmp_path: Path) -> None:
    from poetry_env_audit.errors import AuditError
    from poetry_env_audit.seams.project import load_poetry

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(AuditError, match=r"^not a Poetry project: "):
        load_poetry(_Unloadable(empty))


@pytest.mark.parametrize(
    ("python", "allowed"),
    [("~3.12", False), (">=3.9", True), ("3.11.*", True)],
)
def test_a_python_the_project_forbids_is_refused_in_poetrys_words(
    python: str, allowed: bool
) -> None:
    from poetry_env_audit.errors import AuditError
    from poetry_env_audit.seams.environment import check_python

    class Env:
        version_info = (3, 11, 7, "final", 0)

    class Poetry:
        package = Package("project", "1.0")

    Poetry.package.python_versions = python
    if allowed:
        check_python(Poetry(), Env(), create=False)  # type: ignore[arg-type]
        return
    with pytest.raises(AuditError) as caught:
        check_python(Poetry(), Env(), create=False)  # type: ignore[arg-type]
    assert str(caught.value) == (
        f"Current Python version (3.11.7) is not allowed by the project ({python})."
        " Poetry cannot switch to a compatible Python version because virtualenv"
        " creation is disabled."
    )


class _Input:
    def __init__(self, options: dict[str, object]) -> None:
        self.options = options

    def has_option(self, name: str) -> bool:
        return name in self.options

    def option(self, name: str) -> object:
        return self.options[name]


class _IO:
    def __init__(self, options: dict[str, object]) -> None:
        self.input = _Input(options)


@pytest.mark.parametrize(
    ("options", "flags"),
    [
        ({}, ""),
        ({"only": ["main"], "extras": [], "all-extras": False}, "--only main"),
        (
            {"with": ["docs,test"], "without": ["dev"], "extras": ["a b"]},
            "--with docs,test --without dev -E 'a b'",
        ),
        ({"all-groups": True, "all-extras": True}, "--all-groups --all-extras"),
        ({"only": ["x; rm -rf /"]}, "--only 'x; rm -rf /'"),
    ],
)
def test_install_flags_repeat_the_options_quoted(
    options: dict[str, object], flags: str
) -> None:
    from poetry_env_audit.seams.command import install_flags

    assert install_flags(_IO(options)) == flags


# ----------------------------------------------------------------- a real 2.1 lock

LOCK_2_1 = """\
# This file is automatically @generated by Poetry 2.5.1 and should not be changed by hand.

[[package]]
name = "anyio"
version = "4.6.0"
description = ""
optional = false
python-versions = ">=3.9"
groups = ["main"]
files = []

[package.dependencies]
idna = ">=2.8"
sniffio = ">=1.1"
pyparsing = ">=2.0.2,<3.0.5 || >3.0.5"
typing-extensions = {version = ">=4.1", markers = "python_version < \\"3.11\\""}
trio = {version = ">=0.26.1", optional = true}

[package.extras]
trio = ["trio (>=0.26.1)"]

[[package]]
name = "idna"
version = "3.10"
description = ""
optional = false
python-versions = ">=3.6"
groups = ["main"]
files = []

[metadata]
lock-version = "2.1"
python-versions = ">=3.9"
content-hash = "0"
"""


class _LockedProject:
    def __init__(self, lock: Path) -> None:
        from poetry.packages.locker import Locker

        self.locker = Locker(lock, {})


def test_planned_versions_of_a_2_1_lock_carry_the_locks_requirements(
    tmp_path: Path,
) -> None:
    """Poetry installs a 2.1 lock from ``locked_packages()``, packages without
    dependencies; the plan still knows what each planned version requires."""
    from poetry.installation.operations import Install
    from poetry.installation.operations import Update

    from poetry_env_audit.seams.plan import LockedPackages
    from poetry_env_audit.seams.plan import operations_to_changes

    lock = tmp_path / "poetry.lock"
    lock.write_text(LOCK_2_1)
    project = _LockedProject(lock)
    planned = {str(p.name): p for p in project.locker.locked_packages()}
    assert all(not p.requires for p in planned.values())  # what Poetry hands over
    ops = [
        Update(Package("anyio", "4.4.0"), planned["anyio"]),
        Install(planned["idna"]),
    ]
    bare = operations_to_changes(ops)
    assert [c.requires for c in bare] == [(), ()]
    anyio, idna = operations_to_changes(ops, LockedPackages(project))  # type: ignore[arg-type]
    parsed = {Requirement(r).name: Requirement(r) for r in anyio.requires}
    assert set(parsed) == {"idna", "sniffio", "pyparsing", "typing-extensions", "trio"}
    assert str(parsed["typing-extensions"].marker) == 'python_version < "3.11"'
    assert str(parsed["trio"].marker) == 'extra == "trio"'
    assert not parsed["pyparsing"].specifier.contains("3.0.5")
    assert parsed["pyparsing"].specifier.contains("3.0.6")
    assert anyio.unreadable == ()
    assert (idna.requires, idna.unreadable) == ((), ())


@pytest.mark.parametrize(
    ("version", "reresolve", "lock_2_1", "expected"),
    [
        ("2.5.1", False, True, True),
        ("2.0.1", False, True, True),
        ("2.5.1", True, True, False),
        ("2.5.1", False, False, False),
        ("1.8.5", False, True, False),
        ("2.5.1", False, None, False),  # a Locker that cannot tell
    ],
)
def test_when_a_plain_install_is_the_sync_plan_without_removals(
    monkeypatch: pytest.MonkeyPatch,
    version: str,
    reresolve: bool,
    lock_2_1: bool | None,
    expected: bool,
) -> None:
    import poetry_env_audit.seams as seams
    from poetry_env_audit.seams.plan import plain_install_is_sync_without_removals

    class Locker:
        def is_locked_groups_and_markers(self) -> bool:
            if lock_2_1 is None:
                raise AttributeError("no such method")
            return lock_2_1

    class Poetry:
        locker = Locker()

    monkeypatch.setattr(seams, "poetry_version", lambda: version)
    got = plain_install_is_sync_without_removals(Poetry(), reresolve=reresolve)  # type: ignore[arg-type]
    assert got is expected


def test_the_lock_poetry_read_is_reused_until_the_file_changes(
    tmp_path: Path,
) -> None:
    """LockedPackages takes the repository Poetry's own read returned (one
    parse of the lock per command) while the lock file is the same; from a
    lock written since (``add``, ``update``) it reads only the entries asked
    for, anew."""
    import os

    from poetry_env_audit.seams.plan import LockedPackages

    lock = tmp_path / "poetry.lock"
    lock.write_text(LOCK_2_1)
    project = _LockedProject(lock)
    reads: list[int] = []
    original = project.locker.locked_repository

    def counted() -> object:
        reads.append(1)
        return original()

    project.locker.locked_repository = counted  # type: ignore[method-assign,assignment]
    first = LockedPackages(project)  # type: ignore[arg-type]
    poetrys = project.locker.locked_repository()  # Poetry's own read, watched
    assert len(reads) == 1
    assert any(first.find("anyio", "4.6.0") is p for p in poetrys.packages)
    assert len(reads) == 1  # reused, not parsed again
    assert first.names() >= {"anyio", "idna"}

    stat = lock.stat()
    os.utime(lock, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    second = LockedPackages(project)  # type: ignore[arg-type]
    anyio = second.find("anyio", "4.6.0")
    assert anyio is not None
    assert all(anyio is not p for p in poetrys.packages)  # read anew
    assert {d.name for d in anyio.requires} >= {"idna", "sniffio"}
    assert [p.name for p in second.requirers("idna")] == ["anyio"]
    assert second.find("anyio", "9.9") is None
    assert second.names() >= {"anyio", "idna"}
    assert len(reads) == 1  # one entry read, not the whole lock again


def test_watching_a_poetry_without_a_locker_is_harmless() -> None:
    from poetry_env_audit.seams.plan import LockedPackages
    from poetry_env_audit.seams.plan import watch_locked_repository

    class NoLocker:
        pass

    watch_locked_repository(NoLocker())  # type: ignore[arg-type]
    assert LockedPackages(NoLocker()).packages() == []  # type: ignore[arg-type]


def test_only_the_reached_changes_get_their_requirements(tmp_path: Path) -> None:
    """With a reach, the lock's entries of other planned packages are never read."""
    from poetry.installation.operations import Install

    from poetry_env_audit.seams.plan import LockedPackages
    from poetry_env_audit.seams.plan import operations_to_changes

    lock = tmp_path / "poetry.lock"
    lock.write_text(LOCK_2_1)
    project = _LockedProject(lock)
    planned = {str(p.name): p for p in project.locker.locked_packages()}
    ops = [Install(planned["anyio"]), Install(planned["idna"])]
    asked: list[str] = []

    def reach(changes: object, requirements: object) -> set[str]:
        asked.append("reach")
        return {"anyio"}

    anyio, idna = operations_to_changes(ops, LockedPackages(project), reach)  # type: ignore[arg-type]
    assert asked == ["reach"]
    assert {Requirement(r).name for r in anyio.requires} >= {"idna", "sniffio"}
    assert idna.requires == ()


def test_poetry_plans_a_2_1_lock_from_the_names_only(tmp_path: Path) -> None:
    """The names-only locker gives Poetry's Installer the locked packages
    without dependencies, everything else as the Locker has it."""
    from poetry_env_audit.seams.plan import _NamesOnlyLocker

    lock = tmp_path / "poetry.lock"
    lock.write_text(LOCK_2_1)
    locker = _LockedProject(lock).locker
    names_only = _NamesOnlyLocker(locker)
    packages = names_only.locked_repository().packages
    assert sorted(str(p.name) for p in packages) == ["anyio", "idna"]
    assert all(not p.requires for p in packages)
    assert names_only.is_locked_groups_and_markers() is True


@pytest.mark.parametrize(
    ("answer", "expected"),
    [(True, True), (False, False), (RuntimeError("unreadable"), False)],
    ids=["2.1-lock", "older-lock", "unreadable"],
)
def test_plans_from_markers_only_with_a_readable_2_1_lock(
    answer: object, expected: bool
) -> None:
    """Poetry 2.x (the dev environment's) with a 2.1 lock plans from its markers."""
    from poetry_env_audit.seams.plan import plans_from_markers

    class FakeLocker:
        def is_locked_groups_and_markers(self) -> bool:
            if isinstance(answer, Exception):
                raise answer
            return bool(answer)

    class FakePoetry:
        locker = FakeLocker()

    assert plans_from_markers(FakePoetry()) is expected  # type: ignore[arg-type]


LOCK_REQUIRERS = """\
# This file is automatically @generated by Poetry 2.5.1 and should not be changed by hand.

[[package]]
name = "anyio"
version = "4.6.0"
description = ""
optional = false
python-versions = ">=3.9"
groups = ["main"]
files = []

[package.dependencies]
idna = ">=2.8"
Sniffio = ">=1.1"

[[package]]
name = "httpx"
version = "0.28.1"
description = ""
optional = false
python-versions = ">=3.8"
groups = ["main"]
files = []

[package.dependencies]
anyio = "*"
idna = [
    {version = ">=3", markers = "python_version >= \\"3.10\\""},
    {version = ">=2", markers = "python_version < \\"3.10\\""},
]

[[package]]
name = "idna"
version = "3.10"
description = ""
optional = false
python-versions = ">=3.6"
groups = ["main"]
files = []

[[package]]
name = "sniffio"
version = "1.3.1"
description = ""
optional = false
python-versions = ">=3.7"
groups = ["main"]
files = []

[metadata]
lock-version = "2.1"
python-versions = ">=3.9"
content-hash = "0"
"""


@pytest.mark.parametrize(
    "poetry_read_it", [True, False], ids=["poetrys-read", "entries"]
)
def test_requirers_name_every_locked_package_that_depends_on_it_in_lock_order(
    tmp_path: Path, poetry_read_it: bool
) -> None:
    """Who requires a package, from Poetry's own read of the lock or from the
    lock's entries: each requirer once (idna twice in httpx's table, one
    name written ``Sniffio``), in lock order, the same on every call."""
    from poetry_env_audit.seams.plan import LockedPackages

    lock = tmp_path / "poetry.lock"
    lock.write_text(LOCK_REQUIRERS)
    project = _LockedProject(lock)
    locked = LockedPackages(project)  # type: ignore[arg-type]
    if poetry_read_it:
        project.locker.locked_repository()
    expected = {
        "idna": ["anyio", "httpx"],
        "sniffio": ["anyio"],
        "anyio": ["httpx"],
        "httpx": [],
        "absent": [],
    }
    for _ in range(2):
        got = {name: [str(p.name) for p in locked.requirers(name)] for name in expected}
        assert got == expected
    # Each requirer is one package object, whichever name asks for it.
    [anyio_via_idna, _] = locked.requirers("idna")
    [anyio_via_sniffio] = locked.requirers("sniffio")
    assert anyio_via_idna is anyio_via_sniffio


PYPROJECT_WITH_TABLE = """\
[project]
name = "app"
version = "1.0"
requires-python = ">=3.9"

[tool.poetry-env-audit]
breaks = "warn"
lock = "always"
"""


def test_the_table_is_read_from_the_file_not_poetrys_tomlkit_document(
    tmp_path: Path,
) -> None:
    """The table is the file's (plain values); Poetry's document is not parsed
    for it."""
    from poetry.factory import Factory

    from poetry_env_audit.seams.project import project_table

    (tmp_path / "pyproject.toml").write_text(PYPROJECT_WITH_TABLE)
    poetry = Factory().create_poetry(tmp_path)
    table = project_table(poetry)
    assert table == {"breaks": "warn", "lock": "always"}
    assert type(table) is dict
    assert all(type(v) is str for v in table.values())
    assert getattr(poetry.pyproject, "_toml_document", None) is None


def test_the_table_falls_back_to_poetrys_document_when_the_file_cannot_be_read(
    tmp_path: Path,
) -> None:
    from poetry_env_audit.seams.project import project_table

    class PyProject:
        def __init__(self) -> None:
            self.data = {"tool": {"poetry-env-audit": {"breaks": "block"}}}

    class Poetry:
        def __init__(self) -> None:
            self.pyproject_path = tmp_path / "gone" / "pyproject.toml"
            self.pyproject = PyProject()

    assert project_table(Poetry()) == {"breaks": "block"}  # type: ignore[arg-type]
