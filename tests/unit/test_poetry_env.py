from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from poetry_env_audit.poetry_env import DistInfo
from poetry_env_audit.poetry_env import Problem
from poetry_env_audit.poetry_env import RequiredBy
from poetry_env_audit.poetry_env import VendoredDist
from poetry_env_audit.poetry_env import classify_installation
from poetry_env_audit.poetry_env import externally_managed_message
from poetry_env_audit.poetry_env import resolve_closure
from poetry_env_audit.poetry_env import scan_distributions
from poetry_env_audit.poetry_env import vendored_dists
from poetry_env_audit.poetry_env import version_satisfies
from unit.factories import MARKER_ENV
from unit.factories import dist
from unit.factories import index_of
from unit.factories import installation

if TYPE_CHECKING:
    from pathlib import Path


def closure_of(
    dists: list[DistInfo], roots: tuple[str, ...] = ("poetry",)
) -> tuple[dict[str, tuple[str | None, tuple[str, ...]]], list[str]]:
    """``{name: (version, roots)}`` of the closure and the problems' texts."""
    result = resolve_closure(index_of(dists), roots, MARKER_ENV)
    needed = {d.name: (d.version, d.roots) for d in result.needed}
    return needed, sorted(p.detail for p in result.problems)


# ------------------------------------------------------------- resolve_closure


@pytest.mark.parametrize(
    ("dists", "expected"),
    [
        ([dist("poetry", "2.5.1")], {"poetry"}),
        (
            [
                dist("poetry", "2.5.1", ["poetry-core>=2.1", "packaging>=24.2"]),
                dist("poetry-core", "2.1.3"),
                dist("packaging", "25.0"),
                dist("unrelated", "1.0", ["packaging"]),
            ],
            {"poetry", "poetry-core", "packaging"},
        ),
        (
            [
                dist("poetry", "2.5.1", ["cachecontrol>=0.14"]),
                dist("CacheControl", "0.14.2", ["msgpack>=0.5.2", "requests>=2.16"]),
                dist("msgpack", "1.1.0"),
                dist("requests", "2.32.3", ["urllib3>=1.21,<3", "idna>=2.5"]),
                dist("urllib3", "2.3.0"),
                dist("idna", "3.10"),
            ],
            {"poetry", "cachecontrol", "msgpack", "requests", "urllib3", "idna"},
        ),
    ],
    ids=["poetry-alone", "direct-only", "transitive"],
)
def test_closure_is_transitive_from_the_roots(
    dists: list[DistInfo], expected: set[str]
) -> None:
    needed, problems = closure_of(dists)
    assert set(needed) == expected
    assert problems == []


@pytest.mark.parametrize(
    ("requirement", "requirer_extras", "included"),
    [
        ('legacy-only; python_version < "3"', "", False),
        ('modern-only; python_version >= "3.8"', "", True),
        ('windows-only; sys_platform == "win32"', "", False),
        ('tomli; python_version < "3.11"', "", False),
        ('filelock; extra == "filecache"', "", False),
        ('filelock; extra == "filecache"', "[filecache]", True),
        ('filelock; extra == "filecache"', "[redis]", False),
        ('filelock; extra == "FileCache"', "[filecache]", True),
        (
            'filelock; extra == "filecache" and python_version < "3"',
            "[filecache]",
            False,
        ),
    ],
    ids=[
        "py2-marker-excluded",
        "py3-marker-included",
        "other-platform-excluded",
        "backport-not-needed",
        "extra-not-asked",
        "extra-asked",
        "other-extra-asked",
        "extra-names-normalised",
        "extra-and-false-marker",
    ],
)
def test_markers_and_extras_are_evaluated(
    requirement: str, requirer_extras: str, included: bool
) -> None:
    name = requirement.split(";")[0].strip()
    dists = [
        dist("poetry", "2.5.1", [f"cachecontrol{requirer_extras}>=0.14"]),
        dist("cachecontrol", "0.14.2", [requirement]),
        dist(name, "1.0"),
    ]
    needed, problems = closure_of(dists)
    assert (name in needed) is included
    assert problems == []


