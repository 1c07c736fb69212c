"""Small value types every module shares."""

from __future__ import annotations

from enum import Enum


class StrEnum(str, Enum):
    """An enum of strings whose ``str()`` is its value.

    ``enum.StrEnum`` is Python 3.11+; this is the same idea for 3.9 and 3.10.
    Members compare as members (``is``); their value is what reports show.
    """

    def __str__(self) -> str:
        return str(self.value)
