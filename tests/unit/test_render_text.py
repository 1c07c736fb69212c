from __future__ import annotations

import re
from typing import cast

import pytest
from cleo.formatters.formatter import Formatter
from cleo.formatters.style import Style

from poetry_env_audit.audit import assess
from poetry_env_audit.findings import EnvFinding
from poetry_env_audit.findings import EnvKind
from poetry_env_audit.findings import Finding
from poetry_env_audit.findings import Remedy
from poetry_env_audit.findings import Requirer
from poetry_env_audit.findings import Verdict
from poetry_env_audit.plan import Action
from poetry_env_audit.plan import PlannedChange
from poetry_env_audit.policy import PolicyAction
from poetry_env_audit.policy import default_policy
from poetry_env_audit.render.text import MAX_ROWS
from poetry_env_audit.render.text import escape
from poetry_env_audit.render.text import render
from poetry_env_audit.render.text import safe_name
from poetry_env_audit.report import Report
from poetry_env_audit.report import RunVerdict
from poetry_env_audit.target import TargetEnvironment
from poetry_env_audit.target import TargetKind
from poetry_env_audit.target import TargetReason
from unit.factories import change
from unit.factories import dist
from unit.factories import installation
from unit.factories import poetry_env
from unit.factories import target

ANSI = re.compile(r"\x1b\[[0-9;]*m")
HOSTILE = [
    "<error>",
    "<fg=red>red</>",
    "a<b>bold</b>",
    "</error>",
    "<<info>>",
    "\\<error>",
    "x\\",
    "C:\\venvs\\poetry\\",
    "<c1>cmd</c1>\\",
]


def formatted(text: str) -> str:
    """What a terminal shows: cleo markup applied (with Poetry's extra style)."""
    formatter = Formatter(decorated=True, styles={"warning": Style("yellow")})
    return formatter.format(text)


def shown(text: str) -> str:
    return ANSI.sub("", formatted(text))


POETRY = poetry_env(
    [
        dist("poetry", "2.5.1", ["packaging>=24.2", "dulwich>=0.22"]),
        dist("poetry-plugin-x", "1.0", ["packaging<25"], plugin=True),
        dist("packaging", "24.2"),
        dist("dulwich", "0.22.8"),
    ]
)


def report_for(
    changes: list[PlannedChange], tgt: TargetEnvironment | None = None
) -> Report:
    return assess(
        poetry=POETRY,
        target=target() if tgt is None else tgt,
        changes=changes,
        policy=default_policy(),
    )


def cells(line: str) -> list[str]:
    return re.split(r"\s{2,}", line.strip())


# ------------------------------------------------------------------------ escape


@pytest.mark.parametrize("text", [*HOSTILE, "plain", "", "a < b", "1<2>3"])
def test_escape_renders_literally(text: str) -> None:
    expected = text + " " if text.endswith("\\") else text
    assert shown(escape(text)) == expected


@pytest.mark.parametrize("text", HOSTILE)
def test_escaped_text_cannot_close_a_tag_around_it(text: str) -> None:
    assert shown(f"<info>{escape(text)}</info>|<b>after</b>") == (
        f"{text}{' ' if text.endswith(chr(92)) else ''}|after"
    )


# ------------------------------------------------------------------------ header


@pytest.mark.parametrize(
    ("tgt", "header"),
    [
        (
            target(),
            "Poetry 2.5.1 shares the target environment /usr"
            " (virtualenvs.create = false): this install changes what Poetry runs on.",
        ),
        (
            target(
                shared=False, path="/proj/.venv", kind="venv", reason="in-project .venv"
            ),
            "Poetry 2.5.1 is isolated from the target environment /proj/.venv"
            " (in-project .venv); nothing Poetry runs on is touched.",
        ),
        (
            target(
                shared=False,
                path="/cache/virtualenvs",
                kind="new-venv",
                reason="Poetry would create a new virtualenv",
                site_dirs=(),
                python=None,
            ),
            "Poetry 2.5.1 is isolated: Poetry would create a new virtualenv at"
            " /cache/virtualenvs; nothing Poetry runs on is touched.",
        ),
    ],
    ids=["shares", "isolated", "new-venv"],
)
def test_header(tgt: TargetEnvironment, header: str) -> None:
    lines = shown(render(report_for([], tgt))).splitlines()
    assert lines[0] == header


