"""CI detection, format choice, lock line numbers and the report file."""

from __future__ import annotations

import re
import stat
import sys
from pathlib import Path

import pytest

from poetry_env_audit import ci
from poetry_env_audit.ci import CISystem
from poetry_env_audit.errors import AuditError
from poetry_env_audit.lockfile import lock_entries
from poetry_env_audit.lockfile import package_lines
from poetry_env_audit.lockfile import read_package_lines
from poetry_env_audit.render.formats import Format

# ----------------------------------------------------------------- detect


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, None),
        ({"GITHUB_ACTIONS": "true", "CI": "true"}, CISystem.GITHUB),
        ({"GITHUB_ACTIONS": "True"}, CISystem.GITHUB),
        ({"GITHUB_ACTIONS": "false", "CI": "true"}, CISystem.GENERIC),
        ({"GITLAB_CI": "true", "CI": "true"}, CISystem.GITLAB),
        ({"TF_BUILD": "True"}, CISystem.AZURE),
        ({"TF_BUILD": "true"}, CISystem.AZURE),
        ({"TF_BUILD": "TRUE"}, CISystem.AZURE),
        ({"TF_BUILD": "1"}, None),
        ({"CI": "true"}, CISystem.GENERIC),
        ({"CI": "1"}, CISystem.GENERIC),
        ({"CI": "yes"}, CISystem.GENERIC),
        ({"CI": "false"}, None),
        ({"CI": "0"}, None),
        ({"CI": ""}, None),
        ({"CI": "  "}, None),
        # The first system found wins, in a fixed order.
        (
            {"GITHUB_ACTIONS": "true", "GITLAB_CI": "true", "TF_BUILD": "True"},
            CISystem.GITHUB,
        ),
        ({"GITLAB_CI": "true", "TF_BUILD": "True"}, CISystem.GITLAB),
    ],
)
def test_detect(environ: dict[str, str], expected: CISystem | None) -> None:
    assert ci.detect(environ) is expected


@pytest.mark.parametrize(
    ("environ", "setting", "expected"),
    [
        ({"GITHUB_ACTIONS": "true"}, "auto", Format.GITHUB),
        ({"GITLAB_CI": "true"}, "auto", Format.GITLAB),
        ({"TF_BUILD": "True"}, "auto", Format.AZURE),
        ({"TF_BUILD": "True"}, "AUTO", Format.AZURE),
        ({"CI": "true"}, "auto", None),  # generic CI has no format of its own
        ({}, "auto", None),
        ({"GITHUB_ACTIONS": "true"}, "off", None),
        ({"GITLAB_CI": "true"}, "off", None),
        ({"TF_BUILD": "True"}, "Off", None),
    ],
)
def test_auto_format(
    environ: dict[str, str], setting: str, expected: Format | None
) -> None:
    assert ci.auto_format(environ, setting) is expected


@pytest.mark.parametrize(
    ("option", "setting", "environ", "expected"),
    [
        (None, "auto", {}, Format.TEXT),
        (None, "auto", {"GITHUB_ACTIONS": "true"}, Format.GITHUB),
        (None, "off", {"GITHUB_ACTIONS": "true"}, Format.TEXT),
        (None, "auto", {"CI": "true"}, Format.TEXT),
        # An explicit --format wins over detection and over ci-output.
        ("text", "auto", {"GITHUB_ACTIONS": "true"}, Format.TEXT),
        ("json", "auto", {"GITLAB_CI": "true"}, Format.JSON),
        ("azure", "off", {}, Format.AZURE),
        ("GitLab", "auto", {}, Format.GITLAB),
    ],
)
def test_choose_format(
    option: str | None, setting: str, environ: dict[str, str], expected: Format
) -> None:
    assert ci.choose_format(option, setting, environ) is expected


def test_policy_env_var_turns_ci_output_off() -> None:
    from poetry_env_audit.policy import load_policy

    environ = {"GITHUB_ACTIONS": "true", "POETRY_ENV_AUDIT_CI_OUTPUT": "off"}
    policy = load_policy(None, environ)
    assert ci.choose_format(None, policy.ci_output, environ) is Format.TEXT
    policy = load_policy({"ci-output": "off"}, {"GITHUB_ACTIONS": "true"})
    assert ci.auto_format({"GITHUB_ACTIONS": "true"}, policy.ci_output) is None


