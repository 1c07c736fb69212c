from __future__ import annotations

import pytest

from poetry_env_audit.isolate import POETRY_SCRIPT
from poetry_env_audit.isolate import CannotIsolateError
from poetry_env_audit.isolate import DistPlan
from poetry_env_audit.isolate import LauncherCandidate
from poetry_env_audit.isolate import Layout
from poetry_env_audit.isolate import Outcome
from poetry_env_audit.isolate import RecordRow
from poetry_env_audit.isolate import Script
from poetry_env_audit.isolate import State
from poetry_env_audit.isolate import base_interpreter
from poetry_env_audit.isolate import check_scripts
from poetry_env_audit.isolate import check_targets
from poetry_env_audit.isolate import choose_launcher
from poetry_env_audit.isolate import console_scripts
from poetry_env_audit.isolate import decide
from poetry_env_audit.isolate import format_record
from poetry_env_audit.isolate import inside
from poetry_env_audit.isolate import is_poetry_launcher
from poetry_env_audit.isolate import launcher_python
from poetry_env_audit.isolate import new_site
from poetry_env_audit.isolate import parse_record
from poetry_env_audit.isolate import plan_dist
from poetry_env_audit.isolate import plan_wheel
from poetry_env_audit.isolate import points_at
from poetry_env_audit.isolate import record_hash
from poetry_env_audit.isolate import relative_bin
from poetry_env_audit.isolate import render_launcher
from poetry_env_audit.isolate import render_script
from poetry_env_audit.isolate import shebang
from poetry_env_audit.isolate import writable
from poetry_env_audit.poetry_env import offers_isolation

LAYOUT = Layout("/root/.local/share/pypoetry")
VENV_PYTHON = "/root/.local/share/pypoetry/isolated-venv/bin/python"
SITE = "/usr/local/lib/python3.11/site-packages"
PIP_LAUNCHER = (
    "#!/usr/local/bin/python3.11\n"
    "# -*- coding: utf-8 -*-\nimport re\nimport sys\n"
    "from poetry.console.application import main\n"
    "if __name__ == '__main__':\n"
    "    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])\n"
    "    sys.exit(main())\n"
)
LONG_LAUNCHER = (
    "#!/bin/sh\n'''exec' /very/long/prefix/bin/python3.11 \"$0\" \"$@\"\n' '''\n"
    "# -*- coding: utf-8 -*-\nimport re\nimport sys\n"
    "from poetry.console.application import main\n"
)


# ------------------------------------------------------------------ layout


def test_layout_keeps_everything_beside_the_venv() -> None:
    assert (LAYOUT.venv, LAYOUT.state, LAYOUT.backup, LAYOUT.python) == (
        "/root/.local/share/pypoetry/isolated-venv",
        "/root/.local/share/pypoetry/isolated-venv.json",
        "/root/.local/share/pypoetry/isolated-venv.launcher-backup",
        VENV_PYTHON,
    )
    assert new_site(LAYOUT.venv, "3.11") == (
        "/root/.local/share/pypoetry/isolated-venv/lib/python3.11/site-packages"
    )
    assert relative_bin(new_site(LAYOUT.venv, "3.11"), LAYOUT.bin_dir) == "../../../bin"


@pytest.mark.parametrize(
    ("present", "base_executable", "expected"),
    [
        ({"/usr/bin/python3.11", "/usr/bin/python3"}, None, "/usr/bin/python3.11"),
        ({"/usr/bin/python3"}, "/x/python", "/usr/bin/python3"),
        ({"/x/python"}, "/x/python", "/x/python"),
        (set(), "/x/python", None),
        (set(), None, None),
    ],
    ids=["versioned", "python3", "base-executable", "none-exists", "nothing"],
)
def test_base_interpreter(
    present: set[str], base_executable: str | None, expected: str | None
) -> None:
    assert base_interpreter("/usr", "3.11", base_executable, present.__contains__) == (
        expected
    )


# ------------------------------------------------------------------ RECORD


def test_record_round_trip() -> None:
    text = (
        "poetry/__init__.py,sha256=abc,10\n"
        '"odd,name.py",sha256=def,3\n'
        "poetry-2.5.1.dist-info/RECORD,,\n"
    )
    rows = parse_record(text)
    assert rows == (
        RecordRow("poetry/__init__.py", "sha256=abc", "10"),
        RecordRow("odd,name.py", "sha256=def", "3"),
        RecordRow("poetry-2.5.1.dist-info/RECORD", "", ""),
    )
    assert format_record(rows) == text


