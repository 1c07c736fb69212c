"""Policy: what to do about each kind of finding, from pyproject.toml and the environment.

``[tool.poetry-env-audit]`` in the project's ``pyproject.toml`` sets a key for
the project; ``POETRY_ENV_AUDIT_<KEY>`` (upper case, ``-`` as ``_``) overrides
it for one run. Unknown keys and values are errors that name them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from dataclasses import replace
from typing import TYPE_CHECKING
from typing import Any

from poetry_env_audit.errors import ConfigError
from poetry_env_audit.values import StrEnum

if TYPE_CHECKING:
    from collections.abc import Mapping

ENV_PREFIX = "POETRY_ENV_AUDIT_"
TABLE = "[tool.poetry-env-audit]"


class PolicyAction(StrEnum):
    BLOCK = "block"
    SERIALISE = "serialise"
    WARN = "warn"
    OFF = "off"


#: Severity order used to compute the verdict of a whole run.
SEVERITY = {
    PolicyAction.OFF: 0,
    PolicyAction.WARN: 1,
    PolicyAction.SERIALISE: 2,
    PolicyAction.BLOCK: 3,
}

ALL_ACTIONS = tuple(a.value for a in PolicyAction)
ENV_ACTIONS = tuple(
    a.value for a in (PolicyAction.BLOCK, PolicyAction.WARN, PolicyAction.OFF)
)


@dataclass(frozen=True)
class Key:
    """One setting: the only place its default and its allowed values are stored."""

    name: str
    kind: str  # "action" | "bool" | "switch" (a bool or "always") | "choice" | "float"
    default: Any
    allowed: tuple[str, ...] = ()  # the values of an "action" or "choice" key
    doc: str = ""


KEYS: tuple[Key, ...] = (
    Key(
        "breaks",
        "action",
        PolicyAction.BLOCK,
        ALL_ACTIONS,
        "a planned change leaves a requirement of Poetry or a plugin unmet, or removes a package Poetry needs",
    ),
    Key(
        "changes",
        "action",
        PolicyAction.SERIALISE,
        ALL_ACTIONS,
        "a package Poetry runs on is replaced in place by a version Poetry still accepts",
    ),
    Key(
        "unverified",
        "action",
        PolicyAction.BLOCK,
        ALL_ACTIONS,
        "a planned change to a package Poetry needs cannot be checked: a requirement"
        " on it could not be read, or the plugin failed while deciding",
    ),
    Key(
        "shared",
        "action",
        PolicyAction.WARN,
        ENV_ACTIONS,
        "Poetry shares the target environment (one short notice)",
    ),
    Key(
        "inconsistent",
        "action",
        PolicyAction.WARN,
        ENV_ACTIONS,
        "Poetry's own environment already has unmet requirements",
    ),
    Key(
        "externally-managed",
        "action",
        PolicyAction.BLOCK,
        ENV_ACTIONS,
        "the interpreter is marked EXTERNALLY-MANAGED (PEP 668)",
    ),
    Key(
        "strict",
        "bool",
        False,
        (),
        "an internal error of the plugin fails the command instead of letting Poetry carry on",
    ),
    Key(
        "ci-output",
        "choice",
        "auto",
        ("auto", "off"),
        "auto: also write findings in the CI system's own format when one is detected; off: never",
    ),
    Key(
        "serial-uninstaller",
        "choice",
        "builtin",
        ("builtin", "configured"),
        "builtin: serialised swaps remove the old files in process (Poetry 2.5's"
        " uninstaller, else the plugin's own from the swap's journal); configured: as"
        " Poetry is configured (pip on older Poetry)",
    ),
    Key(
        "lock",
        "switch",
        True,
        (),
        "true: hold an exclusive lock on the target environment while installing"
        " when it shares Poetry's environment; always: also when it does not; false: never",
    ),
    Key(
        "lock-timeout",
        "float",
        300.0,
        (),
        "seconds to wait for another Poetry process's environment lock before failing",
    ),
)
KEYS_BY_NAME = {key.name: key for key in KEYS}

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class Policy:
    """A run's settings; :func:`load_policy` fills every field from :data:`KEYS`."""

    actions: Mapping[str, PolicyAction]
    strict: bool
    ci_output: str
    serial_uninstaller: str
    lock: bool
    lock_timeout: float
    #: ``lock = "always"``: also lock a target that does not share Poetry's environment.
    lock_always: bool = False

    def action(self, kind: str) -> PolicyAction:
        """The action for a policy key (a finding's kind is one: ``str()`` gives the key)."""
        return self.actions[str(kind)]


