"""Where each package's entry is in ``poetry.lock``, for CI annotations.

A line-wise scan, not a TOML parser: it reads no more than it needs, keeps
line numbers (which TOML parsers drop) and assumes no formatter. It follows
strings (single- and multi-line, basic and literal), comments and values that
span lines (``files = [ ... ]``), so a ``[[package]]`` or ``name =`` inside a
string or an array is not taken for a table or a key. ``name`` is taken only
from the ``[[package]]`` table itself, never from a sub-table such as
``[package.dependencies]`` (where a dependency may be called ``name``).

The line reported for a package is the line of its ``name = "..."`` key, the
line that names it. When a name has several entries (one per marker or
source), the first one counts. A lock this scan cannot follow (an
unterminated string or bracket, a line that is neither a table header nor a
key) gives ``{}``: annotations then point at the file only.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from packaging.utils import canonicalize_name

if TYPE_CHECKING:
    import os

__all__ = ["LockEntry", "lock_entries", "package_lines", "read_package_lines"]


@dataclass(frozen=True)
class LockEntry:
    """A ``[[package]]`` of ``poetry.lock``: its name, version and line."""

    name: str  # canonical (PEP 503)
    version: str | None
    line: int  # 1-based line of ``name = ...``


class _CorruptLockError(Exception):
    pass


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_WS = " \t"


#: A basic string (escapes skipped two characters at a time) or a literal one.
_BASIC = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_STRINGS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|\'[^\']*\'')
_BRACKETS = re.compile(r"[\[\]{}]")
#: An array's line that leaves the bracket depth as it is, in one match: an
#: inline table or a bare value, with simple strings only and no comment (and,
#: checked apart, no multi-line delimiter: ``""""`` is not two empty strings).
_PLAIN = r'[^"\'#\[\]{}]*(?:"[^"\\]*"[^"\'#\[\]{}]*)*'
_FLAT_ITEM = re.compile(rf"[ \t]*(?:\{{{_PLAIN}\}}|{_PLAIN}),?[ \t]*")
#: In a multi-line basic string: an escape (skipped) or the closing delimiter.
_ML_BASIC_STOP = re.compile(r'\\.|"""', re.DOTALL)


def _basic_string_end(line: str, start: int) -> int:
    """Index just past the closing ``"`` of a basic string opened at ``start``."""
    match = _BASIC.match(line, start)
    if match is None:
        raise _CorruptLockError("unterminated string")
    return match.end()


def _literal_string_end(line: str, start: int) -> int:
    end = line.find("'", start + 1)
    if end < 0:
        raise _CorruptLockError("unterminated string")
    return end + 1


def _multiline_end(line: str, start: int, delim: str) -> int | None:
    """Index past the closing ``delim`` at or after ``start``, ``None`` if not on this line."""
    i: int | None
    if delim == '"""':
        i = None
        for match in _ML_BASIC_STOP.finditer(line, start):
            if match.group() == delim:
                i = match.start()
                break
    else:
        found = line.find(delim, start)
        i = found if found >= 0 else None
    if i is None:
        return None
    end = i + 3
    # Up to two quotes right before the delimiter belong to the string.
    while end < len(line) and line[end] == delim[0] and end - i < 5:
        end += 1
    return end


def _scan_fast(line: str, i: int, depth: int) -> tuple[int, str | None]:
    """:func:`_scan_value` without a Python step per character.

    The strings of the line are cut out by one regular expression, the comment
    after them dropped, and only the brackets left are looked at: a lock's
    lines are mostly ``{file = "...", hash = "..."},``. A line with a
    multi-line delimiter or an unterminated quote goes the slow way, which
    also says what is wrong with it.
    """
    rest = line[i:] if i else line
    if '"""' in rest or "'''" in rest:
        return _scan_value(line, i, depth)
    bare = _STRINGS.sub("", rest) if ('"' in rest or "'" in rest) else rest
    if '"' in bare or "'" in bare:
        return _scan_value(line, i, depth)
    comment = bare.find("#")
    if comment >= 0:
        bare = bare[:comment]
    for char in _BRACKETS.findall(bare):
        if char in "[{":
            depth += 1
        else:
            depth -= 1
            if depth < 0:
                raise _CorruptLockError("unbalanced bracket")
    return depth, None


def _scan_value(line: str, i: int, depth: int) -> tuple[int, str | None]:
    """Follow a value (or the rest of one) to the end of the line.

    Returns the bracket depth still open and the multi-line delimiter still
    open, if any.
    """
    while i < len(line):
        char = line[i]
        if char == "#":
            break
        if line.startswith('"""', i) or line.startswith("'''", i):
            delim = line[i : i + 3]
            end = _multiline_end(line, i + 3, delim)
            if end is None:
                return depth, delim
            i = end
            continue
        if char == '"':
            i = _basic_string_end(line, i)
            continue
        if char == "'":
            i = _literal_string_end(line, i)
            continue
        if char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
            if depth < 0:
                raise _CorruptLockError("unbalanced bracket")
        i += 1
    return depth, None


