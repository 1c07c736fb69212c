from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import tomlkit

from poetry_env_audit.errors import AuditError
from poetry_env_audit.errors import ConfigError
from poetry_env_audit.policy import KEYS
from poetry_env_audit.policy import SEVERITY
from poetry_env_audit.policy import Policy
from poetry_env_audit.policy import PolicyAction
from poetry_env_audit.policy import default_policy
from poetry_env_audit.policy import load_policy
from poetry_env_audit.policy import strict_requested

DEFAULT_ACTIONS = {
    "breaks": PolicyAction.BLOCK,
    "changes": PolicyAction.SERIALISE,
    "unverified": PolicyAction.BLOCK,
    "shared": PolicyAction.WARN,
    "inconsistent": PolicyAction.WARN,
    "externally-managed": PolicyAction.BLOCK,
}


def settings(policy: Policy) -> dict[str, Any]:
    return {
        **{k: v.value for k, v in policy.actions.items()},
        "strict": policy.strict,
        "ci-output": policy.ci_output,
        "serial-uninstaller": policy.serial_uninstaller,
        "lock": policy.lock,
        "lock-timeout": policy.lock_timeout,
    }


@pytest.mark.parametrize("table", [None, {}], ids=["no-table", "empty-table"])
def test_defaults(table: dict[str, object] | None) -> None:
    policy = load_policy(table, {"PATH": "/usr/bin", "POETRY_HOME": "/opt/poetry"})
    assert dict(policy.actions) == DEFAULT_ACTIONS
    assert (
        policy.strict,
        policy.ci_output,
        policy.serial_uninstaller,
        policy.lock,
        policy.lock_timeout,
    ) == (False, "auto", "builtin", True, 300.0)
    assert policy == default_policy()
    assert policy.action("breaks") is PolicyAction.BLOCK


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ({"breaks": "warn"}, {"breaks": "warn"}),
        ({"changes": "off"}, {"changes": "off"}),
        ({"changes": "serialize"}, {"changes": "serialise"}),
        ({"breaks": "SERIALIZE"}, {"breaks": "serialise"}),
        ({"breaks": " Block "}, {"breaks": "block"}),
        ({"shared": "off"}, {"shared": "off"}),
        ({"inconsistent": "block"}, {"inconsistent": "block"}),
        ({"externally-managed": "off"}, {"externally-managed": "off"}),
        ({"externally_managed": "block"}, {"externally-managed": "block"}),
        ({"strict": True}, {"strict": True}),
        ({"strict": "yes"}, {"strict": True}),
        ({"lock": False}, {"lock": False}),
        ({"lock": "off"}, {"lock": False}),
        ({"ci-output": "off"}, {"ci-output": "off"}),
        ({"ci_output": "AUTO"}, {"ci-output": "auto"}),
        ({"serial-uninstaller": "configured"}, {"serial-uninstaller": "configured"}),
        ({"serial_uninstaller": "Builtin"}, {"serial-uninstaller": "builtin"}),
        ({"lock-timeout": 10}, {"lock-timeout": 10.0}),
        ({"lock_timeout": 2.5}, {"lock-timeout": 2.5}),
        ({"lock-timeout": "0"}, {"lock-timeout": 0.0}),
    ],
    ids=lambda v: "-".join(f"{k}={w}" for k, w in v.items()),
)
def test_table_values(table: dict[str, object], expected: dict[str, Any]) -> None:
    got = settings(load_policy(table, {}))
    want = {**settings(default_policy()), **expected}
    assert got == want


def test_table_parsed_by_tomlkit() -> None:
    doc = tomlkit.parse(
        "[tool.poetry-env-audit]\n"
        'breaks = "warn"\nstrict = true\nlock = false\nlock-timeout = 12.5\n'
        'ci-output = "off"\n'
    )
    tool = doc["tool"]
    assert isinstance(tool, dict)
    table = tool["poetry-env-audit"]
    assert isinstance(table, dict)
    policy = load_policy(table, {})
    assert policy.action("breaks") is PolicyAction.WARN
    assert (policy.strict, policy.lock, policy.lock_timeout, policy.ci_output) == (
        True,
        False,
        12.5,
        "off",
    )