def test_header_style_follows_the_setting() -> None:
    assert render(report_for([])).startswith("<error>Poetry 2.5.1 shares")
    isolated = render(report_for([], target(shared=False)))
    assert isolated.startswith("<info>Poetry 2.5.1 is isolated</info>")


# ------------------------------------------------------------------------- table


def test_table_row_has_package_versions_requirer_and_verdict() -> None:
    report = report_for(
        [change("packaging", "24.2", "23.2"), change("dulwich", "0.22.8", "0.22.9")]
    )
    lines = shown(render(report)).splitlines()
    head = lines.index(next(line for line in lines if line.startswith("Package")))
    assert cells(lines[head]) == [
        "Package",
        "Poetry has",
        "Lock wants",
        "Action",
        "Required by",
        "Verdict",
    ]
    assert cells(lines[head + 1]) == [
        "packaging",
        "24.2",
        "23.2",
        "downgrade",
        "poetry 2.5.1 (packaging>=24.2) +1",
        "breaks",
    ]
    assert cells(lines[head + 2]) == [
        "dulwich",
        "0.22.8",
        "0.22.9",
        "upgrade",
        "poetry 2.5.1 (dulwich>=0.22)",
        "changes",
    ]
    # The columns line up.
    assert lines[head + 1].index("24.2") == lines[head].index("Poetry has")
    assert lines[head + 1].index("breaks") == lines[head].index("Verdict")


def test_required_by_shows_the_unsatisfied_requirers_first() -> None:
    report = report_for([change("packaging", "24.2", "25.0")])
    lines = shown(render(report)).splitlines()
    row = next(line for line in lines if line.startswith("packaging"))
    assert cells(row)[4] == "poetry-plugin-x 1.0 (packaging<25) +1"
    assert "breaks: packaging would be upgraded (24.2 -> 25.0), but" in shown(
        render(report)
    )


def test_removal_row_and_verdict_line() -> None:
    text = shown(render(report_for([change("dulwich", "0.22.8", None)])))
    row = next(line for line in text.splitlines() if line.startswith("dulwich"))
    assert cells(row) == [
        "dulwich",
        "0.22.8",
        "-",
        "remove",
        "poetry 2.5.1 (dulwich>=0.22)",
        "breaks",
    ]
    assert text.splitlines()[-1] == "Verdict: block (1 breaks)"
    assert "      poetry install" in text


def test_shared_without_changes() -> None:
    text = shown(render(report_for([])))
    assert "The lock changes none of the packages Poetry runs on." in text
    assert "Ways out:" in text
    assert text.splitlines()[-1] == "Verdict: warn"


def test_isolated_has_no_table_and_no_ways_out() -> None:
    pipx = poetry_env(
        [dist("poetry", "2.5.1")], install=installation("pipx", isolated=True)
    )
    report = assess(
        poetry=pipx,
        target=target(shared=False),
        changes=[change("packaging", "24.2", "23.2")],
        policy=default_policy(),
    )
    text = shown(render(report))
    assert "Package" not in text
    assert "Ways out" not in text
    assert text.splitlines()[-1] == "Verdict: ok"


def test_environment_notes_are_listed() -> None:
    broken = poetry_env(
        [dist("poetry", "2.5.1", ["packaging>=24.2"]), dist("packaging", "23.2")]
    )
    report = assess(
        poetry=broken,
        target=target(externally_managed="Use apt\n  install python3-x."),
        changes=[],
        policy=default_policy(),
    )
    text = shown(render(report))
    assert (
        "externally-managed: /usr/bin/python3 is externally managed:"
        " Use apt install python3-x."
    ) in text.splitlines()
    assert any(
        line.startswith("inconsistent: Poetry's environment")
        for line in text.splitlines()
    )
    assert "/usr/bin/python3 -m pip install 'packaging>=24.2'" in text
    assert "shared:" not in text


# ------------------------------------------------------------------ big plans


