"""Poetry's artifact cache, indexed once (``poetry self isolate`` and
``poetry env-audit``'s ownership by file look wheels up in it), and how
env-audit reports what it checked."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import TYPE_CHECKING

import pytest

from poetry_env_audit.artifacts import CachedWheels
from poetry_env_audit.artifacts import poetry_cache
from poetry_env_audit.audit import assess
from poetry_env_audit.audit import planned_ownership
from poetry_env_audit.policy import load_policy
from poetry_env_audit.render import json as json_render
from poetry_env_audit.render import text
from unit.factories import change
from unit.factories import dist
from unit.factories import poetry_env
from unit.factories import target
from unit.test_ownership import make_wheel
from unit.test_swapjournal import make_site

if TYPE_CHECKING:
    from pathlib import Path

TAGS = ("py3-none-any", "cp311-cp311-manylinux_2_17_x86_64")


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_the_cache_is_indexed_by_name_and_version_for_usable_tags(
    tmp_path: Path,
) -> None:
    root = tmp_path / "artifacts"
    pure = _touch(root / "aa" / "bb" / "Tomlkit-0.13.2-py3-none-any.whl")
    _touch(root / "cc" / "tomlkit-0.13.2-py3-none-any.whl")  # a second copy: first wins
    _touch(root / "dd" / "fast-1.0-cp312-cp312-win_amd64.whl")  # not for this Python
    _touch(root / "ee" / "not a wheel name.whl")
    _touch(root / "ff" / "sdist-1.0.tar.gz")
    cache = CachedWheels.scan(root, TAGS)
    assert cache.find("tomlkit", "0.13.2") == pure
    assert cache.find("TomlKit", "0.13.2.0") == pure  # PEP 440 equal
    assert cache.find("tomlkit", "0.13.3") is None
    assert cache.find("fast", "1.0") is None
    assert cache.find("tomlkit", "not a version") is None
    assert CachedWheels.scan(None, TAGS).wheels == {}
    assert CachedWheels.scan(tmp_path / "missing", TAGS).wheels == {}


def test_poetrys_cache_is_its_cache_dir_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POETRY_CACHE_DIR", str(tmp_path))
    wheel = _touch(tmp_path / "artifacts" / "ab" / "leftpad-1.0-py3-none-any.whl")
    assert poetry_cache().find("leftpad", "1.0") == wheel


def _shared(site: Path) -> tuple[object, object]:
    poetry = poetry_env(
        [
            dist("poetry", "2.5.1", ["tomlkit>=0.11.4,<1.0.0"], location=str(site)),
            dist("tomlkit", "0.13.2", location=str(site)),
        ],
        import_paths=(str(site),),
    )
    return poetry, target(site_dirs=(str(site),))


def test_env_audit_checks_cached_and_local_wheels_and_counts_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = make_site(tmp_path)
    cache_dir = tmp_path / "cache"
    monkeypatch.setenv("POETRY_CACHE_DIR", str(cache_dir))
    make_wheel(
        cache_dir / "artifacts" / "ab",
        "tomlkit-shadow",
        "1.0",
        {"tomlkit/__init__.py": "X"},
    )
    local = make_wheel(tmp_path / "local", "leftpad", "1.0", {"leftpad/x.py": ""})
    poetry, tgt = _shared(site)
    policy = load_policy(None, {})
    changes = [
        change("tomlkit-shadow", None, "1.0"),
        replace(change("leftpad", None, "1.0"), local_wheel=str(local)),
        change("elsewhere", None, "2.0"),
        change("gone", "1.0", None),
    ]
    base = assess(poetry=poetry, target=tgt, changes=changes, policy=policy)  # type: ignore[arg-type]
    report = planned_ownership(base, changes, policy)
    (finding,) = report.findings
    assert (finding.package, finding.by, str(finding.verdict)) == (
        "tomlkit",
        "tomlkit-shadow",
        "breaks",
    )
    assert report.exit_code == 1
    assert (report.wheels_checked, report.wheels_unchecked) == (2, 1)
    data = json.loads(json_render.render(report))
    assert data["wheels"] == {"checked": 2, "unchecked": 1}
    assert data["findings"][0]["by"] == "tomlkit-shadow"
    assert data["findings"][0]["action"] == "overwrite"
    shown = text.render(report)
    assert (
        "files: 1 planned wheel of 3 is not in Poetry's cache, so its files"
        " were not checked against Poetry's (nothing is downloaded)" in shown
    )
    assert "tomlkit-shadow 1.0 would overwrite tomlkit/__init__.py" in shown
    # Nothing to check: the report is the engine's, unchanged.
    assert planned_ownership(base, [change("gone", "1.0", None)], policy) == base


def test_the_unchecked_line_is_for_shared_targets_with_unchecked_wheels(
    tmp_path: Path,
) -> None:
    site = make_site(tmp_path)
    poetry, tgt = _shared(site)
    policy = load_policy(None, {})
    base = assess(poetry=poetry, target=tgt, changes=[], policy=policy)  # type: ignore[arg-type]
    one = replace(base, wheels_unchecked=1)
    assert text.unchecked_wheels(one) == (
        "files: 1 planned wheel of 1 is not in Poetry's cache, so its files were"
        " not checked against Poetry's (nothing is downloaded); `poetry install`"
        " checks each wheel before it writes it"
    )
    assert text.unchecked_wheels(base) is None
    assert text.unchecked_wheels(replace(one, target=target(shared=False))) is None


def test_an_unreadable_cache_leaves_every_planned_wheel_unchecked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from poetry_env_audit import artifacts

    def unreadable() -> CachedWheels:
        raise PermissionError("artifacts")

    monkeypatch.setattr(artifacts, "poetry_cache", unreadable)
    site = make_site(tmp_path)
    poetry, tgt = _shared(site)
    policy = load_policy(None, {})
    changes = [change("tomlkit-shadow", None, "1.0")]
    base = assess(poetry=poetry, target=tgt, changes=changes, policy=policy)  # type: ignore[arg-type]
    report = planned_ownership(base, changes, policy)
    assert (report.wheels_checked, report.wheels_unchecked) == (0, 1)
    assert report.findings == base.findings


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("fake_plugin-1.0-py3-none-any.whl", True),
        ("Fake.Plugin-1.0.0-py3-none-any.whl", True),
        ("fake_plugin-1.0-cp311-cp311-manylinux_2_17_x86_64.whl", True),
        ("fake_plugin-1.0-cp312-cp312-manylinux_2_17_x86_64.whl", False),
        ("fake_plugin-1.1-py3-none-any.whl", False),
        ("other-1.0-py3-none-any.whl", False),
        ("fake_plugin-1.0.tar.gz", False),
    ],
    ids=[
        "pure",
        "same-name-and-version-spelled-otherwise",
        "binary",
        "other-python",
        "other-version",
        "other-name",
        "not-a-wheel",
    ],
)
def test_a_cached_wheel_is_found_by_name_version_and_tags(
    tmp_path: Path, filename: str, expected: bool
) -> None:
    """What ``poetry self isolate`` finds for a plugin without RECORD."""
    _touch(tmp_path / "artifacts" / "0a" / filename)
    found = CachedWheels.scan(tmp_path / "artifacts", TAGS).find("fake-plugin", "1.0")
    assert (found is not None) is expected