def test_record_hash_is_urlsafe_without_padding() -> None:
    assert record_hash(b"") == "sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("poetry/__init__.py", "poetry/__init__.py"),
        ("./poetry/x.py", "poetry/x.py"),
        ("poetry/../cleo/x.py", "cleo/x.py"),
        ("../../../bin/poetry", None),
        ("poetry/../../x", None),
        ("/usr/bin/poetry", None),
        ("..\\Scripts\\poetry.exe", None),
        ("", None),
        (".", None),
    ],
    ids=[
        "plain",
        "dot",
        "normalised",
        "bin",
        "escapes",
        "absolute",
        "windows",
        "empty",
        "site-itself",
    ],
)
def test_inside(path: str, expected: str | None) -> None:
    assert inside(path) == expected


# ------------------------------------------------------------------ scripts


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "[console_scripts]\npoetry = poetry.console.application:main\n",
            (POETRY_SCRIPT,),
        ),
        (
            "[console_scripts]\nx = a.b:c.d [extra]\n[gui_scripts]\ny = e:f\n",
            (Script("x", "a.b", "c.d"),),
        ),
        ("[poetry.application.plugin]\nenv-audit = a:B\n", ()),
        ("[console_scripts]\nbroken = nocolon\n", ()),
        ("not an ini file", ()),
        (None, ()),
    ],
    ids=[
        "poetry",
        "extras-and-gui",
        "no-section",
        "no-attribute",
        "unreadable",
        "none",
    ],
)
def test_console_scripts(text: str | None, expected: tuple[Script, ...]) -> None:
    assert console_scripts(text) == expected


@pytest.mark.parametrize(
    ("python", "expected"),
    [
        ("/usr/bin/python3", "#!/usr/bin/python3\n"),
        (
            "/opt/my env/bin/python",
            "#!/bin/sh\n'''exec' '/opt/my env/bin/python' \"$0\" \"$@\"\n' '''\n",
        ),
        (
            "/" + "p" * 130,
            f"#!/bin/sh\n'''exec' /{'p' * 130} \"$0\" \"$@\"\n' '''\n",
        ),
    ],
    ids=["short", "space", "long"],
)
def test_shebang(python: str, expected: str) -> None:
    assert shebang(python) == expected
    assert launcher_python(expected + "import sys\n") == python


def test_render_script_calls_dotted_attributes() -> None:
    assert render_script("/v/bin/python", Script("x", "a.b", "c.d")) == (
        "#!/v/bin/python\nimport sys\nfrom a.b import c\n"
        'if __name__ == "__main__":\n    sys.exit(c.d())\n'
    )


@pytest.mark.parametrize(
    ("text", "python", "is_poetry"),
    [
        (PIP_LAUNCHER, "/usr/local/bin/python3.11", True),
        (LONG_LAUNCHER, "/very/long/prefix/bin/python3.11", True),
        (render_launcher(VENV_PYTHON, LAYOUT.venv), VENV_PYTHON, True),
        (
            "#!/usr/bin/env python3\nfrom poetry.console.application import main\n",
            None,
            False,
        ),
        ("#!/usr/bin/python3\nprint('hello')\n", "/usr/bin/python3", False),
        ("\x7fELF binary", None, False),
        ("#!/bin/sh\nexec something\n", None, False),
        ("", None, False),
    ],
    ids=[
        "pip",
        "pip-long-path",
        "ours",
        "env",
        "not-poetry",
        "binary",
        "shell",
        "empty",
    ],
)
def test_launcher_python(text: str, python: str | None, is_poetry: bool) -> None:
    assert launcher_python(text) == python
    assert is_poetry_launcher(text) is is_poetry


def test_render_launcher_names_the_environment_and_the_undo() -> None:
    text = render_launcher(VENV_PYTHON, LAYOUT.venv)
    assert text.startswith(f"#!{VENV_PYTHON}\n")
    assert LAYOUT.venv in text
    assert "poetry self isolate --undo" in text
    assert "from poetry.console.application import main" in text


# ------------------------------------------------------------------ plan_dist

RECORD = (
    "../../../bin/poetry,sha256=old,326\n"
    "../../../share/man/man1/poetry.1,sha256=man,10\n"
    "poetry/__init__.py,sha256=a,1\n"
    "poetry/__pycache__/__init__.cpython-311.pyc,sha256=b,2\n"
    "poetry/gone.cpython-311.pyc,,\n"
    "poetry-2.5.1.dist-info/METADATA,sha256=c,3\n"
    "poetry-2.5.1.dist-info/RECORD,,\n"
)
ENTRY_POINTS = "[console_scripts]\npoetry = poetry.console.application:main\n"