def big_report(count: int, hostile: str = "") -> Report:
    names = [f"dep-{i:02d}" for i in range(count)]
    env = poetry_env(
        [
            dist("poetry", "2.5.1", ["packaging>=24.2", *names[:3]]),
            dist("packaging", "25.0"),
            *(
                dist(n, "1.0", [f"{m}>=1" for m in names[3:]] if i == 2 else ())
                for i, n in enumerate(names)
            ),
        ]
    )
    changes = [change(n, "1.0", "1.1") for n in names]
    changes.insert(count // 2, change("packaging", "25.0", "23.2"))
    report = assess(
        poetry=env, target=target(), changes=changes, policy=default_policy()
    )
    if not hostile:
        return report
    # dep-10 is never among the rows kept, so it is summarised first.
    at = next(i for i, f in enumerate(report.findings) if f.package == "dep-10")
    last = report.findings[at]
    evil = Finding(
        package=hostile,
        current=last.current,
        planned=last.planned,
        action=last.action,
        verdict=last.verdict,
        required_by=last.required_by,
        detail=last.detail,
        policy=last.policy,
        remedies=last.remedies,
    )
    return Report(
        project=report.project,
        poetry=report.poetry,
        target=report.target,
        sync=report.sync,
        changes=report.changes,
        findings=(*report.findings[:at], evil, *report.findings[at + 1 :]),
        environment=report.environment,
        verdict=report.verdict,
    )


@pytest.mark.parametrize(
    ("count", "rows", "more"),
    [(MAX_ROWS - 1, MAX_ROWS, 0), (MAX_ROWS, MAX_ROWS - 1, 2), (30, MAX_ROWS - 1, 20)],
    ids=["fits", "one-over", "sync-plan"],
)
def test_big_plans_are_summarised(count: int, rows: int, more: int) -> None:
    report = big_report(count)
    assert len(report.findings) == count + 1
    lines = shown(render(report)).splitlines()
    table = [line for line in lines if re.match(r"(dep-\d\d|packaging)\s", line)]
    assert len(table) == rows
    # The breaking change and Poetry's direct dependencies are never summarised.
    assert any(line.startswith("packaging ") for line in table)
    for name in ("dep-00", "dep-01", "dep-02"):
        assert any(line.startswith(name) for line in table)
    summary = [line for line in lines if line.startswith("... and")]
    if more:
        (line,) = summary
        assert line.startswith(f"... and {more} more (dep-")
        assert line.endswith("): changes (all of them with --format json)")
        assert (", ..." in line) is (more > 6)
    else:
        assert summary == []
    assert lines[-1] == f"Verdict: block (1 breaks, {count} changes)"


# -------------------------------------------------------------- hostile strings


def hostile_report(text: str) -> Report:
    tgt = TargetEnvironment(
        path=f"/srv/{text}",
        python=f"/srv/{text}/bin/python",
        kind=TargetKind.SYSTEM,
        reason=cast(
            "TargetReason", f"reason {text}"
        ),  # hostile text, never a real reason
        site_dirs=("/site",),
        shared_dirs=("/site",),
        externally_managed=f"managed {text}",
    )
    finding = Finding(
        package=f"pkg{text}",
        current=f"1.0{text}",
        planned=f"0.9{text}",
        action=Action.DOWNGRADE,
        verdict=Verdict.BREAKS,
        required_by=(Requirer(f"plugin{text}", "1.0", f"pkg>=1{text}", False),),
        detail=f"detail {text}",
        policy=PolicyAction.BLOCK,
        remedies=(
            Remedy(f"title {text}", f"command {text}"),
            Remedy(f"no command {text}"),
        ),
    )
    return Report(
        project=None,
        poetry=POETRY,
        target=tgt,
        sync=False,
        changes=(),
        findings=(finding,),
        environment=(
            EnvFinding(
                EnvKind.SHARED,
                f"shared {text}",
                PolicyAction.WARN,
                (Remedy(f"env {text}", f"run {text}"),),
            ),
            EnvFinding(EnvKind.INCONSISTENT, f"inconsistent {text}", PolicyAction.WARN),
        ),
        verdict=RunVerdict.BLOCK,
    )


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_strings_render_literally(text: str) -> None:
    out = shown(render(hostile_report(text)))
    literal = text.rstrip("\\")
    # The package cell starts a table row: only PEP 508 name characters survive.
    row = next(line for line in out.splitlines() if line.startswith("pkg"))
    assert row.startswith(f"pkg{safe_name(text)} ")
    assert safe_name(text) != text
    for fragment in (
        f"/srv/{literal}",
        f"plugin{literal}",
        f"detail {literal}",
        f"title {literal}",
        f"command {literal}",
        f"no command {literal}",
        f"inconsistent {literal}",
        f"run {literal}",
    ):
        assert fragment in out
    # The markup around the data still works: no tag is left over.
    assert "</error>" not in out.replace(text, "")
    assert "<b>" not in out.replace(text, "")
    assert out.splitlines()[-1] == "Verdict: block (1 breaks)"


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_strings_do_not_change_the_styling(text: str) -> None:
    plain_out = formatted(render(hostile_report("x")))
    hostile_out = formatted(render(hostile_report(text)))
    assert ANSI.findall(hostile_out) == ANSI.findall(plain_out)


@pytest.mark.parametrize(
    "text",
    [
        "\nINJECTED",
        "line\rINJECTED",
        "crlf\r\nINJECTED",
        "a\n\nINJECTED<error>",
        "tab\tand\vINJECTED",
        "form\fINJECTED",
        "nel\x85INJECTED",
        "ls\u2028INJECTED",
    ],
    ids=[
        "newline",
        "carriage-return",
        "crlf",
        "blank-line",
        "vertical-tab",
        "form-feed",
        "next-line",
        "line-separator",
    ],
)
def test_newlines_in_data_never_start_a_line(text: str) -> None:
    rendered = render(hostile_report(text))
    out = shown(rendered)
    assert not any(line.lstrip().startswith("INJECTED") for line in out.splitlines())
    assert len(rendered.splitlines()) == len(render(hostile_report("x")).splitlines())


def test_newline_in_a_summarised_name_does_not_start_a_line() -> None:
    report = big_report(20, hostile="evil\nINJECTED")
    lines = shown(render(report)).splitlines()
    assert any(line.startswith("... and") for line in lines)
    assert not any(line.startswith("INJECTED") for line in lines)


def test_hostile_summarised_name_is_escaped() -> None:
    out = shown(render(big_report(20, hostile="evil<error>")))
    (line,) = (x for x in out.splitlines() if x.startswith("... and"))
    assert line.startswith("... and 10 more (evil?error?, dep-11,")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("packaging", "packaging"),
        ("Poetry_Core.x-1", "Poetry_Core.x-1"),
        ("evil<error>", "evil?error?"),
        ("::warning::x", "??warning??x"),
        ("##[error]x", "???error?x"),
        ("a b\nc", "a?b?c"),
        ("caf\u00e9", "caf?"),
        ("", "?"),
    ],
    ids=[
        "plain",
        "all-allowed",
        "markup",
        "github",
        "azure",
        "whitespace",
        "unicode",
        "empty",
    ],
)
def test_safe_name(name: str, expected: str) -> None:
    assert safe_name(name) == expected