def test_extra_pulls_its_dependency_and_is_attributed() -> None:
    index = index_of(
        [
            dist("poetry", "2.5.1", ["cachecontrol[filecache]>=0.14"]),
            dist(
                "CacheControl",
                "0.14.2",
                ["msgpack>=0.5.2", 'filelock>=3.8.0; extra == "filecache"'],
            ),
            dist("msgpack", "1.1.0"),
            dist("filelock", "3.16.1"),
        ]
    )
    result = resolve_closure(index, ("poetry",), MARKER_ENV)
    by_name = {d.name: d for d in result.needed}
    assert by_name["filelock"].required_by == (
        RequiredBy(
            package="cachecontrol",
            version="0.14.2",
            requirement="filelock>=3.8.0",
            specifier=">=3.8.0",
        ),
    )
    assert by_name["cachecontrol"].required_by[0].requirement == (
        "cachecontrol[filecache]>=0.14"
    )
    assert by_name["cachecontrol"].display_name == "CacheControl"
    assert result.problems == ()


def test_extra_asked_by_a_later_requirer_is_still_followed() -> None:
    # ``a`` reaches cachecontrol without the extra first; ``b`` asks for it.
    dists = [
        dist("poetry", "2.5.1", ["a", "b"]),
        dist("a", "1", ["cachecontrol"]),
        dist("b", "1", ["cachecontrol[filecache]"]),
        dist("cachecontrol", "0.14.2", ['filelock; extra == "filecache"']),
        dist("filelock", "3.16.1"),
    ]
    needed, problems = closure_of(dists)
    assert "filelock" in needed
    assert problems == []


def test_two_roots_are_both_attributed() -> None:
    dists = [
        dist("poetry", "2.5.1", ["packaging>=24.2", "dulwich>=0.22"]),
        dist("poetry-plugin-export", "1.9.0", ["packaging>=23", "jinja2"], plugin=True),
        dist("packaging", "25.0"),
        dist("dulwich", "0.22.8"),
        dist("jinja2", "3.1.6"),
    ]
    needed, problems = closure_of(dists, ("poetry", "poetry-plugin-export"))
    assert needed == {
        "poetry": ("2.5.1", ("poetry",)),
        "poetry-plugin-export": ("1.9.0", ("poetry-plugin-export",)),
        "packaging": ("25.0", ("poetry", "poetry-plugin-export")),
        "dulwich": ("0.22.8", ("poetry",)),
        "jinja2": ("3.1.6", ("poetry-plugin-export",)),
    }
    assert problems == []


def test_roots_are_canonicalised() -> None:
    needed, _ = closure_of(
        [dist("poetry", "2.5.1"), dist("My_Plugin", "1.0", plugin=True)],
        ("poetry", "My_Plugin"),
    )
    assert needed["my-plugin"] == ("1.0", ("my-plugin",))


def test_edges_keep_every_requirer_sorted() -> None:
    index = index_of(
        [
            dist("poetry", "2.5.1", ["zeta", "alpha", "packaging>=24.2"]),
            dist("zeta", "1", ["packaging<26"]),
            dist("alpha", "1", ["packaging>=22"]),
            dist("packaging", "25.0"),
        ]
    )
    result = resolve_closure(index, ("poetry",), MARKER_ENV)
    packaging = next(d for d in result.needed if d.name == "packaging")
    assert [(r.package, r.requirement) for r in packaging.required_by] == [
        ("alpha", "packaging>=22"),
        ("poetry", "packaging>=24.2"),
        ("zeta", "packaging<26"),
    ]


