"""Control characters: data never reaches a terminal or a CI log with one.

One definition (C0 and DEL) serves every output: each caller says which
line-structure characters it keeps.
"""

from __future__ import annotations

import functools
import re

#: C0 controls and DEL, as a regular-expression character range.
CONTROLS = "\x00-\x1f\x7f"
REPLACEMENT = "\N{REPLACEMENT CHARACTER}"


@functools.cache
def _pattern(keep: str) -> re.Pattern[str]:
    if not keep:
        return re.compile(f"[{CONTROLS}]")
    kept = "".join(re.escape(c) for c in keep)
    return re.compile(f"(?![{kept}])[{CONTROLS}]")


def replace_controls(text: str, *, keep: str = "") -> str:
    """``text`` with every control character not in ``keep`` as U+FFFD."""
    return _pattern(keep).sub(REPLACEMENT, text)
