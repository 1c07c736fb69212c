from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from poetry_env_audit.target import overlap
from poetry_env_audit.target import real_dirs
from unit.factories import target

if TYPE_CHECKING:
    from pathlib import Path


def test_real_dirs_keeps_existing_dirs_in_order_without_duplicates(
    tmp_path: Path,
) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    link = tmp_path / "link-to-a"
    link.symlink_to(a, target_is_directory=True)
    (tmp_path / "file").write_text("")
    got = real_dirs([b, str(link), tmp_path / "missing", a, tmp_path / "file"])
    assert got == (str(b.resolve()), str(a.resolve()))


def test_overlap_compares_real_paths_in_site_dirs_order(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for d in (a, b, c):
        d.mkdir()
    link = tmp_path / "link-to-b"
    link.symlink_to(b, target_is_directory=True)
    got = overlap([str(c), str(b), str(a)], [str(a), str(link)])
    assert got == (str(b.resolve()), str(a.resolve()))
    assert overlap([str(c)], [str(a)]) == ()


@pytest.mark.parametrize(
    ("shared", "kind", "is_shared", "exists"),
    [
        (True, "system", True, True),
        (False, "venv", False, True),
        (False, "new-venv", False, False),
    ],
    ids=["shared", "separate", "new-venv"],
)
def test_target_properties(
    shared: bool, kind: str, is_shared: bool, exists: bool
) -> None:
    tgt = target(shared, kind=kind)
    assert (tgt.shared, tgt.exists) == (is_shared, exists)