@pytest.mark.parametrize(
    ("dists", "problem"),
    [
        (
            [dist("poetry", "2.5.1", ["packaging>=24.2"])],
            "poetry 2.5.1 requires packaging>=24.2, which is not installed",
        ),
        (
            [
                dist("poetry", "2.5.1", ["requests>=2.26"]),
                dist("requests", "2.32.3", ["idna>=2.5,<4"]),
            ],
            "requests 2.32.3 requires idna<4,>=2.5, which is not installed",
        ),
        (
            [
                dist("poetry", "2.5.1", ["packaging>=24.2"]),
                dist("Packaging", "23.2"),
            ],
            "poetry 2.5.1 requires packaging>=24.2, but Packaging 23.2 is installed",
        ),
        (
            [
                dist("poetry", "2.5.1", ["dulwich>=0.22,<0.23"]),
                dist("dulwich", "not-a-version"),
            ],
            "poetry 2.5.1 requires dulwich<0.23,>=0.22,"
            " but dulwich not-a-version is installed",
        ),
    ],
    ids=["missing", "missing-transitive", "conflict", "invalid-installed-version"],
)
def test_unmet_requirements_are_problems(dists: list[DistInfo], problem: str) -> None:
    _, problems = closure_of(dists)
    assert problems == [problem]


def test_missing_dependency_is_needed_without_a_version() -> None:
    result = resolve_closure(
        index_of([dist("poetry", "2.5.1", ["packaging>=24.2"])]),
        ("poetry",),
        MARKER_ENV,
    )
    (missing,) = (d for d in result.needed if d.name == "packaging")
    assert (missing.version, missing.location) == (None, None)
    (problem,) = result.problems
    assert problem.package == "packaging"
    assert problem.installed is None
    assert problem.required_by is not None
    assert problem.required_by.specifier == ">=24.2"


def test_conflict_between_two_plugins() -> None:
    dists = [
        dist("poetry", "2.5.1"),
        dist("plugin-a", "1.0", ["tomlkit>=0.13"], plugin=True),
        dist("plugin-b", "2.0", ["tomlkit<0.12"], plugin=True),
        dist("tomlkit", "0.13.2"),
    ]
    needed, problems = closure_of(dists, ("poetry", "plugin-a", "plugin-b"))
    assert needed["tomlkit"] == ("0.13.2", ("plugin-a", "plugin-b"))
    assert problems == [
        "plugin-b 2.0 requires tomlkit<0.12, but tomlkit 0.13.2 is installed"
    ]


def test_conflict_when_the_installed_version_satisfies_neither_plugin() -> None:
    dists = [
        dist("poetry", "2.5.1"),
        dist("plugin-a", "1.0", ["tomlkit>=0.13"], plugin=True),
        dist("plugin-b", "2.0", ["tomlkit<0.12"], plugin=True),
        dist("tomlkit", "0.12.5"),
    ]
    _, problems = closure_of(dists, ("poetry", "plugin-a", "plugin-b"))
    assert problems == [
        "plugin-a 1.0 requires tomlkit>=0.13, but tomlkit 0.12.5 is installed",
        "plugin-b 2.0 requires tomlkit<0.12, but tomlkit 0.12.5 is installed",
    ]


@pytest.mark.parametrize(
    "raw",
    ["packaging>=>24", "not a requirement at all", 'foo; python_version >>> "3"', ""],
    ids=["bad-specifier", "words", "bad-marker", "empty"],
)
def test_unreadable_requirement_is_a_problem_not_an_exception(raw: str) -> None:
    index = index_of(
        [dist("poetry", "2.5.1", [raw, "packaging>=24.2"]), dist("packaging", "25.0")]
    )
    result = resolve_closure(index, ("poetry",), MARKER_ENV)
    assert {d.name for d in result.needed} == {"poetry", "packaging"}
    (problem,) = result.problems
    assert problem.package == "poetry"
    assert problem.installed == "2.5.1"
    assert problem.required_by is None
    assert problem.detail.startswith(
        f"poetry 2.5.1 has unreadable metadata: requirement {raw!r}"
    )


