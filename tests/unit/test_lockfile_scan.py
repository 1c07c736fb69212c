"""The lock scanner's fast paths agree with its character-by-character one."""

from __future__ import annotations

import random

import pytest

from poetry_env_audit import lockfile

PIECES = [
    '"a"',
    '"a\\"b"',
    '"\\\\"',
    "'x'",
    "'it''s'",
    '"',
    "'",
    "[",
    "]",
    "{",
    "}",
    ",",
    " ",
    "#",
    "# [",
    "=",
    "file",
    '"""',
    "'''",
    '"[["',
    "'{'",
    "\\",
]


def _outcome(scan: object, line: str, depth: int) -> object:
    try:
        return scan(line, 0, depth)  # type: ignore[operator]
    except lockfile._CorruptLockError as error:
        return ("error", str(error))


@pytest.mark.parametrize("seed", range(20))
def test_fast_scan_agrees_with_the_slow_one(seed: int) -> None:
    rng = random.Random(seed)  # noqa: S311 - reproducible test input, not secrets
    for _ in range(500):
        line = "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 8)))
        depth = rng.randint(0, 2)
        slow = _outcome(lockfile._scan_value, line, depth)
        fast = _outcome(lockfile._scan_fast, line, depth)
        if isinstance(slow, tuple) and slow and slow[0] == "error":
            assert isinstance(fast, tuple) and fast[0] == "error", line
        else:
            assert fast == slow, line
        flat = lockfile._FLAT_ITEM.fullmatch(line) is not None
        if flat and depth > 0 and '"""' not in line and "'''" not in line:
            assert slow == (depth, None), line


def test_multiline_basic_string_skips_escaped_quotes() -> None:
    assert lockfile._multiline_end('a \\""" b""" c', 0, '"""') == 11
    assert lockfile._multiline_end("a ''' b", 0, "'''") == 5
    assert lockfile._multiline_end('no end \\"""', 0, '"""') is None
    assert lockfile._multiline_end('x"""""', 0, '"""') == 6


def test_a_large_lock_keeps_every_line() -> None:
    entry = (
        '[[package]]\nname = "pkg-{i}"\nversion = "1.{i}"\n'
        'description = "a [[package]] \\" text"\nfiles = [\n'
        '    {{file = "p-{i}.whl", hash = "sha256:00"}},\n'
        "    {{file = 'q-{i}.whl', hash = \"sha256:11\"}}, # [\n]\n\n"
        '[package.dependencies]\nname = "not-a-package"\n\n'
    )
    text = "".join(entry.format(i=i) for i in range(200))
    lines = lockfile.package_lines(text)
    assert len(lines) == 200
    assert lines["pkg-0"] == 2
    assert lines["pkg-199"] == 2 + 199 * entry.count("\n")