def test_formats_list() -> None:
    from poetry_env_audit.render.formats import FORMATS

    assert FORMATS == ("text", "json", "github", "azure", "gitlab")
    assert {f for f in Format if f.annotates} == {Format.GITHUB, Format.AZURE}


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX paths")
def test_display_path() -> None:
    lock = "/home/runner/work/proj/proj/sub/poetry.lock"
    github = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_WORKSPACE": "/home/runner/work/proj/proj",
    }
    assert ci.display_path(lock, github) == "sub/poetry.lock"
    azure = {
        "TF_BUILD": "True",
        "BUILD_SOURCESDIRECTORY": "/home/runner/work/proj/proj/",
    }
    assert ci.display_path(lock, azure) == "sub/poetry.lock"
    # Outside the checkout, without one, or relative: unchanged.
    assert ci.display_path("/elsewhere/poetry.lock", github) == "/elsewhere/poetry.lock"
    assert ci.display_path(lock, {"GITHUB_ACTIONS": "true"}) == lock
    assert ci.display_path(lock, {}) == lock
    assert (
        ci.display_path(lock, {"GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": "rel"})
        == lock
    )


def test_lock_lines_read_only_when_annotating(tmp_path: Path) -> None:
    lock = tmp_path / "poetry.lock"
    lock.write_text(SIMPLE_LOCK, encoding="utf-8")
    assert ci.lock_lines_for(Format.TEXT, lock, {}) == (None, {})
    assert ci.lock_lines_for(Format.GITLAB, lock, {}) == (None, {})
    path, lines = ci.lock_lines_for(Format.GITHUB, lock, {})
    assert path == str(lock)
    assert lines["requests"] == 4
    # A missing lock is no error: annotations then point at no file.
    assert ci.lock_lines_for(Format.AZURE, tmp_path / "missing.lock", {}) == (None, {})
    # An unreadable one points at the file, without a line.
    lock.write_bytes(b"\xff")
    assert ci.lock_lines_for(Format.AZURE, lock, {}) == (str(lock), {})


# ----------------------------------------------------------------- lockfile

SIMPLE_LOCK = """\
# This file is automatically @generated by Poetry 2.1.1 and should not be changed by hand.

[[package]]
name = "requests"
version = "2.32.3"
description = "Python HTTP for Humans."
optional = false
python-versions = ">=3.8"
groups = ["main"]
files = [
    {file = "requests-2.32.3-py3-none-any.whl", hash = "sha256:70761cfe03c773ceb22aa2f671b4757976145175cdfca038c02654d061d6dcc6"},
    {file = "requests-2.32.3.tar.gz", hash = "sha256:55365417734eb18255590a9ff9eb97e9e1da868d4ccd6402399eaf68af20a760"},
]

[package.dependencies]
certifi = ">=2017.4.17"
urllib3 = ">=1.21.1,<3"

[package.extras]
socks = ["PySocks (>=1.5.6,!=1.5.7)"]

[[package]]
name = "Urllib3"
version = "2.2.3"
description = "HTTP library with thread-safe connection pooling, file post, and more."
optional = false
python-versions = ">=3.8"
files = [
    {file = "urllib3-2.2.3-py3-none-any.whl", hash = "sha256:ca899ca043dcb1bafa3e262d73aa25c465bfb49e0bd9dd5d59f1d0acba2f8fac"},
]

[[package]]
name = "zope.interface"
version = "7.0"
description = ""
optional = false
python-versions = "*"
files = []

[metadata]
lock-version = "2.1"
python-versions = "^3.9"
content-hash = "0123"
"""


def test_package_lines_simple() -> None:
    assert package_lines(SIMPLE_LOCK) == {
        "requests": 4,
        "urllib3": 23,
        "zope-interface": 33,
    }
    lines = SIMPLE_LOCK.split("\n")
    for line in package_lines(SIMPLE_LOCK).values():
        assert lines[line - 1].startswith("name = ")
    assert [e.version for e in lock_entries(SIMPLE_LOCK)] == ["2.32.3", "2.2.3", "7.0"]


def test_package_lines_crlf_and_bom() -> None:
    text = "\ufeff" + SIMPLE_LOCK.replace("\n", "\r\n")
    assert package_lines(text) == {"requests": 4, "urllib3": 23, "zope-interface": 33}


TRICKY_LOCK = '''\
[[ package ]]   # a comment after the header
version = "1.0"
"name" = 'First_Pkg'
description = """
[[package]]
name = "not-a-package"
"""
optional = false
files = [
    {file = "a ] [ } {.whl", hash = "sha256:00"},  # brackets in strings
    [
      "nested",
    ],
]
summary = 'literal with "quote" and # hash'

[package.dependencies]
name = ">=1.0"
other = {version = "*", markers = "python_version < \\"3.10\\""}

[package.source]
type = "legacy"
url = "https://example.invalid/simple"
reference = "private"

[[package]]
name    =    "second"
version = "2.0"
description = \'\'\'
name = "not-this-either"
[metadata]
\'\'\'

[[package]]
name = "first-pkg"
version = "1.1"

[[package]]
version = "no name at all"

[[package.files]]
name = "a-sub-array-table-name"

[metadata]
name = "metadata-is-no-package"
'''