@pytest.mark.parametrize(
    "raw",
    ['foo; python_version ~= "abc"', 'foo; platform_release ~= "6"'],
    ids=["compatible-with-word", "compatible-with-one-component"],
)
def test_uncomparable_marker_is_a_problem_not_an_exception(raw: str) -> None:
    # Regression: Marker.evaluate() raised UndefinedComparison out of
    # resolve_closure for a marker that parses but cannot be compared.
    index = index_of(
        [dist("poetry", "2.5.1", [raw, "packaging>=24.2"]), dist("packaging", "25.0")]
    )
    result = resolve_closure(index, ("poetry",), MARKER_ENV)
    assert {d.name for d in result.needed} == {"poetry", "packaging"}
    (problem,) = result.problems
    assert (problem.package, problem.installed, problem.required_by) == (
        "poetry",
        "2.5.1",
        None,
    )
    assert problem.detail.startswith(
        f"poetry 2.5.1 has unreadable metadata: marker of {raw!r}"
    )


@pytest.mark.parametrize(
    "dists",
    [
        [dist("poetry", "2.5.1", ["a"]), dist("a", "1", ["poetry"])],
        [
            dist("poetry", "2.5.1", ["a"]),
            dist("a", "1", ["b[x]"]),
            dist("b", "1", ['a; extra == "x"', "c"]),
            dist("c", "1", ["a", "b[x]"]),
        ],
        [dist("poetry", "2.5.1", ["a"]), dist("a", "1", ["a[self]"])],
    ],
    ids=["two-cycle", "cycle-through-extras", "self-reference"],
)
def test_cycles_terminate(dists: list[DistInfo]) -> None:
    needed, problems = closure_of(dists)
    assert set(needed) == {d.name for d in dists}
    assert problems == []


def test_missing_root_is_needed_but_not_a_problem() -> None:
    needed, problems = closure_of([dist("packaging", "25.0")])
    assert needed == {"poetry": (None, ("poetry",))}
    assert problems == []


def test_required_by_and_problem_describe_themselves() -> None:
    edge = RequiredBy("poetry", "2.5.1", "packaging>=24.2", ">=24.2")
    assert edge.describe() == "poetry 2.5.1 requires packaging>=24.2"
    assert not edge.allows(None)
    assert edge.allows("24.2")
    assert Problem("x", None, None, "text").describe() == "text"


# ------------------------------------------------------------ version_satisfies


@pytest.mark.parametrize(
    ("version", "specifier", "expected"),
    [
        ("25.0", ">=24.2", True),
        ("24.1", ">=24.2", False),
        ("1.0", "", True),
        ("not-a-version", "", True),
        ("", "", True),
        ("not-a-version", ">=1", False),
        ("", ">=1", False),
        ("2.0.0rc1", ">=1.0", True),
        ("2.0.0rc1", ">=2.0.0rc1", True),
        ("2.0.0b1", ">=2.0", False),
        ("1.0.dev0", "<2", True),
        ("3.0a1", "==3.0a1", True),
        ("1.0.post1", ">1.0", False),
        ("1.0.post1", ">=1.0", True),
        ("1.0+local", "==1.0", True),
        ("1.4.2", "~=1.4", True),
        ("2.0", "~=1.4", False),
        ("1.0", ">=>1", False),
        ("1.0", "banana", False),
        ("1.0", ">=1,<2,!=1.0", False),
    ],
    ids=[
        "satisfied",
        "below",
        "empty-specifier",
        "empty-specifier-invalid-version",
        "empty-specifier-empty-version",
        "invalid-version",
        "empty-version",
        "installed-prerelease-counts",
        "prerelease-bound",
        "prerelease-below-bound",
        "dev-release-counts",
        "prerelease-pinned",
        "exclusive-bound-excludes-post-release",
        "post-release",
        "local-version",
        "compatible",
        "compatible-above",
        "invalid-specifier",
        "garbage-specifier",
        "excluded",
    ],
)
def test_version_satisfies(version: str, specifier: str, expected: bool) -> None:
    assert version_satisfies(version, specifier) is expected


# ----------------------------------------------------------- classify_installation


