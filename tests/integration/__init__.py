from __future__ import annotations

# A package, so that mypy tells tests/integration/conftest.py from tests/conftest.py.
