"""The Poetry internals ``poetry self isolate`` touches, and nothing else.

Listed in :data:`SEAMS` with the versions they were checked on, like
:mod:`poetry_env_audit.seams`.
"""

from __future__ import annotations

from pathlib import Path

from poetry_env_audit.seams import Seam

#: Read in the installed source and exercised by tests/integration/test_isolate.py.
CHECKED_ON = ("1.8.5", "2.5.1")

SEAMS: tuple[Seam, ...] = (
    Seam(
        'Application.command_loader.register_factory("self isolate", factory)',
        "a plugin command under Poetry's `self` namespace (cleo takes names with spaces)",
        CHECKED_ON,
    ),
    Seam(
        "poetry.console.commands.command.Command",
        "base class of the command (no project needed, unlike SelfCommand)",
        CHECKED_ON,
    ),
    Seam(
        "Config.create().get('data-dir'): the `data-dir` setting on 2.x; on both"
        " versions POETRY_DATA_DIR answers it (Config.get reads POETRY_* variables),"
        " else poetry.locations.data_dir() (POETRY_HOME or the user data dir)",
        "where the isolated environment lives, beside the official installer's venv",
        CHECKED_ON,
    ),
    Seam(
        "Config.create().get('cache-dir') + '/artifacts' (POETRY_CACHE_DIR)",
        "wheels Poetry downloaded: the copy of a distribution that has no RECORD;"
        " env-audit's ownership by file (artifacts.poetry_cache)",
        CHECKED_ON,
    ),
    Seam(
        "console script `poetry = poetry.console.application:main`",
        "what a `poetry` launcher runs; the new launcher runs the same",
        CHECKED_ON,
    ),
)


def data_dir() -> Path:
    """Poetry's data directory, as the running Poetry computes it."""
    from poetry.config.config import Config
    from poetry.locations import data_dir as default

    try:
        configured = Config.create().get("data-dir")
    except Exception:  # noqa: BLE001 - a broken config still has the default dir
        configured = None
    if configured:
        return Path(str(configured)).expanduser()
    return Path(default())


def artifacts_dir() -> Path | None:
    """Where Poetry keeps the wheels it downloaded (``None``: unknown)."""
    from poetry.config.config import Config

    try:
        configured = Config.create().get("cache-dir")
    except Exception:  # noqa: BLE001 - no cache is a refusal later, not a crash
        return None
    return Path(str(configured)).expanduser() / "artifacts" if configured else None
