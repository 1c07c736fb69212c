"""The output formats ``poetry env-audit`` and the guard write."""

from __future__ import annotations

from poetry_env_audit.values import StrEnum


class Format(StrEnum):
    TEXT = "text"
    JSON = "json"
    GITHUB = "github"
    AZURE = "azure"
    GITLAB = "gitlab"

    @property
    def annotates(self) -> bool:
        """Whether the format writes one annotation per finding (needs the lock lines)."""
        return self in (Format.GITHUB, Format.AZURE)


FORMATS = tuple(f.value for f in Format)
CI_FORMATS = (Format.GITHUB, Format.AZURE, Format.GITLAB)