def default_policy() -> Policy:
    return load_policy(None, {})


def _coerce(key: Key, value: object, where: str) -> Any:
    if key.kind == "switch":
        if isinstance(value, str) and value.strip().lower() == "always":
            return "always"
        if isinstance(value, bool) or (
            isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE
        ):
            return _coerce(replace(key, kind="bool"), value, where)
        raise ConfigError(
            f"{where}: {key.name} must be true, false or always, not {value!r}."
        )
    if key.kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ConfigError(f"{where}: {key.name} must be true or false, not {value!r}.")
    if key.kind == "choice":
        text = str(value).strip().lower() if isinstance(value, str) else None
        if text not in key.allowed:
            raise ConfigError(
                f"{where}: {key.name} must be one of {', '.join(key.allowed)}, not {value!r}."
            )
        return text
    if key.kind == "float":
        try:
            if isinstance(value, bool):
                raise TypeError("a boolean is not a number of seconds")
            number = float(value)  # type: ignore[arg-type]
            if math.isnan(number):
                raise ValueError("NaN")
        except (TypeError, ValueError):
            raise ConfigError(
                f"{where}: {key.name} must be a number, not {value!r}."
            ) from None
        if number < 0:
            raise ConfigError(
                f"{where}: {key.name} must not be negative, not {value!r}."
            )
        return number
    text = str(value).strip().lower() if isinstance(value, str) else None
    if text == "serialize":
        text = "serialise"
    if text not in key.allowed:
        raise ConfigError(
            f"{where}: {key.name} must be one of {', '.join(key.allowed)}, not {value!r}."
        )
    return PolicyAction(text)


def load_policy(
    table: Mapping[str, object] | None, environ: Mapping[str, str]
) -> Policy:
    """Merge defaults, the project's table and ``POETRY_ENV_AUDIT_*`` variables."""
    values: dict[str, Any] = {k.name: k.default for k in KEYS}
    if table is not None:
        if not isinstance(table, dict):
            raise ConfigError(f"{TABLE} must be a table.")
        for raw_key, value in table.items():
            key = KEYS_BY_NAME.get(str(raw_key).replace("_", "-"))
            if key is None:
                raise ConfigError(
                    f"{TABLE} has an unknown key {raw_key!r}"
                    f" (known: {', '.join(KEYS_BY_NAME)})."
                )
            values[key.name] = _coerce(key, value, TABLE)
    for var in sorted(environ):
        if not var.startswith(ENV_PREFIX):
            continue
        name = var[len(ENV_PREFIX) :].lower().replace("_", "-")
        key = KEYS_BY_NAME.get(name)
        if key is None:
            known = ", ".join(
                ENV_PREFIX + k.upper().replace("-", "_") for k in KEYS_BY_NAME
            )
            raise ConfigError(f"unknown environment variable {var} (known: {known}).")
        values[key.name] = _coerce(key, environ[var], var)
    return Policy(
        actions={k.name: values[k.name] for k in KEYS if k.kind == "action"},
        strict=bool(values["strict"]),
        ci_output=str(values["ci-output"]),
        serial_uninstaller=str(values["serial-uninstaller"]),
        lock=bool(values["lock"]),
        lock_timeout=float(values["lock-timeout"]),
        lock_always=values["lock"] == "always",
    )


def strict_requested(table: object, environ: Mapping[str, str]) -> bool:
    """Best-effort reading of ``strict`` that never raises (used in error paths)."""
    raw: object = environ.get(ENV_PREFIX + "STRICT")
    if raw is None and isinstance(table, dict):
        raw = table.get("strict")
    if isinstance(raw, bool):
        return raw
    return isinstance(raw, str) and raw.strip().lower() in _TRUE