def plan(
    record: str | None = RECORD,
    missing: frozenset[str] = frozenset({"poetry/gone.cpython-311.pyc"}),
) -> DistPlan:
    return plan_dist(
        name="poetry",
        version="2.5.1",
        source=SITE,
        record=record,
        entry_points=ENTRY_POINTS,
        exists=lambda rel: rel not in missing,
        python=VENV_PYTHON,
        bin_from_site="../../../bin",
    )


def test_plan_dist_copies_what_lives_in_site_packages() -> None:
    got = plan()
    assert got.dist_info == "poetry-2.5.1.dist-info"
    assert got.files == (
        "poetry/__init__.py",
        "poetry/__pycache__/__init__.cpython-311.pyc",
        "poetry-2.5.1.dist-info/METADATA",
    )
    assert got.scripts == (POETRY_SCRIPT,)
    assert got.skipped == ("../../../share/man/man1/poetry.1",)


def test_plan_dist_writes_a_record_of_the_copy() -> None:
    script = render_script(VENV_PYTHON, POETRY_SCRIPT).encode()
    assert parse_record(plan().record) == (
        RecordRow("../../../bin/poetry", record_hash(script), str(len(script))),
        RecordRow("poetry/__init__.py", "sha256=a", "1"),
        RecordRow("poetry/__pycache__/__init__.cpython-311.pyc", "sha256=b", "2"),
        RecordRow("poetry-2.5.1.dist-info/METADATA", "sha256=c", "3"),
        RecordRow("poetry-2.5.1.dist-info/RECORD"),
    )


@pytest.mark.parametrize(
    ("record", "missing", "message"),
    [
        (
            None,
            frozenset(),
            f"poetry 2.5.1 ({SITE}) has no RECORD file and Poetry's cache no"
            " wheel of it: its files cannot be copied",
        ),
        (
            "poetry/__init__.py,,\n",
            frozenset(),
            f"poetry 2.5.1 ({SITE}): its RECORD does not list itself",
        ),
        (
            RECORD,
            frozenset({"poetry/__init__.py"}),
            f"poetry 2.5.1: {SITE}/poetry/__init__.py is missing",
        ),
    ],
    ids=["no-record", "record-without-itself", "file-missing"],
)
def test_plan_dist_refuses(
    record: str | None, missing: frozenset[str], message: str
) -> None:
    with pytest.raises(CannotIsolateError) as raised:
        plan(record, missing)
    assert str(raised.value) == message


def test_two_distributions_owning_one_file_or_script_are_refused() -> None:
    first = plan()
    other = DistPlan(
        name="impostor",
        version="1.0",
        source=SITE,
        dist_info="impostor-1.0.dist-info",
        files=("poetry/__init__.py", "poetry-2.5.1.dist-info/METADATA"),
        scripts=(POETRY_SCRIPT,),
        skipped=(),
        record="",
    )
    check_targets([first, plan()])  # the same distribution twice is no conflict
    with pytest.raises(CannotIsolateError, match="poetry and impostor both install"):
        check_scripts([first, other])
    # Namespace __init__.py files may be shared; any other file may not.
    with pytest.raises(CannotIsolateError, match=r"both install poetry-2\.5\.1\.dist"):
        check_targets([first, other])


# ------------------------------------------------------------------ launcher


def candidate(path: str, text: str | None, python: str | None) -> LauncherCandidate:
    return LauncherCandidate(path=path, text=text, python=python)


OURS = render_launcher(VENV_PYTHON, LAYOUT.venv)


@pytest.mark.parametrize(
    ("candidates", "expected"),
    [
        (
            [
                candidate(
                    "/usr/local/bin/poetry", PIP_LAUNCHER, "/usr/local/bin/python3.11"
                )
            ],
            "/usr/local/bin/poetry",
        ),
        (
            [
                candidate("/elsewhere/poetry", PIP_LAUNCHER, "/other/bin/python3"),
                candidate(
                    "/usr/local/bin/poetry", PIP_LAUNCHER, "/usr/local/bin/python3"
                ),
            ],
            "/usr/local/bin/poetry",
        ),
        (
            [candidate("/usr/local/bin/poetry", OURS, VENV_PYTHON)],
            "/usr/local/bin/poetry",
        ),
        ([candidate("/usr/local/bin/poetry", None, None)], None),
        (
            [
                candidate(
                    "/usr/local/bin/black",
                    "#!/usr/local/bin/python3\n",
                    "/usr/local/bin/python3",
                )
            ],
            None,
        ),
        ([candidate("/opt/bin/poetry", PIP_LAUNCHER, "/opt/bin/python3")], None),
        ([], None),
    ],
    ids=[
        "this-environment",
        "other-environment-first",
        "already-ours",
        "unreadable",
        "not-poetry",
        "another-poetry",
        "none",
    ],
)
def test_choose_launcher(
    candidates: list[LauncherCandidate], expected: str | None
) -> None:
    chosen = choose_launcher(
        candidates, running_bins=("/usr/local/bin",), isolated_bin=LAYOUT.bin_dir
    )
    assert (chosen.path if chosen else None) == expected