def _key(line: str, i: int) -> tuple[list[str], int]:
    """A (dotted) key starting at ``i``: its parts and the index past it."""
    parts: list[str] = []
    while True:
        while i < len(line) and line[i] in _WS:
            i += 1
        if i >= len(line):
            raise _CorruptLockError("key expected")
        if line[i] == '"':
            end = _basic_string_end(line, i)
            parts.append(_decode_basic(line[i + 1 : end - 1]))
        elif line[i] == "'":
            end = _literal_string_end(line, i)
            parts.append(line[i + 1 : end - 1])
        else:
            match = _BARE_KEY.match(line, i)
            if match is None:
                raise _CorruptLockError("key expected")
            end = match.end()
            parts.append(match.group())
        i = end
        while i < len(line) and line[i] in _WS:
            i += 1
        if i < len(line) and line[i] == ".":
            i += 1
            continue
        return parts, i


def _decode_basic(body: str) -> str:
    if "\\" not in body:
        return body
    try:
        value = json.loads(f'"{body}"')
    except ValueError:
        return body
    return value if isinstance(value, str) else body


def _string_value(line: str, i: int) -> str | None:
    """The single-line string value at ``i``, or ``None`` for any other value."""
    if line.startswith(('"""', "'''"), i):
        return None
    if i < len(line) and line[i] == '"':
        return _decode_basic(line[i + 1 : _basic_string_end(line, i) - 1])
    if i < len(line) and line[i] == "'":
        return line[i + 1 : _literal_string_end(line, i) - 1]
    return None


def _header(line: str) -> tuple[bool, list[str]]:
    """``[a.b]`` or ``[[a.b]]``: whether it is an array of tables, and the key parts."""
    array = line.startswith("[[")
    parts, i = _key(line, 2 if array else 1)
    close = "]]" if array else "]"
    if not line.startswith(close, i):
        raise _CorruptLockError("bad table header")
    rest = line[i + len(close) :].strip(_WS)
    if rest and not rest.startswith("#"):
        raise _CorruptLockError("bad table header")
    return array, parts


def _entries(text: str) -> list[LockEntry]:
    entries: list[LockEntry] = []
    in_package = False  # inside the [[package]] table itself, not a sub-table
    start: int | None = None
    name: tuple[str, int] | None = None
    version: str | None = None

    def close() -> None:
        if start is not None and name is not None:
            entries.append(
                LockEntry(
                    name=canonicalize_name(name[0]), version=version, line=name[1]
                )
            )

    depth = 0
    multiline: str | None = None
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw[:-1] if raw.endswith("\r") else raw
        if multiline is not None:
            end = _multiline_end(line, 0, multiline)
            if end is None:
                continue
            multiline = None
            depth, multiline = _scan_fast(line, end, depth)
            continue
        if depth > 0:
            if _FLAT_ITEM.fullmatch(line) is None or '"""' in line or "'''" in line:
                depth, multiline = _scan_fast(line, 0, depth)
            continue
        stripped = line.strip(_WS)
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("["):
            array, parts = _header(stripped)
            if array and parts == ["package"]:
                close()
                start, name, version = number, None, None
                in_package = True
            elif parts[0] == "package" and start is not None:
                in_package = False  # [package.dependencies] and friends
            else:
                close()
                start, name, version = None, None, None
                in_package = False
            continue
        offset = len(line) - len(line.lstrip(_WS))
        parts, i = _key(line, offset)
        if i >= len(line) or line[i] != "=":
            raise _CorruptLockError("'=' expected")
        i += 1
        while i < len(line) and line[i] in _WS:
            i += 1
        if in_package and len(parts) == 1:
            value = _string_value(line, i)
            if parts[0] == "name" and value is not None and name is None:
                name = (value, number)
            elif parts[0] == "version" and value is not None:
                version = value
        depth, multiline = _scan_fast(line, i, 0)
    if depth or multiline:
        raise _CorruptLockError("unterminated value at the end")
    close()
    return entries


def lock_entries(lock_text: str) -> tuple[LockEntry, ...]:
    """Every ``[[package]]`` entry with a name, in file order; ``()`` for a lock it cannot follow."""
    try:
        return tuple(_entries(lock_text.lstrip("\ufeff")))
    except (_CorruptLockError, IndexError, ValueError):
        return ()


def package_lines(lock_text: str) -> dict[str, int]:
    """Canonical package name -> 1-based line of its ``name = "..."`` in ``poetry.lock``.

    The first entry of a name wins. ``{}`` for a lock the scan cannot follow.
    """
    lines: dict[str, int] = {}
    for entry in lock_entries(lock_text):
        lines.setdefault(entry.name, entry.line)
    return lines


def read_package_lines(path: str | os.PathLike[str]) -> dict[str, int]:
    """:func:`package_lines` of the file at ``path``; ``{}`` when it cannot be read."""
    try:
        with open(path, encoding="utf-8", newline="") as stream:  # noqa: PTH123
            text = stream.read()
    except (OSError, UnicodeDecodeError):
        return {}
    return package_lines(text)