def classify_in(
    prefix: Path,
    *,
    base_prefix: Path | None = None,
    env_dists: tuple[str, ...] = ("poetry", "packaging"),
    needed: tuple[str, ...] = ("poetry", "packaging"),
    poetry_location: str | None = None,
    user_site: str | None = None,
    externally_managed: str | None = None,
    poetry_home: str | None = None,
) -> tuple[str, bool, bool, str | None, tuple[str, ...]]:
    prefix.mkdir(parents=True, exist_ok=True)
    inst = classify_installation(
        prefix=str(prefix),
        base_prefix=str(prefix if base_prefix is None else base_prefix),
        poetry_location=poetry_location,
        user_site=user_site,
        env_dists=env_dists,
        needed=needed,
        externally_managed=externally_managed,
        poetry_home=poetry_home,
    )
    return (
        inst.kind,
        inst.isolated,
        inst.externally_managed,
        inst.externally_managed_message,
        inst.others,
    )


def test_pipx_by_metadata_file(tmp_path: Path) -> None:
    prefix = tmp_path / "somewhere" / "poetry"
    prefix.mkdir(parents=True)
    (prefix / "pipx_metadata.json").write_text("{}")
    assert classify_in(prefix, base_prefix=tmp_path / "base") == (
        "pipx",
        True,
        False,
        None,
        (),
    )


def test_pipx_by_path_even_with_other_packages(tmp_path: Path) -> None:
    prefix = tmp_path / ".local" / "share" / "pipx" / "venvs" / "poetry"
    result = classify_in(
        prefix, base_prefix=tmp_path / "base", env_dists=("poetry", "black")
    )
    assert result == ("pipx", True, False, None, ("black",))


@pytest.mark.parametrize(
    ("home", "parent"),
    [(None, "pypoetry"), (None, "PyPoetry"), ("custom-home", "custom-home")],
    ids=["default-location", "case-insensitive", "poetry-home"],
)
def test_official_installer(tmp_path: Path, home: str | None, parent: str) -> None:
    prefix = tmp_path / parent / "venv"
    result = classify_in(
        prefix,
        base_prefix=tmp_path / "base",
        poetry_home=str(tmp_path / home) if home else None,
    )
    assert result[:2] == ("installer", True)


def test_conda(tmp_path: Path) -> None:
    (tmp_path / "conda" / "conda-meta").mkdir(parents=True)
    result = classify_in(tmp_path / "conda", externally_managed="managed by conda")
    assert result == ("conda", False, True, "managed by conda", ())


def test_user_site(tmp_path: Path) -> None:
    user_site = tmp_path / "user-site"
    user_site.mkdir()
    result = classify_in(
        tmp_path / "usr", poetry_location=str(user_site), user_site=str(user_site)
    )
    assert result[:2] == ("user", False)


@pytest.mark.parametrize(
    ("env_dists", "isolated", "others"),
    [
        (("poetry", "packaging"), True, ()),
        (("poetry", "packaging", "pip", "setuptools", "wheel"), True, ()),
        (("poetry", "packaging", "requests", "black"), False, ("black", "requests")),
    ],
    ids=["only-poetry", "bootstrap-dists-ignored", "project-packages"],
)
def test_venv_is_isolated_only_without_other_packages(
    tmp_path: Path, env_dists: tuple[str, ...], isolated: bool, others: tuple[str, ...]
) -> None:
    result = classify_in(
        tmp_path / "venv",
        base_prefix=tmp_path / "base",
        env_dists=env_dists,
        externally_managed="the base is managed",
    )
    # A venv is never externally managed, whatever its base interpreter says.
    assert result == ("venv", isolated, False, None, others)


@pytest.mark.parametrize(
    ("marker", "managed"),
    [(None, False), ("Use apt install python3-xyz.", True)],
    ids=["plain", "pep-668"],
)
def test_system(tmp_path: Path, marker: str | None, managed: bool) -> None:
    result = classify_in(tmp_path / "usr", externally_managed=marker)
    assert result == ("system", False, managed, marker, ())


@pytest.mark.parametrize(
    ("kind", "isolated", "others", "text"),
    [
        ("pipx", True, (), "isolated (pipx)"),
        ("venv", False, (), "shared (a virtual environment)"),
        (
            "system",
            False,
            ("a", "b"),
            "shared (the system interpreter, with 2 other packages: a, b)",
        ),
        (
            "user",
            False,
            ("a", "b", "c", "d"),
            "shared (the user site-packages, with 4 other packages: a, b, c, ...)",
        ),
        ("weird", False, (), "shared (weird)"),
    ],
    ids=["isolated", "shared", "others", "many-others", "unknown-kind"],
)
def test_installation_describe(
    kind: str, isolated: bool, others: tuple[str, ...], text: str
) -> None:
    assert installation(kind, isolated=isolated, others=others).describe() == text