def test_points_at_is_the_exact_text_we_write() -> None:
    assert points_at(candidate("/p", OURS, VENV_PYTHON), LAYOUT)
    assert not points_at(candidate("/p", OURS + "\n", VENV_PYTHON), LAYOUT)
    assert not points_at(
        candidate("/p", PIP_LAUNCHER, "/usr/local/bin/python3"), LAYOUT
    )


@pytest.mark.parametrize(
    ("mode", "access", "expected"),
    [
        (0o755, True, True),
        (0o555, True, False),
        (0o755, False, False),
        (0o700, True, True),
    ],
    ids=["writable", "read-only-bits", "os-refuses", "owner-only"],
)
def test_writable(mode: int, access: bool, expected: bool) -> None:
    assert writable(mode, access=access) is expected


# ------------------------------------------------------------------ state


def state(original_prefix: str = "/usr/local") -> State:
    return State(
        venv=LAYOUT.venv,
        launcher="/usr/local/bin/poetry",
        backup=LAYOUT.backup,
        original_prefix=original_prefix,
        original_python="/usr/local/bin/python3.11",
        base_python="/usr/local/bin/python3.11",
        poetry="2.5.1",
        distributions={"poetry": "2.5.1", "cleo": "2.1.0"},
        plugins=("poetry-env-audit",),
    )


def test_state_round_trip() -> None:
    text = state().to_json()
    assert State.from_json(text) == state()
    assert text.index('"cleo"') < text.index('"poetry": "2.5.1"')  # sorted


@pytest.mark.parametrize(
    "text",
    ["", "[]", '{"schema": 99}', '{"schema": 1}', '{"schema": 1, "venv": 1}'],
    ids=["empty", "list", "future-schema", "no-fields", "missing-fields"],
)
def test_unreadable_state_is_a_refusal(text: str) -> None:
    with pytest.raises(CannotIsolateError, match="the state file is unreadable"):
        State.from_json(text)


# ------------------------------------------------------------------ decide

THIS = candidate("/usr/local/bin/poetry", PIP_LAUNCHER, "/usr/local/bin/python3.11")
SWITCHED = candidate("/usr/local/bin/poetry", OURS, VENV_PYTHON)


@pytest.mark.parametrize(
    ("kind", "prefix", "launcher", "saved", "problems", "expected"),
    [
        ("system", "/usr/local", THIS, None, (), Outcome.ISOLATE),
        ("venv", "/venv", THIS, None, (), Outcome.ISOLATE),
        ("venv", "/dedicated", THIS, None, (), Outcome.ALREADY),
        ("system", "/usr/local", THIS, state(), (), Outcome.ISOLATE),
        ("venv", LAYOUT.venv, SWITCHED, state(), (), Outcome.ALREADY),
        ("system", "/usr/local", SWITCHED, state(), (), Outcome.ALREADY),
        ("pipx", "/pipx/venvs/poetry", None, None, (), Outcome.ALREADY),
        ("installer", "/data/venv", THIS, None, (), Outcome.ALREADY),
        (
            "system",
            "/usr/local",
            None,
            None,
            (),
            "no `poetry` launcher of this Poetry was found (running as `python -m poetry`)",
        ),
        (
            "system",
            "/usr/local",
            THIS,
            None,
            ("poetry 2.5.1 requires x, which is not installed",),
            "Poetry's environment is already inconsistent (poetry 2.5.1 requires x",
        ),
        (
            "system",
            "/usr/local",
            THIS,
            state("/other"),
            (),
            f"{LAYOUT.venv} already holds the isolated Poetry of /other",
        ),
    ],
    ids=[
        "system",
        "venv",
        "venv-alone-and-inactive",
        "interrupted-or-reverted-by-pip",
        "running-isolated",
        "launcher-switched",
        "pipx",
        "installer",
        "no-launcher",
        "inconsistent",
        "another-poetry-isolated-there",
    ],
)
def test_decide(
    kind: str,
    prefix: str,
    launcher: LauncherCandidate | None,
    saved: State | None,
    problems: tuple[str, ...],
    expected: Outcome | str,
) -> None:
    def run() -> Outcome:
        return decide(
            kind=kind,
            prefix=prefix,
            layout=LAYOUT,
            launcher=launcher,
            state=saved,
            problems=problems,
            launcher_hint="running as `python -m poetry`",
            dedicated=prefix == "/dedicated",
        )

    if isinstance(expected, Outcome):
        assert run() is expected
        return
    with pytest.raises(CannotIsolateError) as raised:
        run()
    assert str(raised.value).startswith(expected)