@pytest.mark.parametrize(
    ("table", "environ", "expected"),
    [
        ({"breaks": "warn"}, {"POETRY_ENV_AUDIT_BREAKS": "off"}, {"breaks": "off"}),
        ({}, {"POETRY_ENV_AUDIT_CHANGES": "serialize"}, {"changes": "serialise"}),
        ({"strict": False}, {"POETRY_ENV_AUDIT_STRICT": "1"}, {"strict": True}),
        ({"strict": True}, {"POETRY_ENV_AUDIT_STRICT": "no"}, {"strict": False}),
        ({"lock": True}, {"POETRY_ENV_AUDIT_LOCK": "false"}, {"lock": False}),
        ({}, {"POETRY_ENV_AUDIT_LOCK": ""}, {"lock": False}),
        (
            {"lock-timeout": 5},
            {"POETRY_ENV_AUDIT_LOCK_TIMEOUT": "60"},
            {"lock-timeout": 60.0},
        ),
        ({}, {"POETRY_ENV_AUDIT_CI_OUTPUT": "Off"}, {"ci-output": "off"}),
        (
            {"serial-uninstaller": "builtin"},
            {"POETRY_ENV_AUDIT_SERIAL_UNINSTALLER": "configured"},
            {"serial-uninstaller": "configured"},
        ),
        (
            {},
            {"POETRY_ENV_AUDIT_EXTERNALLY_MANAGED": "block"},
            {"externally-managed": "block"},
        ),
        (
            {"shared": "block"},
            {"POETRY_ENV_AUDIT_BREAKS": "warn", "OTHER_VARIABLE": "x"},
            {"shared": "block", "breaks": "warn"},
        ),
        ({"breaks": "warn"}, {"poetry_env_audit_breaks": "off"}, {"breaks": "warn"}),
    ],
    ids=[
        "env-beats-table",
        "env-alias",
        "env-bool-true",
        "env-bool-false",
        "env-lock-off",
        "env-empty-is-false",
        "env-timeout",
        "env-choice",
        "env-serial-uninstaller",
        "env-dashed-key",
        "table-and-env-merge",
        "lower-case-variable-ignored",
    ],
)
def test_environment_overrides_the_table(
    table: dict[str, object], environ: dict[str, str], expected: dict[str, Any]
) -> None:
    got = settings(load_policy(table, environ))
    assert got == {**settings(default_policy()), **expected}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        ("1", True),
        ("true", True),
        ("TRUE", True),
        ("yes", True),
        (" on ", True),
        ("0", False),
        ("false", False),
        ("No", False),
        ("off", False),
        ("", False),
    ],
    ids=lambda v: repr(v),
)
def test_bool_parsing(value: object, expected: bool) -> None:
    assert load_policy({"strict": value}, {}).strict is expected


@pytest.mark.parametrize("value", ["2", "enabled", "y", 1, 0, None, ["true"]], ids=repr)
def test_invalid_bool(value: object) -> None:
    with pytest.raises(ConfigError) as excinfo:
        load_policy({"strict": value}, {})
    message = str(excinfo.value)
    assert "strict must be true or false" in message
    assert repr(value) in message


def test_unknown_table_key_is_named() -> None:
    with pytest.raises(ConfigError) as excinfo:
        load_policy({"brakes": "warn"}, {})
    message = str(excinfo.value)
    assert message.startswith("[tool.poetry-env-audit] has an unknown key 'brakes'")
    for key in KEYS:
        assert key.name in message


def test_table_keys_are_case_sensitive() -> None:
    with pytest.raises(ConfigError, match="unknown key 'Breaks'"):
        load_policy({"Breaks": "warn"}, {})


def test_unknown_environment_variable_is_named() -> None:
    with pytest.raises(ConfigError) as excinfo:
        load_policy(None, {"POETRY_ENV_AUDIT_BRAKES": "warn"})
    message = str(excinfo.value)
    assert message.startswith("unknown environment variable POETRY_ENV_AUDIT_BRAKES")
    assert "POETRY_ENV_AUDIT_LOCK_TIMEOUT" in message
    assert "POETRY_ENV_AUDIT_EXTERNALLY_MANAGED" in message