# ----------------------------------------------------- externally_managed_message


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, None),
        (
            "[externally-managed]\nError=Use apt.\n  Or a venv.\n",
            "Use apt.\nOr a venv.",
        ),
        ("[externally-managed]\nerror = 100% managed\n", "100% managed"),
        ("[externally-managed]\nError=\n", "DEFAULT"),
        ("[externally-managed]\n", "DEFAULT"),
        ("no section header\n", "DEFAULT"),
        ("[externally-managed]\nError=a\nError=b\n", "DEFAULT"),
        (b"[externally-managed]\nError=\xff\xfe\n", "DEFAULT"),
    ],
    ids=[
        "absent",
        "message",
        "percent-not-interpolated",
        "empty-error",
        "no-error-key",
        "not-ini",
        "duplicate-key",
        "not-utf8",
    ],
)
def test_externally_managed_message(
    tmp_path: Path, content: str | bytes | None, expected: str | None
) -> None:
    marker = tmp_path / "EXTERNALLY-MANAGED"
    if isinstance(content, bytes):
        marker.write_bytes(content)
    elif content is not None:
        marker.write_text(content, encoding="utf-8")
    message = externally_managed_message(tmp_path)
    if expected == "DEFAULT":
        assert message is not None
        assert str(marker) in message
        assert "PEP 668" in message
    else:
        assert message == expected


def test_externally_managed_directory_is_not_a_marker(tmp_path: Path) -> None:
    (tmp_path / "EXTERNALLY-MANAGED").mkdir()
    assert externally_managed_message(str(tmp_path)) is None


# ------------------------------------------------------------ scan_distributions


def make_dist_info(
    site: Path,
    name: str,
    version: str,
    requires: tuple[str, ...] = (),
    entry_points: str = "",
) -> None:
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    lines += [f"Requires-Dist: {r}" for r in requires]
    (info / "METADATA").write_text("\n".join(lines) + "\n", encoding="utf-8")
    if entry_points:
        (info / "entry_points.txt").write_text(entry_points, encoding="utf-8")


def test_scan_distributions(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    make_dist_info(first, "Poetry", "2.5.1", ("packaging>=24.2",))
    make_dist_info(
        first,
        "poetry-plugin-export",
        "1.9.0",
        entry_points=(
            "[poetry.application.plugin]\nexport = poetry_plugin_export.plugins:P\n"
            "[console_scripts]\nx = y:z\n"
        ),
    )
    make_dist_info(second, "packaging", "25.0")
    make_dist_info(second, "poetry", "1.0.0")  # shadowed by the first one

    found = scan_distributions([str(first), str(second), str(tmp_path / "absent")])

    assert sorted(found) == ["packaging", "poetry", "poetry-plugin-export"]
    assert found["poetry"] == DistInfo(
        name="poetry",
        display_name="Poetry",
        version="2.5.1",
        location=str(first.resolve()),
        requires=("packaging>=24.2",),
        plugin_groups=(),
    )
    assert found["poetry-plugin-export"].plugin_groups == ("poetry.application.plugin",)
    assert found["packaging"].location == str(second.resolve())


def test_scan_distributions_skips_a_dist_without_a_name(tmp_path: Path) -> None:
    make_dist_info(tmp_path, "packaging", "25.0")
    info = tmp_path / "nameless-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nVersion: 1.0\n", encoding="utf-8"
    )
    (tmp_path / "no_metadata-1.0.dist-info").mkdir()
    assert sorted(scan_distributions([str(tmp_path)])) == ["packaging"]


def test_scan_distributions_resolves_symlinked_dirs(tmp_path: Path) -> None:
    real = tmp_path / "real"
    make_dist_info(real, "packaging", "25.0")
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    assert scan_distributions([str(link)])["packaging"].location == str(real.resolve())