@pytest.mark.parametrize(
    ("shared", "kind", "isolated_here", "expected"),
    [
        (True, "system", False, True),
        (True, "venv", False, True),
        (False, "system", False, False),
        (True, "pipx", False, False),
        (True, "installer", False, False),
        (True, "venv", True, False),
    ],
    ids=["system", "venv", "not-shared", "pipx", "installer", "ours"],
)
def test_offers_isolation(
    shared: bool, kind: str, isolated_here: bool, expected: bool
) -> None:
    assert (
        offers_isolation(shared=shared, kind=kind, isolated_here=isolated_here)
        is expected
    )


# ------------------------------------------------------------------ cached wheels

WHEEL_RECORD = (
    "fake_plugin.py,sha256=m,5\n"
    "fake_plugin-1.0.data/purelib/extra.py,sha256=e,6\n"
    "fake_plugin-1.0.data/scripts/tool,sha256=t,7\n"
    "fake_plugin-1.0.data/data/share/doc.txt,sha256=d,8\n"
    "fake_plugin-1.0.dist-info/METADATA,sha256=x,9\n"
    "fake_plugin-1.0.dist-info/entry_points.txt,sha256=y,10\n"
    "fake_plugin-1.0.dist-info/RECORD,,\n"
)
WHEEL_MEMBERS = [
    *(row.split(",")[0] for row in WHEEL_RECORD.splitlines()),
    "fake_plugin-1.0.dist-info/",
]


def wheel_plan(
    record: str | None = WHEEL_RECORD, members: list[str] = WHEEL_MEMBERS
) -> DistPlan:
    return plan_wheel(
        name="fake-plugin",
        version="1.0",
        wheel="/cache/artifacts/ab/fake_plugin-1.0-py3-none-any.whl",
        members=members,
        record=record,
        entry_points="[console_scripts]\nfake = fake_plugin:main\n",
        python=VENV_PYTHON,
        bin_from_site="../../../bin",
    )


def test_plan_wheel_installs_as_an_installer_would() -> None:
    got = wheel_plan()
    assert got.from_wheel
    assert got.dist_info == "fake_plugin-1.0.dist-info"
    assert got.files == (
        "fake_plugin.py",
        "extra.py",
        "fake_plugin-1.0.dist-info/METADATA",
        "fake_plugin-1.0.dist-info/entry_points.txt",
    )
    assert got.members == (
        "fake_plugin.py",
        "fake_plugin-1.0.data/purelib/extra.py",
        "fake_plugin-1.0.dist-info/METADATA",
        "fake_plugin-1.0.dist-info/entry_points.txt",
    )
    assert got.skipped == (
        "fake_plugin-1.0.data/scripts/tool",
        "fake_plugin-1.0.data/data/share/doc.txt",
    )
    assert got.scripts == (Script("fake", "fake_plugin", "main"),)
    rows = parse_record(got.record)
    assert [r.path for r in rows] == [
        "fake_plugin.py",
        "extra.py",
        "fake_plugin-1.0.dist-info/METADATA",
        "fake_plugin-1.0.dist-info/entry_points.txt",
        "../../../bin/fake",
        "fake_plugin-1.0.dist-info/RECORD",
    ]
    assert rows[1] == RecordRow("extra.py", "sha256=e", "6")


@pytest.mark.parametrize(
    ("record", "members", "message"),
    [
        (None, WHEEL_MEMBERS, "has no RECORD"),
        ("fake_plugin.py,sha256=m,5\n", WHEEL_MEMBERS, "has no RECORD"),
        (WHEEL_RECORD, [*WHEEL_MEMBERS, "smuggled.py"], "smuggled.py of the cached"),
    ],
    ids=["no-record", "record-without-itself", "file-not-in-record"],
)
def test_plan_wheel_refuses(
    record: str | None, members: list[str], message: str
) -> None:
    with pytest.raises(CannotIsolateError, match=message):
        wheel_plan(record, members)