def test_finding_without_requirers_shows_a_dash() -> None:
    report = report_for(
        [change("poetry", "2.5.1", "2.6.0", requires=["pbs-installer"])]
    )
    lines = shown(render(report)).splitlines()
    row = next(line for line in lines if line.startswith("poetry "))
    assert cells(row) == ["poetry", "2.5.1", "2.6.0", "upgrade", "-", "breaks"]
    assert (
        "breaks: poetry would be upgraded (2.5.1 -> 2.6.0), but then poetry 2.6.0"
        " requires pbs-installer, which is not installed." in lines
    )


# ------------------------------------------------------------- a 100-column terminal


def test_rows_are_breaks_first_then_in_name_order() -> None:
    report = report_for(
        [change("dulwich", "0.22.8", "0.22.9"), change("packaging", "24.2", "23.2")]
    )
    lines = shown(render(report)).splitlines()
    rows = [
        line.split()[0] for line in lines if line.startswith(("dulwich", "packaging"))
    ]
    assert rows == ["packaging", "dulwich"]


def test_a_long_required_by_list_fits_a_100_column_table() -> None:
    requirers = [
        dist(
            f"poetry-plugin-long-name-{i}",
            "1.0.0",
            ["packaging>=24.2,<27"],
            plugin=True,
        )
        for i in range(6)
    ]
    env = poetry_env([*POETRY.index.values(), *requirers])
    report = assess(
        poetry=env,
        target=target(),
        changes=[change("packaging", "24.2", "23.2")],
        policy=default_policy(),
    )
    lines = shown(render(report)).splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("Package"))
    row = lines[head + 1]
    assert len(row) <= 100, row
    assert cells(row)[-1] == "breaks"
    assert re.search(r" \+\d+$", cells(row)[4])
    # Every requirer is still named on the finding's own line.
    detail = next(line for line in lines if line.startswith("breaks: packaging"))
    assert all(f"poetry-plugin-long-name-{i}" in detail for i in range(6))
