"""The pure part of --assume-shared / --poetry: options, the cache, the image."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from poetry_env_audit.assumed import CACHE_TTL
from poetry_env_audit.assumed import IMAGE_SITE
from poetry_env_audit.assumed import Assumed
from poetry_env_audit.assumed import Assumption
from poetry_env_audit.assumed import PluginSpec
from poetry_env_audit.assumed import PythonTarget
from poetry_env_audit.assumed import ResolvedClosure
from poetry_env_audit.assumed import ResolvedPackage
from poetry_env_audit.assumed import assumption_from_options
from poetry_env_audit.assumed import cache_key
from poetry_env_audit.assumed import cache_path
from poetry_env_audit.assumed import image_environment
from poetry_env_audit.assumed import image_index
from poetry_env_audit.assumed import image_machine
from poetry_env_audit.assumed import image_marker_env
from poetry_env_audit.assumed import image_target
from poetry_env_audit.assumed import parse_plugin
from poetry_env_audit.assumed import parse_python
from poetry_env_audit.assumed import read_cache
from poetry_env_audit.assumed import string_markers
from poetry_env_audit.assumed import write_cache
from poetry_env_audit.audit import assess
from poetry_env_audit.errors import AuditError
from poetry_env_audit.findings import Verdict
from poetry_env_audit.plan import Action
from poetry_env_audit.policy import default_policy
from poetry_env_audit.render.json import to_dict
from poetry_env_audit.render.text import render as render_text
from unit.factories import MARKER_ENV
from unit.factories import change

if TYPE_CHECKING:
    from pathlib import Path

NOW = 1_800_000_000.0


def closure(**overrides: object) -> ResolvedClosure:
    values: dict[str, object] = {
        "poetry": "1.8.5",
        "python": "3.11",
        "plugins": (),
        "sources": ("http://127.0.0.1:1/simple",),
        "resolved_at": NOW,
        "packages": (
            ResolvedPackage(
                "poetry",
                "poetry",
                "1.8.5",
                (
                    "packaging>=23.1",
                    'xattr>=1.0; sys_platform == "darwin"',
                    'tomli>=2; python_version < "3.11"',
                    "cachecontrol[filecache]>=0.14",
                ),
            ),
            ResolvedPackage("packaging", "packaging", "24.2"),
            ResolvedPackage("xattr", "xattr", "1.1.0"),
            ResolvedPackage("tomli", "tomli", "2.0.1"),
            ResolvedPackage(
                "cachecontrol",
                "CacheControl",
                "0.14.3",
                ('filelock>=3.8; extra == "filecache"',),
            ),
            ResolvedPackage("filelock", "filelock", "3.16.1"),
        ),
    }
    values.update(overrides)
    return ResolvedClosure(**values)  # type: ignore[arg-type]


# --- options ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3.11", PythonTarget(3, 11)),
        (" 3.9.18 ", PythonTarget(3, 9, 18)),
        ("3.15", PythonTarget(3, 15)),
    ],
)
def test_parse_python(text: str, expected: PythonTarget) -> None:
    assert parse_python(text) == expected


@pytest.mark.parametrize("text", ["3", "2.7", "3.x", "3.11.7.1", "py3.11", ""])
def test_parse_python_refuses(text: str) -> None:
    with pytest.raises(AuditError, match="--python"):
        parse_python(text)


@pytest.mark.parametrize(
    ("target", "text", "full", "info"),
    [
        (PythonTarget(3, 11), "3.11", "3.11.99", (3, 11, 99)),
        (PythonTarget(3, 11, 0), "3.11.0", "3.11.0", (3, 11, 0)),
        (PythonTarget(3, 9, 18), "3.9.18", "3.9.18", (3, 9, 18)),
    ],
)
def test_python_target_forms(
    target: PythonTarget, text: str, full: str, info: tuple[int, int, int]
) -> None:
    assert (target.text, target.full, target.info) == (text, full, info)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("poetry-plugin-export", PluginSpec("poetry-plugin-export")),
        ("Poetry_Plugin_Export==1.9.0", PluginSpec("poetry-plugin-export", "1.9.0")),
        ("poetry-env-audit==0.1.0", PluginSpec("poetry-env-audit", "0.1.0")),
    ],
)
def test_parse_plugin(text: str, expected: PluginSpec) -> None:
    assert parse_plugin(text) == expected


@pytest.mark.parametrize(
    "text", ["x>=1", "x==", "x==not a version", "-x", "x[extra]", "x==1; os_name"]
)
def test_parse_plugin_refuses(text: str) -> None:
    with pytest.raises(AuditError, match="--with-plugin"):
        parse_plugin(text)


def test_plugin_spec_text() -> None:
    assert PluginSpec("a").text == "a"
    assert PluginSpec("a", "1.0").text == "a==1.0"


def test_no_assumption_without_the_flags() -> None:
    assert (
        assumption_from_options(
            assume_shared=False, poetry=None, python=None, index_url=None, plugins=()
        )
        is None
    )


def test_assume_shared_alone() -> None:
    found = assumption_from_options(
        assume_shared=True, poetry=None, python=None, index_url=None, plugins=()
    )
    assert found == Assumption()
    assert found is not None
    assert not found.image
    assert found.flags() == "--assume-shared"


def test_poetry_implies_shared_and_keeps_every_option() -> None:
    found = assumption_from_options(
        assume_shared=False,
        poetry="1.8.5",
        python="3.11",
        index_url=" http://127.0.0.1:9/simple/ ",
        plugins=["poetry-plugin-export==1.8.0"],
    )
    assert found == Assumption(
        poetry="1.8.5",
        python=PythonTarget(3, 11),
        index_url="http://127.0.0.1:9/simple/",
        plugins=(PluginSpec("poetry-plugin-export", "1.8.0"),),
    )
    assert found.image
    assert found.flags() == (
        "--poetry 1.8.5 --python 3.11 --with-plugin poetry-plugin-export==1.8.0"
        " --index-url http://127.0.0.1:9/simple/"
    )


def test_poetry_flags_without_python() -> None:
    assert Assumption(poetry="2.5.1").flags() == "--poetry 2.5.1"


@pytest.mark.parametrize(
    ("python", "index_url", "plugins", "named"),
    [
        ("3.11", None, (), "--python"),
        (None, "http://x/simple", (), "--index-url"),
        (None, None, ("p",), "--with-plugin"),
    ],
)
def test_image_options_need_poetry(
    python: str | None, index_url: str | None, plugins: tuple[str, ...], named: str
) -> None:
    with pytest.raises(AuditError, match=f"{named} needs --poetry VERSION"):
        assumption_from_options(
            assume_shared=True,
            poetry=None,
            python=python,
            index_url=index_url,
            plugins=plugins,
        )


@pytest.mark.parametrize("plugins", [("poetry",), ("a", "A")])
def test_each_plugin_once_and_not_poetry(plugins: tuple[str, ...]) -> None:
    with pytest.raises(AuditError, match="each plugin once"):
        assumption_from_options(
            assume_shared=False,
            poetry="2.5.1",
            python=None,
            index_url=None,
            plugins=plugins,
        )


@pytest.mark.parametrize("version", ["latest", "", "2.5.1; rm"])
def test_poetry_version_must_be_a_version(version: str) -> None:
    with pytest.raises(AuditError, match="--poetry"):
        assumption_from_options(
            assume_shared=False, poetry=version, python=None, index_url=None, plugins=()
        )


# --- the cache --------------------------------------------------------------------


def test_cache_key_depends_on_every_part_but_order() -> None:
    base = cache_key("1.8.5", "3.11", ["a", "b"], ["p"])
    assert base == cache_key("1.8.5", "3.11", ["b", "a"], ["p"])
    assert (
        len(
            {
                base,
                cache_key("1.8.4", "3.11", ["a", "b"], ["p"]),
                cache_key("1.8.5", "3.12", ["a", "b"], ["p"]),
                cache_key("1.8.5", "3.11", ["a"], ["p"]),
                cache_key("1.8.5", "3.11", ["a", "b"], []),
            }
        )
        == 5
    )


def test_cache_round_trip(tmp_path: Path) -> None:
    path = cache_path(tmp_path, "k")
    assert path == tmp_path / "env-audit" / "closures" / "k.json"
    original = closure(plugins=("poetry-plugin-export",))
    write_cache(path, original)
    found = read_cache(path, now=NOW + 10)
    assert found is not None
    assert found.cached
    assert found == ResolvedClosure(**{**original.__dict__, "cached": True})
    assert not list(path.parent.glob(".closure-*"))  # no temporary file left


@pytest.mark.parametrize(
    ("age", "used"),
    [(0, True), (CACHE_TTL - 1, True), (CACHE_TTL, False), (CACHE_TTL + 60, False)],
)
def test_cache_is_used_for_24_hours(tmp_path: Path, age: float, used: bool) -> None:
    path = cache_path(tmp_path, "k")
    write_cache(path, closure())
    assert (read_cache(path, now=NOW + age) is not None) is used


def test_cache_from_the_future_is_not_used(tmp_path: Path) -> None:
    path = cache_path(tmp_path, "k")
    write_cache(path, closure())
    assert read_cache(path, now=NOW - 5) is None


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        json.dumps({"format": 99}),
        json.dumps({"format": 1, "poetry": "1.8.5"}),
    ],
)
def test_unreadable_cache_is_no_cache(tmp_path: Path, text: str) -> None:
    path = tmp_path / "c.json"
    path.write_text(text)
    assert read_cache(path, now=NOW) is None


def test_missing_cache_is_no_cache(tmp_path: Path) -> None:
    assert read_cache(tmp_path / "absent.json", now=NOW) is None


def test_unwritable_cache_is_no_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    write_cache(blocker / "sub" / "c.json", closure())  # parent is a file
    assert not (blocker / "sub").exists()


# --- the image ------------------------------------------------------------------


def test_image_marker_env_is_linux_cpython_of_that_python() -> None:
    base = {**MARKER_ENV, "sys_platform": "darwin", "platform_system": "Darwin"}
    env = image_marker_env(base, PythonTarget(3, 9), "aarch64")
    assert env["python_version"] == "3.9"
    # The newest 3.9: markers such as python_full_version >= "3.9.2" hold.
    assert env["python_full_version"] == "3.9.99"
    assert env["implementation_version"] == "3.9.99"
    assert env["interpreter_version"] == "cp39"
    assert env["version_info"] == (3, 9, 99, "final", 0)
    assert (env["sys_platform"], env["platform_system"], env["os_name"]) == (
        "linux",
        "Linux",
        "posix",
    )
    assert env["platform_machine"] == "aarch64"
    assert env["platform_release"] == MARKER_ENV["platform_release"]
    assert "version_info" not in string_markers(env)
    assert string_markers(env)["python_version"] == "3.9"


@pytest.mark.parametrize(
    ("machine", "system", "expected"),
    [
        ("x86_64", "Linux", "x86_64"),
        ("aarch64", "Linux", "aarch64"),
        ("arm64", "Darwin", "aarch64"),
        ("AMD64", "Windows", "x86_64"),
    ],
)
def test_image_machine(machine: str, system: str, expected: str) -> None:
    assert image_machine(machine, system) == expected


def test_image_index_keeps_what_the_image_installs() -> None:
    markers = string_markers(
        image_marker_env(MARKER_ENV, PythonTarget(3, 11), "x86_64")
    )
    index = image_index(closure(), markers)
    # xattr is for macOS, tomli for Python < 3.11; filelock comes by an extra.
    assert sorted(index) == ["cachecontrol", "filelock", "packaging", "poetry"]
    assert {d.location for d in index.values()} == {IMAGE_SITE}
    older = string_markers(image_marker_env(MARKER_ENV, PythonTarget(3, 9), "x86_64"))
    assert "tomli" in image_index(closure(), older)


def test_image_environment_and_target() -> None:
    markers = string_markers(
        image_marker_env(MARKER_ENV, PythonTarget(3, 11), "x86_64")
    )
    image = image_environment(
        closure(
            plugins=("poetry-plugin-x",),
            packages=(
                *closure().packages,
                ResolvedPackage(
                    "poetry-plugin-x", "poetry-plugin-x", "1.0", ("packaging<25",)
                ),
            ),
        ),
        markers,
    )
    assert image.version == "1.8.5"
    assert image.plugins == ("poetry-plugin-x",)
    assert image.index["poetry-plugin-x"].plugin_groups == (
        "poetry.application.plugin",
    )
    assert image.problems == ()
    assert not image.installation.isolated
    packaging = image.get("packaging")
    assert packaging is not None
    assert packaging.version == "24.2"
    assert {r.package for r in packaging.required_by} == {"poetry", "poetry-plugin-x"}
    target = image_target(closure())
    assert target.shared
    assert target.shared_dirs == image.import_paths == (IMAGE_SITE,)
    assert target.python == "3.11"


def test_the_engine_judges_against_the_image() -> None:
    """A downgrade below the image's Poetry's requirement breaks; the same
    version as the image's is no finding; a package Poetry does not need is none."""
    markers = string_markers(
        image_marker_env(MARKER_ENV, PythonTarget(3, 11), "x86_64")
    )
    resolved = closure()
    report = assess(
        poetry=image_environment(resolved, markers),
        target=image_target(resolved),
        changes=[
            change("packaging", "24.2", "23.0"),
            change("six", None, "1.17.0"),
            change("xattr", None, "1.1.0"),
        ],
        policy=default_policy(),
    )
    assert [(f.package, f.action, f.verdict) for f in report.findings] == [
        ("packaging", Action.DOWNGRADE, Verdict.BREAKS)
    ]
    assert report.exit_code == 1
    assumed = Assumed(flags="--poetry 1.8.5 --python 3.11", closure=resolved)
    from dataclasses import replace

    data = to_dict(replace(report, assumed=assumed))
    assert data["assumed_shared"] is True
    assert data["assumed"]["poetry"] == "1.8.5"
    assert data["assumed"]["closure"][0] == {"package": "poetry", "version": "1.8.5"}
    assert len(data["assumed"]["closure"]) == len(resolved.packages)
    assert data["assumed"]["cached"] is False
    assert data["poetry"]["version"] == "1.8.5"
    text = render_text(replace(report, assumed=assumed))
    first, second = text.splitlines()[:2]
    assert first.startswith(
        "<comment>assumed (--poetry 1.8.5 --python 3.11): the environment"
        ' `pip install "poetry==1.8.5"` makes on a Linux CPython 3.11'
    )
    assert (
        "6 packages, resolved from http://127.0.0.1:1/simple at 2027-01-15 08:00 UTC"
        in first
    )
    assert second.startswith("<error>Poetry 1.8.5 shares the target environment")
    assert to_dict(report)["assumed_shared"] is False
    assert to_dict(report)["assumed"] is None


