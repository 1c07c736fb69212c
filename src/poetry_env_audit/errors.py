"""Errors that end an audit with exit code 2 and one line on stderr."""

from __future__ import annotations


class AuditError(Exception):
    """The audit could not run. ``str(error)`` is the one line shown to the user."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(f"{message} {hint}" if hint else message)


class ConfigError(AuditError):
    """``[tool.poetry-env-audit]`` or ``POETRY_ENV_AUDIT_*`` holds an unknown key or value."""