@pytest.mark.parametrize(
    ("table", "environ", "fragments"),
    [
        (
            {"breaks": "explode"},
            {},
            ["[tool.poetry-env-audit]", "breaks must be one of", "'explode'"],
        ),
        ({"breaks": True}, {}, ["breaks must be one of", "True"]),
        ({"changes": 3}, {}, ["changes must be one of", "3"]),
        (
            {"shared": "serialise"},
            {},
            ["shared must be one of block, warn, off", "'serialise'"],
        ),
        ({"inconsistent": "serialize"}, {}, ["inconsistent", "'serialize'"]),
        (
            {},
            {"POETRY_ENV_AUDIT_BREAKS": "nope"},
            ["POETRY_ENV_AUDIT_BREAKS:", "breaks must be one of", "'nope'"],
        ),
        (
            {},
            {"POETRY_ENV_AUDIT_STRICT": "maybe"},
            ["POETRY_ENV_AUDIT_STRICT:", "strict must be true or false", "'maybe'"],
        ),
        ({"lock-timeout": "soon"}, {}, ["lock-timeout must be a number", "'soon'"]),
        ({"lock-timeout": None}, {}, ["lock-timeout must be a number", "None"]),
        ({"lock-timeout": True}, {}, ["lock-timeout must be a number", "True"]),
        ({"lock-timeout": "nan"}, {}, ["lock-timeout must be a number", "'nan'"]),
        (
            {},
            {"POETRY_ENV_AUDIT_LOCK_TIMEOUT": "NaN"},
            ["POETRY_ENV_AUDIT_LOCK_TIMEOUT:", "must be a number", "'NaN'"],
        ),
        ({"lock-timeout": -1}, {}, ["lock-timeout must not be negative", "-1"]),
        (
            {},
            {"POETRY_ENV_AUDIT_LOCK_TIMEOUT": "-0.5"},
            ["POETRY_ENV_AUDIT_LOCK_TIMEOUT:", "must not be negative", "'-0.5'"],
        ),
        (
            {"ci-output": "github"},
            {},
            ["ci-output must be one of auto, off", "'github'"],
        ),
        ({"ci-output": False}, {}, ["ci-output must be one of auto, off", "False"]),
        (
            {},
            {"POETRY_ENV_AUDIT_CI_OUTPUT": "on"},
            ["POETRY_ENV_AUDIT_CI_OUTPUT:", "ci-output", "'on'"],
        ),
        (
            {"serial-uninstaller": "pip"},
            {},
            ["serial-uninstaller must be one of builtin, configured", "'pip'"],
        ),
    ],
    ids=[
        "action",
        "action-bool",
        "action-int",
        "env-only-action",
        "env-only-action-alias",
        "env-action",
        "env-bool",
        "timeout-word",
        "timeout-none",
        "timeout-bool",
        "timeout-nan",
        "env-timeout-nan",
        "timeout-negative",
        "env-timeout-negative",
        "ci-output",
        "ci-output-bool",
        "env-ci-output",
        "serial-uninstaller",
    ],
)
def test_invalid_value_names_key_and_value(
    table: dict[str, object], environ: dict[str, str], fragments: list[str]
) -> None:
    with pytest.raises(ConfigError) as excinfo:
        load_policy(table, environ)
    message = str(excinfo.value)
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize(
    "table", [["breaks"], "breaks = 'warn'", 3], ids=["list", "string", "int"]
)
def test_table_must_be_a_table(table: object) -> None:
    with pytest.raises(
        ConfigError, match=re.escape("[tool.poetry-env-audit] must be a table")
    ):
        load_policy(table, {})  # type: ignore[arg-type]


def test_config_error_is_an_audit_error() -> None:
    with pytest.raises(AuditError):
        load_policy({"nope": 1}, {})


def test_severity_orders_the_actions() -> None:
    assert sorted(PolicyAction, key=SEVERITY.__getitem__) == [
        PolicyAction.OFF,
        PolicyAction.WARN,
        PolicyAction.SERIALISE,
        PolicyAction.BLOCK,
    ]
    assert str(PolicyAction.SERIALISE) == "serialise"


@pytest.mark.parametrize(
    ("table", "environ", "expected"),
    [
        (None, {}, False),
        ({"strict": True}, {}, True),
        ({"strict": "yes"}, {}, True),
        ({"strict": True}, {"POETRY_ENV_AUDIT_STRICT": "0"}, False),
        (None, {"POETRY_ENV_AUDIT_STRICT": "on"}, True),
        ({"strict": "bogus", "breaks": "bogus"}, {}, False),
        ("not a table", {}, False),
    ],
    ids=["absent", "table", "table-text", "env-wins", "env", "garbage", "not-a-table"],
)
def test_strict_requested_never_raises(
    table: object, environ: dict[str, str], expected: bool
) -> None:
    assert strict_requested(table, environ) is expected


# --------------------------------------------------------- README, Configuration

README = Path(__file__).resolve().parents[2] / "README.md"
README_ROW = re.compile(
    r"^\| `(?P<name>[a-z-]+)` \| (?P<type>[^|]+(?:\\\|[^|]+)*) \| (?P<default>[^|]+) \|"
)


def _readme_rows() -> dict[str, tuple[str, str]]:
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        match = README_ROW.match(line)
        if match:
            rows[match["name"]] = (match["type"].strip(), match["default"].strip())
    return rows


def _shown_default(value: object) -> str:
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float):
        return f"`{value:g}`"
    return f"`{value}`"


def test_readme_configuration_table_matches_the_keys() -> None:
    """The table users read is the one the code enforces: every key, its values
    and its default, nothing else."""
    rows = _readme_rows()
    assert list(rows) == [key.name for key in KEYS]
    for key in KEYS:
        kind, default = rows[key.name]
        assert default == _shown_default(key.default), key.name
        if key.allowed:
            assert kind == r" \| ".join(f"`{v}`" for v in key.allowed), key.name
        else:
            kinds = {"bool": "bool", "switch": "bool", "float": "float"}
            assert kind.split()[0] == kinds[key.kind]
