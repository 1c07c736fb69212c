"""Renderers: one module per output format, each a pure function of a Report."""

from __future__ import annotations

from enum import Enum


class Format(str, Enum):
    TEXT = "text"
    JSON = "json"

    def __str__(self) -> str:
        return self.value


FORMATS = tuple(f.value for f in Format)
