"""The CI renderers on a large lock: github / text and azure / text.

    .venv-dev/bin/python benchmarks/ci_render.py [--size-mb 50] [--rounds 3]

A lock of about ``--size-mb`` MB is generated (``[[package]]`` entries with
40 ``files`` each, strings that hold ``[[package]]`` and escaped quotes, and
``[package.dependencies]`` sub-tables), and a report with one finding per
tenth of its packages. Each variant does, in process, what ``poetry
env-audit --format F`` does with a lock beyond planning:

- every variant reads and parses the lock (the standard library's TOML
  parser; Poetry's own tomlkit is several times slower, so the ratios here
  are an upper bound of the ones a real run sees);
- ``text`` then composes the text report;
- ``github`` and ``azure`` also find each package's line in the lock
  (:func:`poetry_env_audit.ci.lock_lines_for`) and compose their annotations.

The variants run side by side in every round, their order alternating; the
median of each, the ratio of the medians and the spread of the per-round
ratios are printed. Nothing asserts a time; the target (<= 1.2) is printed
next to the figures. Kept apart from ``benchmarks/run.py`` (which runs real
Poetry in throwaway interpreters): this one needs only ``src/``.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

if TYPE_CHECKING:
    from poetry_env_audit.report import Report

TARGET = 1.2


def make_lock(size: int) -> tuple[str, int]:
    """A lock of at least ``size`` characters, and how many packages it has."""
    parts: list[str] = []
    total = 0
    i = 0
    while total < size:
        files = "".join(
            f'    {{file = "pkg_{i}-1.{j}.0-cp311-cp311-manylinux_x86_64.whl",'
            f' hash = "sha256:{hashlib.sha256(f"{i}-{j}".encode()).hexdigest()}"}},\n'
            for j in range(40)
        )
        block = (
            f'[[package]]\nname = "pkg-{i}"\nversion = "1.0.{i}"\n'
            f'description = "Package {i}: a \\"quoted\\" [[package]] text"\n'
            f'optional = false\npython-versions = ">=3.8"\nfiles = [\n{files}]\n\n'
            '[package.dependencies]\nfoo = ">=1"\n'
            'bar = {version = ">=2", markers = "python_version >= \'3.9\'"}\n\n'
        )
        parts.append(block)
        total += len(block)
        i += 1
    parts.append('[metadata]\nlock-version = "2.1"\npython-versions = ">=3.9"\n')
    return "".join(parts), i


def make_report(packages: int) -> Report:
    from poetry_env_audit.audit import assess
    from poetry_env_audit.plan import PlannedChange
    from poetry_env_audit.plan import classify
    from poetry_env_audit.poetry_env import DistInfo
    from poetry_env_audit.poetry_env import Installation
    from poetry_env_audit.poetry_env import PoetryEnvironment
    from poetry_env_audit.poetry_env import resolve_closure
    from poetry_env_audit.policy import default_policy
    from poetry_env_audit.target import TargetEnvironment
    from poetry_env_audit.target import TargetKind
    from poetry_env_audit.target import TargetReason

    site = "/site"
    names = [f"pkg-{i}" for i in range(0, packages, 10)]
    dists = [
        DistInfo("poetry", "poetry", "2.5.1", site, tuple(f"{n}>=1" for n in names))
    ]
    dists += [DistInfo(n, n, "1.0", site) for n in names]
    index = {d.name: d for d in dists}
    marker_env = {"python_version": "3.11", "sys_platform": "linux"}
    closure = resolve_closure(index, ("poetry",), marker_env)
    poetry = PoetryEnvironment(
        version="2.5.1",
        python="/usr/bin/python3",
        prefix="/usr",
        base_prefix="/usr",
        import_paths=(site,),
        plugins=(),
        needed=closure.needed,
        problems=closure.problems,
        vendored=(),
        installation=Installation("system", False, False, None, ()),
        index=index,
        marker_env=marker_env,
    )
    target = TargetEnvironment(
        path="/usr",
        python="/usr/bin/python3",
        kind=TargetKind("system"),
        reason=TargetReason("virtualenvs.create = false"),
        site_dirs=(site,),
        shared_dirs=(site,),
        externally_managed=None,
    )
    changes = [
        PlannedChange(n, n, classify("update", "1.0", "0.9"), "1.0", "0.9", ())
        for n in names
    ]
    return assess(
        poetry=poetry, target=target, changes=changes, policy=default_policy()
    )


def run_variant(fmt_name: str, lock: Path, report: Report) -> float:
    from poetry_env_audit.ci import lock_lines_for
    from poetry_env_audit.render.compose import compose
    from poetry_env_audit.render.formats import Format

    try:
        import tomllib  # type: ignore[import-not-found,unused-ignore]
    except ImportError:  # Python < 3.11
        import tomli as tomllib  # type: ignore[import-not-found,no-redef,unused-ignore]

    fmt = Format(fmt_name)
    start = time.perf_counter()
    tomllib.loads(lock.read_text(encoding="utf-8"))
    path, lines = lock_lines_for(fmt, lock, {})
    # A fixed ::stop-commands:: token, not a secret: the output is thrown away.
    chunks = compose(report, fmt, lock_path=path, lock_lines=lines, now=0, token="t")  # noqa: S106
    elapsed = time.perf_counter() - start
    if fmt.annotates and not any(c.annotations for c in chunks):
        raise SystemExit(f"{fmt_name}: no annotations were written")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=float, default=50.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    text, packages = make_lock(int(args.size_mb * 1024 * 1024))
    report = make_report(packages)
    variants = ["text", "github", "azure"]
    times: dict[str, list[float]] = {v: [] for v in variants}
    with tempfile.TemporaryDirectory() as tmp:
        lock = Path(tmp) / "poetry.lock"
        lock.write_text(text, encoding="utf-8")
        print(
            f"lock: {len(text) / 1e6:.1f} MB, {packages} packages;"
            f" report: {len(report.findings)} findings",
            flush=True,
        )
        for round_no in range(args.rounds):
            order = variants if round_no % 2 == 0 else variants[::-1]
            for variant in order:
                times[variant].append(run_variant(variant, lock, report))
            print(
                f"round {round_no + 1}: "
                + ", ".join(f"{v} {times[v][-1]:.2f} s" for v in variants),
                flush=True,
            )
    base = statistics.median(times["text"])
    print("| variant | median | ratio to text | spread | target |")
    print("| --- | --- | --- | --- | --- |")
    print(f"| text | {base:.2f} s | 1 | | |")
    for variant in ("github", "azure"):
        ratios = [t / b for t, b in zip(times[variant], times["text"])]
        median = statistics.median(times[variant])
        print(
            f"| {variant} | {median:.2f} s | {median / base:.3f} |"
            f" {min(ratios):.3f} .. {max(ratios):.3f} | <= {TARGET} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