# ---------------------------------------------------------------- vendored_dists


def test_vendored_dists(tmp_path: Path) -> None:
    site = tmp_path / "site"
    vendor = site / "poetry" / "core" / "_vendor"
    make_dist_info(vendor, "packaging", "24.2")
    make_dist_info(vendor, "Lark", "1.2.2")
    core = dist("poetry-core", "2.1.3", location=str(site))
    assert vendored_dists(core) == (
        VendoredDist(name="lark", version="1.2.2", location=str(vendor)),
        VendoredDist(name="packaging", version="24.2", location=str(vendor)),
    )


def test_no_vendored_dists(tmp_path: Path) -> None:
    assert vendored_dists(None) == ()
    assert vendored_dists(dist("poetry-core", "2.1.3", location=str(tmp_path))) == ()


@pytest.mark.parametrize("marked", [True, False])
def test_an_environment_poetry_self_isolate_made_is_known(
    tmp_path: Path, marked: bool
) -> None:
    from poetry_env_audit.poetry_env import ISOLATED_MARKER

    prefix = tmp_path / "isolated-venv"
    prefix.mkdir()
    if marked:
        (prefix / ISOLATED_MARKER).write_text("")
    inst = classify_installation(
        prefix=str(prefix),
        base_prefix=str(tmp_path / "base"),
        poetry_location=None,
        user_site=None,
        env_dists=("poetry",),
        needed=("poetry",),
        externally_managed=None,
    )
    assert inst.self_isolated is marked


def test_requirement_too_deep_to_parse_is_unverifiable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # packaging < 26 raises RecursionError on a marker ~1,200 levels deep
    # (26 refuses it as invalid): either way the requirement is unverifiable.
    from poetry_env_audit import poetry_env

    deep = "packaging>=1; " + "(" * 1200 + 'os_name == "posix"' + ")" * 1200
    real = poetry_env._requirement

    def parse(raw: str) -> object:
        if raw == deep:
            raise RecursionError("maximum recursion depth exceeded")
        return real(raw)

    monkeypatch.setattr(poetry_env, "_requirement", parse)
    index = index_of(
        [dist("poetry", "2.5.1", [deep, "tomlkit"]), dist("tomlkit", "0.13.2")]
    )
    result = resolve_closure(index, ("poetry",), MARKER_ENV)
    assert result.problems == ()
    (item,) = result.unverifiable
    assert (item.package, item.requirer, item.version) == (
        "packaging",
        "poetry",
        "2.5.1",
    )
    assert item.reason == "nested too deeply to parse"
    assert len(item.describe()) < 200


def test_real_deep_marker_never_raises() -> None:
    deep = "packaging>=1; " + "(" * 1200 + 'os_name == "posix"' + ")" * 1200
    index = index_of([dist("poetry", "2.5.1", [deep])])
    result = resolve_closure(index, ("poetry",), MARKER_ENV)
    assert [u.package for u in result.unverifiable] == ["packaging"]


@pytest.mark.parametrize(
    ("raw", "name"),
    [("Foo.Bar>=1", "foo-bar"), ("x_y ; (", "x-y"), ("(((", None), ("a", "a")],
)
def test_requirement_name_reads_only_the_leading_name(
    raw: str, name: str | None
) -> None:
    from poetry_env_audit.poetry_env import requirement_name

    assert requirement_name(raw) == name


def test_arbitrary_equality_is_evaluated() -> None:
    index = index_of(
        [dist("poetry", "2.5.1", ["packaging===26.4"]), dist("packaging", "26.4")]
    )
    assert resolve_closure(index, ("poetry",), MARKER_ENV).problems == ()
    index = index_of(
        [dist("poetry", "2.5.1", ["packaging===26.4"]), dist("packaging", "23.0")]
    )
    (problem,) = resolve_closure(index, ("poetry",), MARKER_ENV).problems
    assert (
        "requires packaging===26.4, but packaging 23.0 is installed" in problem.detail
    )