def test_assumed_describe_forms() -> None:
    shared = Assumed(flags="--assume-shared")
    assert shared.describe().startswith(
        "assumed (--assume-shared): the running Poetry shares the environment"
    )
    cached = Assumed(
        flags="--poetry 2.5.1",
        closure=closure(plugins=("poetry-plugin-export",), sources=(), cached=True),
    )
    text = cached.describe()
    assert "with poetry-plugin-export makes" in text
    assert "cached from the project's sources" in text


# --- the command's options ----------------------------------------------------------


def _plain_report() -> object:
    from unit.factories import poetry_env
    from unit.factories import target

    return assess(
        poetry=poetry_env([]),
        target=target(shared=False),
        changes=[],
        policy=default_policy(),
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ("", None),
        ("--assume-shared", Assumption()),
        (
            "--poetry 1.8.5 --python 3.11 --with-plugin a --with-plugin b==2"
            " --index-url http://127.0.0.1:9/simple/",
            Assumption(
                poetry="1.8.5",
                python=PythonTarget(3, 11),
                index_url="http://127.0.0.1:9/simple/",
                plugins=(PluginSpec("a"), PluginSpec("b", "2")),
            ),
        ),
    ],
)
def test_command_passes_the_assumption(
    env_audit_command: object,
    monkeypatch: pytest.MonkeyPatch,
    args: str,
    expected: Assumption | None,
) -> None:
    import poetry_env_audit.assumed as assumed_module

    seen: list[Assumption | None] = []
    original = assumed_module.assumption_from_options

    def spy(**kwargs: object) -> Assumption | None:
        found = original(**kwargs)  # type: ignore[arg-type]
        seen.append(found)
        return found

    monkeypatch.setattr(assumed_module, "assumption_from_options", spy)
    code, _, err = env_audit_command(_plain_report(), args)  # type: ignore[operator]
    assert code == 0, err
    assert seen == [expected]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ("--python 3.11", "--python needs --poetry VERSION"),
        ("--poetry 1.8.5 --python three", "--python 'three'"),
        ("--poetry 1.8.5 --with-plugin 'x>=1'", "--with-plugin 'x>=1'"),
    ],
)
def test_command_refuses_bad_assumptions_in_one_line(
    env_audit_command: object, args: str, message: str
) -> None:
    code, out, err = env_audit_command(_plain_report(), args)  # type: ignore[operator]
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert message in err
