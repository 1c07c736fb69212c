"""Keep ``poetry install`` from changing the packages Poetry itself runs on."""

from __future__ import annotations

__version__ = "0.1.0"
