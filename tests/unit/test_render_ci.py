"""CI renderers: golden output from fixed findings, hostile strings included.

The golden files hold the output with ``\\``, ``\\r`` and ``ESC`` written as
``\\\\``, ``\\r`` and ``\\x1b`` so that they stay readable and survive editors
and git. ``UPDATE_GOLDEN=1 pytest tests/unit/test_render_ci.py`` rewrites them.

Beyond the golden text, each CI output is read back the way the CI system
reads it (the GitHub runner's ``ActionCommand.TryParseV2``/``TryParse``, the
Azure agent's ``Command.TryParse``, GitLab's section markers): the commands
found must be exactly one per finding that deserves one, and unescaping them
must give back the data unchanged.
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from poetry_env_audit.findings import EnvFinding
from poetry_env_audit.findings import EnvKind
from poetry_env_audit.findings import Finding
from poetry_env_audit.findings import Remedy
from poetry_env_audit.findings import Requirer
from poetry_env_audit.findings import Verdict
from poetry_env_audit.plan import Action
from poetry_env_audit.poetry_env import Installation
from poetry_env_audit.poetry_env import PoetryEnvironment
from poetry_env_audit.policy import PolicyAction
from poetry_env_audit.render import azure
from poetry_env_audit.render import github
from poetry_env_audit.render import gitlab
from poetry_env_audit.render.annotations import Annotation
from poetry_env_audit.render.annotations import Level
from poetry_env_audit.render.annotations import annotations_of
from poetry_env_audit.render.annotations import level_of
from poetry_env_audit.render.compose import Chunk
from poetry_env_audit.render.compose import compose
from poetry_env_audit.render.compose import guard_log
from poetry_env_audit.render.formats import Format
from poetry_env_audit.report import Report
from poetry_env_audit.report import RunVerdict
from poetry_env_audit.target import TargetEnvironment
from poetry_env_audit.target import TargetKind
from poetry_env_audit.target import TargetReason

if TYPE_CHECKING:
    from collections.abc import Iterable
    from collections.abc import Sequence
    from typing import Callable

    from poetry_env_audit.render.annotations import CIRender

GOLDEN = Path(__file__).parent / "golden"
NOW = 1700000000
TOKEN = "0123456789abcdef0123456789abcdef"  # noqa: S105 - fixed stop-commands token

# A project directory whose name holds a newline and workflow-command syntax.
HOSTILE_DIR = (
    "/work/evil\n::error file=x,line=1::owned/ci;]##vso[task.complete result=Failed]"
)
HOSTILE_LOCK = HOSTILE_DIR + "/poetry.lock"
# A requirement text with an encoded newline that must stay text.
HOSTILE_REQUIREMENT = "urllib3 (<3%0A::error::encoded,>=1.21)"

# ----------------------------------------------------------------- fixtures


def _poetry(prefix: str = "/opt/poetry") -> PoetryEnvironment:
    return PoetryEnvironment(
        version="2.1.1",
        python="3.12.3",
        prefix=prefix,
        base_prefix="/usr",
        import_paths=(f"{prefix}/lib/python3.12/site-packages",),
        plugins=(),
        needed=(),
        problems=(),
        vendored=(),
        installation=Installation(
            kind="system",
            isolated=False,
            externally_managed=False,
            externally_managed_message=None,
            others=(),
        ),
        index={},
    )


def _target(path: str, shared: bool = True) -> TargetEnvironment:
    site = f"{path}/lib/python3.12/site-packages"
    return TargetEnvironment(
        path=path,
        python=f"{path}/bin/python",
        kind=TargetKind.SYSTEM,
        reason=TargetReason.CREATE_FALSE,
        site_dirs=(site,),
        shared_dirs=(site,) if shared else (),
    )


def hostile_report() -> Report:
    """Every kind of finding and level, with hostile data in every field."""
    findings = (
        Finding(
            package="urllib3",
            current="2.2.3",
            planned="3.0.0",
            action=Action.UPGRADE,
            verdict=Verdict.BREAKS,
            required_by=(
                Requirer("poetry", "2.1.1", HOSTILE_REQUIREMENT, satisfied=False),
                Requirer("requests", "2.32.3", "urllib3 (>=1.21.1)", satisfied=True),
            ),
            detail=f"urllib3 would be upgraded (2.2.3 -> 3.0.0), but poetry 2.1.1 requires {HOSTILE_REQUIREMENT}",
            policy=PolicyAction.BLOCK,
            remedies=(
                Remedy("Pin it", 'poetry add "urllib3<3%0D%0A::warning::x"'),
                Remedy("Move Poetry out of the way\r\n::notice::carriage"),
            ),
        ),
        Finding(
            package="::error::table-row,pkg:name",  # starts a table row of the text report
            current="1.0",
            planned="1.1",
            action=Action.UPGRADE,
            verdict=Verdict.CHANGES,
            required_by=(Requirer("poetry", "2.1.1", "x (>=1)", satisfied=True),),
            detail="::error::table-row,pkg:name would be upgraded (1.0 -> 1.1) in place",
            policy=PolicyAction.SERIALISE,
        ),
        Finding(
            package="##vso[task.setvariable variable=PWNED]yes",
            current="1.0",
            planned=None,
            action=Action.REMOVE,
            verdict=Verdict.BREAKS,
            required_by=(),
            detail="##vso[task.setvariable variable=PWNED]yes 1.0 would be removed; ]%AZP25",
            policy=PolicyAction.WARN,
        ),
        Finding(
            package="quiet",
            current="1.0",
            planned="1.0",
            action=Action.REINSTALL,
            verdict=Verdict.CHANGES,
            required_by=(),
            detail="quiet would be reinstalled (1.0) in place",
            policy=PolicyAction.OFF,
        ),
    )
    environment = (
        EnvFinding(
            kind=EnvKind.SHARED,
            message=f"Poetry 2.1.1 runs from {HOSTILE_DIR}, the environment this command installs into.",
            policy=PolicyAction.WARN,
            remedies=(
                Remedy(
                    "Use a virtual environment", "poetry config virtualenvs.create true"
                ),
            ),
        ),
        EnvFinding(
            kind=EnvKind.EXTERNALLY_MANAGED,
            message="/usr/bin/python3 is externally managed: \x1b[0Ksection_end:1:poetry_env_audit\r\x1b[0K",
            policy=PolicyAction.WARN,
        ),
        EnvFinding(
            kind=EnvKind.INCONSISTENT,
            message="Poetry's environment is already inconsistent: x.",
            policy=PolicyAction.OFF,
        ),
    )
    return Report(
        project=HOSTILE_DIR,
        poetry=_poetry(),
        target=_target(HOSTILE_DIR + "/.venv"),
        sync=False,
        changes=(),
        findings=findings,
        environment=environment,
        verdict=RunVerdict.BLOCK,
    )


def isolated_report() -> Report:
    """Nothing to say but a not-isolated notice."""
    return Report(
        project="/work/proj",
        poetry=_poetry(),
        target=_target("/work/proj/.venv", shared=False),
        sync=False,
        changes=(),
        findings=(),
        environment=(
            EnvFinding(
                kind=EnvKind.NOT_ISOLATED,
                message="Poetry 2.1.1 is installed in shared (the system interpreter) at /usr; this project's target does not overlap it.",
                policy=None,
                remedies=(Remedy("Install Poetry with pipx", "pipx install poetry"),),
            ),
        ),
        verdict=RunVerdict.OK,
    )


LOCK_LINES = {"urllib3": 23, "::error::table-row,pkg:name": 40}
#: Findings of hostile_report() that deserve an annotation, per level.
EXPECTED_LEVELS = [
    Level.ERROR,
    Level.WARNING,
    Level.WARNING,
    Level.NOTICE,
    Level.WARNING,
]


# ----------------------------------------------------------------- golden files


def _visible(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\r", "\\r").replace("\x1b", "\\x1b")


def check_golden(name: str, output: str) -> None:
    path = GOLDEN / name
    visible = _visible(output) + "\n"
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(visible, encoding="utf-8", newline="\n")
    assert path.exists(), f"missing golden file {path}; run with UPDATE_GOLDEN=1"
    assert visible == path.read_text(encoding="utf-8")


def as_log(chunks: Sequence[Chunk]) -> str:
    """What the command writes to a log (no terminal): through cleo, as it does."""
    from cleo.io.buffered_io import BufferedIO
    from cleo.io.outputs.output import Type

    io = BufferedIO(decorated=False)
    _poetry_styles(io)
    for chunk in chunks:
        io.write_line(chunk.text, type=Type.RAW if chunk.raw else Type.NORMAL)
    return io.fetch_output()


#: Poetry's own styles, so that the plain text keeps no tag (see ``Application.create_io``).
POETRY_STYLES = (
    "c1",
    "c2",
    "b",
    "info",
    "comment",
    "question",
    "warning",
    "debug",
    "success",
    "error",
    "c1_dark",
    "c2_dark",
    "success_dark",
)


def _poetry_styles(io: object) -> None:
    from cleo.formatters.style import Style

    formatter = io.output.formatter  # type: ignore[attr-defined]
    for name in POETRY_STYLES:
        formatter.set_style(name, Style())


# ----------------------------------------------------------------- what CI systems read


def _github_unescape_data(text: str) -> str:
    # ActionCommand.UnescapeData: its mappings in order, "%" last.
    return text.replace("%0D", "\r").replace("%0A", "\n").replace("%25", "%")


def _github_unescape_property(text: str) -> str:
    for token, code in (
        ("\r", "%0D"),
        ("\n", "%0A"),
        (":", "%3A"),
        (",", "%2C"),
        ("%", "%25"),
    ):
        text = text.replace(code, token)
    return text


def runner_lines(output: str) -> list[str]:
    """Lines as .NET ``ReadLine`` splits them (``\\n``, ``\\r\\n`` and a lone ``\\r``)."""
    return re.split(r"\r\n|\r|\n", output)


def github_commands(output: str) -> list[tuple[str, dict[str, str], str]]:
    """The commands the Actions runner would run, stop-commands honoured."""
    found: list[tuple[str, dict[str, str], str]] = []
    stopped: str | None = None
    for raw in runner_lines(output):
        line = raw.lstrip()
        if stopped is not None:
            if line == f"::{stopped}::":
                stopped = None
            continue
        if line.startswith("::"):
            end = line.find("::", 2)
            if end < 0:
                continue
            info, data = line[2:end], line[end + 2 :]
            name, _, props_text = info.partition(" ")
            props: dict[str, str] = {}
            for prop in filter(None, props_text.strip().split(",")):
                key, eq, value = prop.partition("=")
                assert eq, f"property without '=' in {line!r}"
                props[key] = _github_unescape_property(value)
            if name == "stop-commands":
                stopped = data
                continue
            found.append((name, props, _github_unescape_data(data)))
        # Version 1 commands ("##[name]") are found anywhere in a line.
        assert "##[" not in line, f"legacy runner command in {line!r}"
    assert stopped is None, "stop-commands never resumed"
    return found


def azure_commands(output: str) -> list[tuple[str, dict[str, str], str]]:
    """The commands the Azure agent would run (``##vso[`` anywhere in a line)."""

    def unescape(
        text: str,
    ) -> str:  # CommandStringConvertor.Unescape, DECODE_PERCENTS on
        for token, code in ((";", "%3B"), ("\r", "%0D"), ("\n", "%0A"), ("]", "%5D")):
            text = text.replace(code, token)
        return text.replace("%AZP25", "%")

    found: list[tuple[str, dict[str, str], str]] = []
    for line in runner_lines(output):
        start = line.find("##vso[")
        if start < 0:
            continue
        close = line.find("]", start)
        assert close > 0, f"unterminated command in {line!r}"
        info = line[start + len("##vso[") : close]
        name, _, props_text = info.partition(" ")
        props: dict[str, str] = {}
        for prop in filter(None, props_text.split(";")):
            key, eq, value = prop.partition("=")
            assert eq, f"property without '=' in {line!r}"
            props[key] = unescape(value)
        found.append((name, props, unescape(line[close + 1 :])))
    return found


GITLAB_MARKER = re.compile(
    r"section_(start|end):(\d+):([a-zA-Z0-9_.-]+)(\[[a-zA-Z0-9_.=,-]*\])?\r\x1b\[0K"
)


# ----------------------------------------------------------------- levels


@pytest.mark.parametrize(
    ("policy", "kind", "expected"),
    [
        (PolicyAction.BLOCK, None, Level.ERROR),
        (PolicyAction.SERIALISE, None, Level.WARNING),
        (PolicyAction.WARN, None, Level.WARNING),
        (PolicyAction.OFF, None, None),
        (None, None, None),
        (PolicyAction.WARN, "shared", Level.NOTICE),
        (PolicyAction.BLOCK, "shared", Level.ERROR),
        (PolicyAction.OFF, "shared", None),
        (None, "not-isolated", Level.NOTICE),
        (PolicyAction.WARN, "externally-managed", Level.WARNING),
        (PolicyAction.BLOCK, "inconsistent", Level.ERROR),
        (PolicyAction.OFF, "inconsistent", None),
    ],
)
def test_level_of(
    policy: PolicyAction | None, kind: str | None, expected: Level | None
) -> None:
    assert level_of(policy, EnvKind(kind) if kind else None) is expected


def test_one_annotation_per_finding() -> None:
    notes = annotations_of(
        hostile_report(), lock_path=HOSTILE_LOCK, lock_lines=LOCK_LINES
    )
    assert [n.level for n in notes] == EXPECTED_LEVELS
    first = notes[0]
    assert first.file == HOSTILE_LOCK
    assert first.line == 23
    assert first.title == "env-audit: urllib3 breaks Poetry"
    # Requirement and remedies ride in the one message, on lines of their own.
    assert first.message.split("\n") == [
        f"urllib3 would be upgraded (2.2.3 -> 3.0.0), but poetry 2.1.1 requires {HOSTILE_REQUIREMENT}.",
        f"Required by: poetry 2.1.1 requires {HOSTILE_REQUIREMENT}",
        "Policy: breaks = block",
        'Way out: Pin it: poetry add "urllib3<3%0D%0A::warning::x"',
        "Way out: Move Poetry out of the way\r",
        "::notice::carriage",
    ]
    # The canonical name finds the lock line; an unknown package points at the file.
    assert notes[1].line == 40
    assert (notes[2].file, notes[2].line) == (HOSTILE_LOCK, None)
    # Environment findings point at no file.
    assert all(n.file is None and n.line is None for n in notes[3:])
    # No lock path: no file and no line.
    bare = annotations_of(hostile_report(), lock_path=None, lock_lines=LOCK_LINES)
    assert all(n.file is None and n.line is None for n in bare)


# ----------------------------------------------------------------- escaping


@pytest.mark.parametrize(
    ("text", "data", "prop"),
    [
        ("plain", "plain", "plain"),
        ("100%", "100%25", "100%25"),
        ("a\nb\r\nc", "a%0Ab%0D%0Ac", "a%0Ab%0D%0Ac"),
        ("%0A", "%250A", "%250A"),
        ("a::b,c", "a::b,c", "a%3A%3Ab%2Cc"),
        ("C:\\x,y", "C:\\x,y", "C%3A\\x%2Cy"),
    ],
)
def test_github_escaping(text: str, data: str, prop: str) -> None:
    assert github.escape_data(text) == data
    assert github.escape_property(text) == prop
    assert _github_unescape_data(data) == text
    assert _github_unescape_property(prop) == text


@pytest.mark.parametrize(
    ("text", "data", "prop"),
    [
        ("plain", "plain", "plain"),
        ("100%", "100%AZP25", "100%AZP25"),
        ("a\nb\r\nc", "a%0Ab%0D%0Ac", "a%0Ab%0D%0Ac"),
        ("%0A;]", "%AZP250A;]", "%AZP250A%3B%5D"),
        ("x]y;z", "x]y;z", "x%5Dy%3Bz"),
    ],
)
def test_azure_escaping(text: str, data: str, prop: str) -> None:
    assert azure.escape_data(text) == data
    assert azure.escape_property(text) == prop


def test_github_command_leaves_out_empty_properties() -> None:
    note = Annotation(Level.NOTICE, title="t", message="m")
    assert github.annotation(note) == "::notice title=t::m"
    assert github.command("warning", {}, "m") == "::warning::m"


def test_azure_has_no_notice() -> None:
    assert azure.annotation(Annotation(Level.NOTICE, title="t", message="m")) is None
    note = Annotation(Level.ERROR, title="t", message="m", file="poetry.lock", line=3)
    assert azure.annotation(note) == (
        "##vso[task.logissue type=error;sourcepath=poetry.lock;linenumber=3;]t: m"
    )


# ----------------------------------------------------------------- golden: renderers


def _render(fmt: Format, report: Report) -> str:
    renderers: dict[Format, CIRender] = {
        Format.GITHUB: github.render,
        Format.AZURE: azure.render,
    }
    return renderers[fmt](report, lock_path=HOSTILE_LOCK, lock_lines=LOCK_LINES)


def test_golden_github() -> None:
    output = _render(Format.GITHUB, hostile_report())
    check_golden("github.txt", output)
    commands = github_commands(output)
    assert len(output.splitlines()) == len(commands) == len(EXPECTED_LEVELS)
    notes = annotations_of(
        hostile_report(), lock_path=HOSTILE_LOCK, lock_lines=LOCK_LINES
    )
    for (name, props, message), note in zip(commands, notes):
        assert name == note.level.value
        assert message == note.message
        assert props.get("title") == note.title
        assert props.get("file") == note.file
        assert props.get("line") == (str(note.line) if note.line else None)


def test_golden_azure() -> None:
    output = _render(Format.AZURE, hostile_report())
    check_golden("azure.txt", output)
    commands = azure_commands(output)
    deserving = [n for n in EXPECTED_LEVELS if n is not Level.NOTICE]
    assert len(output.splitlines()) == len(commands) == len(deserving)
    notes = [
        n
        for n in annotations_of(
            hostile_report(), lock_path=HOSTILE_LOCK, lock_lines=LOCK_LINES
        )
        if n.level is not Level.NOTICE
    ]
    for (name, props, message), note in zip(commands, notes):
        assert name == "task.logissue"
        assert props["type"] == note.level.value
        assert props.get("sourcepath") == note.file
        assert props.get("linenumber") == (str(note.line) if note.line else None)
        assert message == f"{note.title}: {note.message}"


def test_golden_gitlab() -> None:
    chunks = compose(hostile_report(), Format.GITLAB, lock_path=HOSTILE_LOCK, now=NOW)
    output = as_log(chunks).removesuffix("\n")
    check_golden("gitlab.txt", output)
    markers = [m.groups() for m in GITLAB_MARKER.finditer(output)]
    assert markers == [
        ("start", str(NOW), "poetry_env_audit", "[collapsed=true]"),
        ("end", str(NOW), "poetry_env_audit", None),
    ]
    assert output.startswith("\x1b[0Ksection_start:")
    assert output.endswith(f"section_end:{NOW}:poetry_env_audit\r\x1b[0K")
    body = output.split("\n")[1:-1]
    assert not any("\x1b" in line or "\r" in line for line in body)
    assert not any(re.search(r"</?(b|c1|error|warning|info)>", line) for line in body)
    # The hostile section_end of the data is there, as inert text.
    assert any("section_end:1:poetry_env_audit" in line for line in body)


def test_gitlab_section_id_is_sanitised() -> None:
    assert (
        gitlab.section_id("Poetry env-audit: ünïcode\n1")
        == "poetry_env_audit___n_code_1"
    )
    assert gitlab.section_id("") == "section"
    start = gitlab.section_start(
        hostile_report(), NOW, name="a b]\r\x1b", collapsed=False
    )
    assert start == f"\x1b[0Ksection_start:{NOW}:a_b___\r\x1b[0Kpoetry env-audit: block"


def test_renderers_share_one_signature() -> None:
    renderers: list[CIRender] = [github.render, azure.render]
    for render in renderers:
        assert isinstance(render(isolated_report(), lock_path=None, lock_lines={}), str)


def test_renderers_with_nothing_to_say() -> None:
    report = isolated_report()
    assert azure.render(report, lock_path="poetry.lock", lock_lines={}) == ""
    notice = github.render(report, lock_path="poetry.lock", lock_lines={})
    assert notice == (
        "::notice title=env-audit%3A not-isolated::Poetry 2.1.1 is installed in shared"
        " (the system interpreter) at /usr; this project's target does not overlap it."
        "%0AWay out: Install Poetry with pipx: pipx install poetry"
    )
    off = replace(report, environment=())
    assert github.render(off, lock_path="poetry.lock", lock_lines={}) == ""


# ----------------------------------------------------------------- golden: the whole log


@pytest.mark.parametrize("fmt", [Format.GITHUB, Format.AZURE, Format.GITLAB])
def test_golden_log(fmt: Format) -> None:
    chunks = compose(
        hostile_report(),
        fmt,
        lock_path=HOSTILE_LOCK,
        lock_lines=LOCK_LINES,
        now=NOW,
        token=TOKEN,
    )
    log = as_log(chunks)
    check_golden(f"log-{fmt.value}.txt", log)
    if fmt is Format.GITHUB:
        commands = github_commands(log)
        assert [c[0] for c in commands] == [lvl.value for lvl in EXPECTED_LEVELS]
        # The hostile table row is in the log, defused and inside the stopped range.
        lines = runner_lines(log)
        row = next(
            i for i, line in enumerate(lines) if line.startswith("??error??table-row")
        )
        assert (
            lines.index(f"::stop-commands::{TOKEN}") < row < lines.index(f"::{TOKEN}::")
        )
    elif fmt is Format.AZURE:
        commands = azure_commands(log)
        assert [c[1]["type"] for c in commands] == [
            lvl.value for lvl in EXPECTED_LEVELS if lvl is not Level.NOTICE
        ]
        # The agent runs the first ``##vso[`` of a line: none is the hostile one.
        assert all(
            "##vso[task.setvariable" not in line.split("]", 1)[0]
            for line in log.splitlines()
        )
    else:
        assert len(GITLAB_MARKER.findall(log)) == 2
        assert log.startswith("\x1b[0Ksection_start:")
        assert log.endswith("\r\x1b[0K\n")
        assert github_commands(log.replace("::error::table-row", "")) == []


@pytest.mark.parametrize("fmt", [Format.TEXT, Format.JSON])
def test_text_and_json_are_unchanged_by_ci(fmt: Format) -> None:
    from poetry_env_audit.render.json import render as render_json
    from poetry_env_audit.render.text import render as render_text

    report = hostile_report()
    chunks = compose(report, fmt, lock_path=HOSTILE_LOCK, lock_lines=LOCK_LINES)
    expected = (
        Chunk(render_json(report), raw=True)
        if fmt is Format.JSON
        else Chunk(render_text(report))
    )
    assert chunks == (expected,)


def test_compose_random_token_and_clock() -> None:
    first = compose(isolated_report(), Format.GITHUB)
    second = compose(isolated_report(), Format.GITHUB)
    assert first[0].text.startswith("::stop-commands::")
    assert first[0].text != second[0].text  # not guessable from one run to the next
    assert re.fullmatch(r"::stop-commands::[0-9a-f]{32}", first[0].text)
    assert first[2].text == "::" + first[0].text.split("::")[2] + "::"
    start = compose(isolated_report(), Format.GITLAB)[0].text
    stamp = int(start.split(":")[1])
    import time

    assert abs(stamp - time.time()) < 60


@pytest.mark.parametrize(
    ("text", "fmt", "expected"),
    [
        ("a\rb\x1b[0Kc\x00d\te\nf", Format.GITLAB, "a\ufffdb\ufffd[0Kc\ufffdd\te\nf"),
        (
            "x ##vso[task.complete]y ##[group]z ##VSO[a]",
            Format.AZURE,
            "x # #vso[task.complete]y # #[group]z # #VSO[a]",
        ),
        ("x ##vso[task.complete]y", Format.GITHUB, "x ##vso[task.complete]y"),
    ],
)
def test_guard_log(text: str, fmt: Format, expected: str) -> None:
    assert guard_log(text, fmt) == expected


# ----------------------------------------------------------------- colour


def _markup_lines(chunks: Iterable[Chunk]) -> str:
    return "\n".join(c.text for c in chunks if not c.raw)


def test_no_ansi_and_no_tags_in_a_log() -> None:
    """Undecorated output (a pipe, a CI log, NO_COLOR) has neither ANSI codes nor tags."""
    report = hostile_report()
    # The ESC of the externally-managed message is data, which only CI output strips.
    report = replace(report, environment=report.environment[:1])
    log = as_log(compose(report, Format.TEXT))
    assert "\x1b" not in log
    assert not re.search(r"</?(b|c1|c2|error|warning|info|comment)>", log)
    assert "Verdict: block" in log


def test_colour_in_a_terminal() -> None:
    from cleo.io.buffered_io import BufferedIO

    io = BufferedIO(decorated=True)  # cleo's own styles: <error> is red
    io.write_line(_markup_lines(compose(hostile_report(), Format.TEXT)))
    assert "\x1b[31;1m" in io.fetch_output()


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_cleo_honours_no_color_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cleo's StreamOutput decorates a terminal, but not when NO_COLOR is set (as Poetry)."""
    from cleo.io.outputs.stream_output import StreamOutput

    leader, follower = os.openpty()
    try:
        with os.fdopen(follower, "w", closefd=False) as stream:
            monkeypatch.delenv("NO_COLOR", raising=False)
            monkeypatch.delenv("TERM_PROGRAM", raising=False)
            assert StreamOutput(stream).is_decorated()
            monkeypatch.setenv("NO_COLOR", "1")
            assert not StreamOutput(stream).is_decorated()
    finally:
        os.close(leader)
        os.close(follower)


# ----------------------------------------------------------------- the command


@pytest.fixture
def run_command(
    env_audit_command: Callable[..., tuple[int, str, str]],
) -> Callable[..., tuple[int, str, str]]:
    """``poetry env-audit ARGS`` on hostile_report(), with the environment given."""

    def run(args: str = "", **environ: str) -> tuple[int, str, str]:
        return env_audit_command(hostile_report(), args, **environ)

    return run


def test_command_text_outside_ci(
    run_command: Callable[..., tuple[int, str, str]],
) -> None:
    code, out, err = run_command("")
    assert code == 1  # the report blocks
    assert err == ""
    assert out.startswith("Poetry 2.1.1 shares the target environment")
    assert "::stop-commands::" not in out
    assert not github_commands(out.replace("::error::table-row", "x"))


def test_command_github_automatic(
    run_command: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    code, out, _ = run_command(
        "", GITHUB_ACTIONS="true", GITHUB_WORKSPACE=str(tmp_path)
    )
    assert code == 1
    commands = github_commands(out)
    assert [c[0] for c in commands] == [lvl.value for lvl in EXPECTED_LEVELS]
    # The lock is read, the path is relative to the checkout, the line is the name's.
    assert commands[0][1]["file"] == "project/poetry.lock"
    assert commands[0][1]["line"] == "24"
    assert "line" not in commands[1][1]
    # The report comes first, the annotations after it.
    assert out.index("Verdict: block") < out.index("\n::error file=project/poetry.lock")


@pytest.mark.parametrize(
    ("args", "environ"),
    [
        ("--format text", {"GITHUB_ACTIONS": "true"}),
        ("", {"GITHUB_ACTIONS": "true", "POETRY_ENV_AUDIT_CI_OUTPUT": "off"}),
        ("", {"CI": "true"}),
    ],
)
def test_command_no_ci_output(
    run_command: Callable[..., tuple[int, str, str]], args: str, environ: dict[str, str]
) -> None:
    code, out, _ = run_command(args, **environ)
    assert code == 1
    assert "::stop-commands::" not in out
    assert "\n::error file=" not in out
    assert "##vso[task.logissue" not in out
    assert "section_start" not in out


def test_command_azure_and_gitlab(
    run_command: Callable[..., tuple[int, str, str]],
) -> None:
    _, out, _ = run_command("", TF_BUILD="True")
    assert len(azure_commands(out)) == 4
    _, out, _ = run_command("--format gitlab")  # explicit, outside CI
    assert len(GITLAB_MARKER.findall(out)) == 2
    assert out.startswith("\x1b[0Ksection_start:")


def test_command_json_in_ci_is_json_only(
    run_command: Callable[..., tuple[int, str, str]],
) -> None:
    import json

    code, out, _ = run_command("--format json", GITLAB_CI="true")
    assert code == 1
    assert json.loads(out)["verdict"] == "block"


def test_command_output_file(
    run_command: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    import json

    target = tmp_path / "reports" / "ci" / "env-audit.json"
    code, out, err = run_command(f"--format github --output {target}")
    assert code == 1
    assert err == ""
    data = json.loads(target.read_text(encoding="utf-8"))
    assert data["verdict"] == "block"
    assert len(data["findings"]) == 4
    assert len(github_commands(out)) == len(EXPECTED_LEVELS)


def test_command_output_unwritable(
    run_command: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("", encoding="utf-8")
    code, out, err = run_command(f"--output {blocker / 'sub' / 'report.json'}")
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("env-audit: cannot write the report to")


def test_command_unknown_format(
    run_command: Callable[..., tuple[int, str, str]],
) -> None:
    code, out, err = run_command("--format sarif")
    assert code == 2
    assert out == ""
    assert "unknown format 'sarif'" in err
    assert "text, json, github, azure, gitlab" in err