def test_package_lines_tricky() -> None:
    # Quoted keys, spaced headers, multi-line strings that look like tables,
    # brackets inside strings, nested arrays, sub-tables with a `name` key,
    # a repeated name (the first entry wins), an entry without a name.
    assert package_lines(TRICKY_LOCK) == {"first-pkg": 3, "second": 27}
    entries = lock_entries(TRICKY_LOCK)
    assert [(e.name, e.version, e.line) for e in entries] == [
        ("first-pkg", "1.0", 3),
        ("second", "2.0", 27),
        ("first-pkg", "1.1", 35),
    ]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\n\n",
        "[metadata]\nlock-version = '2.1'\n",
        '[[package]]\nname = "unterminated\n',
        '[[package]]\nname = "x"\ndescription = """never closed\n',
        '[[package]]\nname = "x"\nfiles = [\n  "a",\n',
        '[[package]]\nname = "x"\nfiles = ]\n',
        '[[package]\nname = "x"\n',
        '[[package]]\nname = "x"\nthis is not toml\n',
        '[[package]] trailing\nname = "x"\n',
        "\x00\x01\x02 binary ]]]] [[[ \"'",
        '<<<<<<< HEAD\n[[package]]\nname = "x"\n=======\n',
    ],
)
def test_package_lines_corrupt_or_empty(text: str) -> None:
    assert package_lines(text) == {}


def test_package_lines_never_raises_on_prefixes() -> None:
    # Every prefix of a valid lock is either followed or rejected, never an exception.
    for cut in range(len(TRICKY_LOCK)):
        result = package_lines(TRICKY_LOCK[:cut])
        assert isinstance(result, dict)


def test_read_package_lines(tmp_path: Path) -> None:
    lock = tmp_path / "poetry.lock"
    lock.write_bytes(SIMPLE_LOCK.replace("\n", "\r\n").encode())
    assert read_package_lines(lock) == {
        "requests": 4,
        "urllib3": 23,
        "zope-interface": 33,
    }
    assert read_package_lines(tmp_path / "missing") == {}
    lock.write_bytes(b"\xff\xfe not utf-8")
    assert read_package_lines(lock) == {}
    assert read_package_lines(tmp_path) == {}  # a directory


@pytest.mark.parametrize("text", [SIMPLE_LOCK, TRICKY_LOCK])
def test_package_lines_agree_with_a_toml_parser(text: str) -> None:
    tomllib = pytest.importorskip("tomllib" if sys.version_info >= (3, 11) else "tomli")
    data = tomllib.loads(text)
    names = {
        re.sub(r"[-_.]+", "-", p["name"]).lower()
        for p in data["package"]
        if "name" in p
    }
    assert set(package_lines(text)) == names


# ----------------------------------------------------------------- report file


def test_write_report_file_creates_parents_atomically(tmp_path: Path) -> None:
    target = tmp_path / "reports" / "deep" / "env-audit.json"
    ci.write_report_file(target, '{"a": 1}\n')
    assert target.read_text(encoding="utf-8") == '{"a": 1}\n'
    ci.write_report_file(str(target), '{"a": 2}\n')  # replaces, as a str path too
    assert target.read_text(encoding="utf-8") == '{"a": 2}\n'
    assert sorted(p.name for p in target.parent.iterdir()) == ["env-audit.json"]
    if sys.platform != "win32":
        assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_write_report_file_keeps_the_old_file_when_writing_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "report.json"
    target.write_text("old", encoding="utf-8")

    def fail(self: Path, other: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "replace", fail)
    with pytest.raises(AuditError, match="No space left on device"):
        ci.write_report_file(target, "new")
    assert target.read_text(encoding="utf-8") == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "report.json"
    ]  # no temp file left


@pytest.mark.parametrize(
    "kind", ["parent-is-a-file", "target-is-a-dir", "hostile-name"]
)
def test_write_report_file_unwritable_is_one_line(tmp_path: Path, kind: str) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    target = {
        "parent-is-a-file": blocker / "sub" / "report.json",
        "target-is-a-dir": tmp_path,
        "hostile-name": blocker / "evil\n::error::x" / "report.json",
    }[kind]
    with pytest.raises(AuditError) as info:
        ci.write_report_file(target, "{}")
    message = str(info.value)
    assert "\n" not in message
    assert "cannot write the report to" in message
