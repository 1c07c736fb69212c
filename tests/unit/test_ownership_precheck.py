"""Ownership by file before the first operation (issue 11): the guard fetches
the planned wheels as Poetry's executor would (the seam
``ExecutorHandle.archives``) and judges a wheel that writes over files of a
distribution Poetry needs before anything runs: refused with nothing run,
or serialised and journaled as a swap of the owner."""

from __future__ import annotations

import json
from dataclasses import dataclass
from dataclasses import field
from typing import TYPE_CHECKING
from typing import Any

import pytest
from poetry.core.packages.package import Package
from poetry.installation.operations import Install

from poetry_env_audit import _recover
from poetry_env_audit import swapjournal
from poetry_env_audit.audit import assess
from poetry_env_audit.policy import load_policy
from poetry_env_audit.seams import Fallbacks
from poetry_env_audit.seams.executor import Archives
from poetry_env_audit.seams.executor import ExecutorHandle
from unit.factories import dist
from unit.factories import poetry_env
from unit.factories import target
from unit.test_guard import FakeExecutor
from unit.test_guard import make_setup
from unit.test_guard import operations
from unit.test_ownership import make_wheel
from unit.test_swapjournal import OLD
from unit.test_swapjournal import make_site

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from poetry.installation.operations.operation import Operation

    from poetry_env_audit.report import Report


# ----------------------------------------------------------------- the seam


@dataclass
class FetchingExecutor:
    """Poetry's Executor as ``archives`` uses it: ``_download`` (an index
    package), ``_download_link`` (a URL), a thread count, fancy output."""

    wheels: dict[str, Path]
    fail: frozenset[str] = frozenset()
    fetched: list[str] = field(default_factory=list)
    fancy_seen: list[bool] = field(default_factory=list)
    _max_workers: int = 4

    def supports_fancy_output(self) -> bool:
        return True

    def _download(self, op: Operation) -> Path:
        return self._fetch(op)

    def _download_link(self, op: Operation, link: Any) -> Path:
        assert str(link.url) == op.package.source_url
        return self._fetch(op)

    def _fetch(self, op: Operation) -> Path:
        name = op.package.name
        self.fancy_seen.append(self.supports_fancy_output())
        self.fetched.append(name)
        if name in self.fail:
            raise RuntimeError(f"cannot fetch {name}")
        return self.wheels[name]


def _package(name: str, source_type: str | None = None, url: str = "") -> Package:
    return Package(name, "1.0", source_type=source_type, source_url=url or None)


def test_archives_fetch_index_and_url_wheels_ahead_and_leave_builds_out(
    tmp_path: Path,
) -> None:
    local = make_wheel(tmp_path / "local", "local-whl", "1.0", {"local_whl/x.py": ""})
    sdist = tmp_path / "built-1.0.tar.gz"
    executor = FetchingExecutor(
        {
            "index": tmp_path / "index-1.0-py3-none-any.whl",
            "remote": tmp_path / "remote-1.0-py3-none-any.whl",
            "broken": tmp_path / "broken.whl",
            "sdist-only": sdist,
        },
        fail=frozenset({"broken"}),
    )
    handle = ExecutorHandle(executor=executor, original=None, fallbacks=Fallbacks())
    skipped = Install(_package("skipped"))
    skipped.skip("installed")
    ops: list[Operation] = [
        Install(_package("index")),
        Install(_package("remote", "url", "https://files.example/remote.whl")),
        Install(_package("local-whl", "file", str(local))),
        Install(_package("sdist-file", "file", str(sdist))),
        Install(_package("file-url", "url", "file:///x/file_url-1.0.whl")),
        Install(_package("checkout", "git", "https://git.example/x.git")),
        Install(_package("tree", "directory", str(tmp_path))),
        Install(_package("broken")),
        Install(_package("sdist-only")),
        skipped,
    ]
    archives = handle.archives(ops)
    assert dict(archives.wheels) == {
        "index": tmp_path / "index-1.0-py3-none-any.whl",
        "remote": tmp_path / "remote-1.0-py3-none-any.whl",
        "local-whl": local,
    }
    assert sorted(archives.unchecked) == [
        "broken",
        "checkout",
        "file-url",
        "sdist-file",
        "sdist-only",
        "tree",
    ]
    assert sorted(executor.fetched) == ["broken", "index", "remote", "sdist-only"]
    assert executor.fancy_seen == [False] * 4  # no per-operation sections yet
    assert executor.supports_fancy_output() is True
    assert "supports_fancy_output" not in vars(executor)
    # Poetry's own run gets what was fetched ahead without fetching it again
    # (the same archive, also the sdist it could not build); others as before.
    assert executor._download(ops[0]) == tmp_path / "index-1.0-py3-none-any.whl"
    assert executor._download(ops[8]) == sdist
    executor.wheels["late"] = tmp_path / "late-1.0-py3-none-any.whl"
    assert executor._download(Install(_package("late"))) == executor.wheels["late"]
    assert sorted(executor.fetched) == [
        "broken",
        "index",
        "late",
        "remote",
        "sdist-only",
    ]


def test_archives_without_poetrys_download_note_the_fallback() -> None:
    fallbacks = Fallbacks()
    handle = ExecutorHandle(executor=object(), original=None, fallbacks=fallbacks)
    assert handle.archives(operations(["idna"])) == Archives(unchecked=("idna",))
    ((seam, _),) = fallbacks.take()
    assert seam == "Executor._download/_download_link"
    assert handle.archives(operations(["-idna"])) == Archives()


# ----------------------------------------------------------------- in the guard


def _tomlkit_site(tmp_path: Path) -> Path:
    """A site-packages with tomlkit 0.13.2 (RECORD and all) and Poetry needing it."""
    return make_site(tmp_path)


def _report(site: Path, **table: str) -> Report:
    poetry = poetry_env(
        [
            dist("poetry", "2.5.1", ["tomlkit>=0.11.4,<1.0.0"], location=str(site)),
            dist("tomlkit", "0.13.2", location=str(site)),
        ],
        import_paths=(str(site),),
    )
    return assess(
        poetry=poetry,
        target=target(site_dirs=(str(site),)),
        changes=[],
        policy=load_policy({"shared": "off", **table}, {}),
    )


@dataclass
class Recorded:
    executor: FakeExecutor
    journals: list[dict[str, Any]]
    installed: list[Path]


@pytest.fixture
def restore_fake_executor() -> Iterator[None]:
    original = FakeExecutor.execute
    yield
    FakeExecutor.execute = original  # type: ignore[method-assign]


def _guarded(
    tmp_path: Path, site: Path, shadow: dict[str, str], **table: str
) -> tuple[Any, Recorded, Report]:
    """A guarded command whose executor fetches ``tomlkit-shadow`` (writing
    ``shadow``) and ``leftpad``, and records each wheel it writes and the
    journal in place while it writes it."""
    setup = make_setup(tmp_path, site_dirs=[site], table=table or None)
    wheels = {
        "tomlkit-shadow": make_wheel(tmp_path / "w", "tomlkit-shadow", "1.0", shadow),
        "leftpad": make_wheel(tmp_path / "l", "leftpad", "1.0", {"leftpad/x.py": ""}),
    }
    journals: list[dict[str, Any]] = []
    installed: list[Path] = []
    executor = setup.executor
    journal = site / _recover.JOURNAL_DIR / _recover.JOURNAL

    def download(op: Operation) -> Path:
        return wheels[op.package.name]

    class Installer:
        def install(self, wheel: Path) -> None:
            installed.append(wheel)
            if journal.exists():
                journals.append(json.loads(journal.read_text()))

    executor._download = download  # type: ignore[attr-defined]
    executor._download_link = download  # type: ignore[attr-defined]
    executor._wheel_installer = Installer()  # type: ignore[attr-defined]
    original = FakeExecutor.execute

    def execute(self: FakeExecutor, ops: list[Operation]) -> int:
        status = original(self, ops)
        for op in ops:
            self._wheel_installer.install(wheels[op.package.name])  # type: ignore[attr-defined]
        return status

    FakeExecutor.execute = execute  # type: ignore[method-assign,assignment]
    report = _report(site, **table)
    return setup, Recorded(executor, journals, installed), report


@pytest.mark.usefixtures("restore_fake_executor")
def test_other_content_is_refused_before_any_operation_runs(tmp_path: Path) -> None:
    site = _tomlkit_site(tmp_path)
    setup, seen, report = _guarded(tmp_path, site, {"tomlkit/__init__.py": "EVIL\n"})
    status = setup.run(setup.guard(report), ["leftpad", "tomlkit-shadow"])
    assert status == 1
    assert seen.executor.calls == []
    assert seen.installed == []
    err = setup.err
    assert "refusing to run this install: it would break Poetry 2.5.1" in err
    assert (
        "tomlkit 0.13.2 (overwrite): tomlkit-shadow 1.0 would overwrite"
        " tomlkit/__init__.py of tomlkit 0.13.2 with other content" in err
    )
    assert (site / "tomlkit" / "__init__.py").read_text() == OLD["tomlkit/__init__.py"]


@pytest.mark.usefixtures("restore_fake_executor")
def test_the_same_bytes_are_serialised_and_journaled_as_the_owners_swap(
    tmp_path: Path,
) -> None:
    site = _tomlkit_site(tmp_path)
    same = {"tomlkit/__init__.py": OLD["tomlkit/__init__.py"]}
    setup, seen, report = _guarded(tmp_path, site, same)
    status = setup.run(setup.guard(report), ["tomlkit-shadow", "leftpad"])
    assert status == 0
    assert seen.executor.calls == [["leftpad"], ["tomlkit-shadow"]]
    assert "serialising tomlkit-shadow: tomlkit-shadow 1.0 would overwrite" in setup.err
    # The wheel was written while the owner's journal was in place, and only then.
    (journal,) = seen.journals
    assert (journal["dist"], journal["incoming"]) == ("tomlkit", "tomlkit-shadow")
    assert not (site / _recover.JOURNAL_DIR).exists()
    assert not (site / _recover.PTH).exists()


@pytest.mark.usefixtures("restore_fake_executor")
def test_the_same_bytes_block_where_changes_block(tmp_path: Path) -> None:
    site = _tomlkit_site(tmp_path)
    same = {"tomlkit/__init__.py": OLD["tomlkit/__init__.py"]}
    setup, seen, report = _guarded(tmp_path, site, same, changes="block")
    assert setup.run(setup.guard(report), ["tomlkit-shadow", "leftpad"]) == 1
    assert seen.executor.calls == []


@pytest.mark.usefixtures("restore_fake_executor")
def test_a_wheel_known_only_as_it_is_written_is_judged_then(tmp_path: Path) -> None:
    """A directory dependency is built during the install: the check as the
    wheel is written is all there is; the same bytes cannot be serialised
    any more, so they are installed with a warning."""
    site = _tomlkit_site(tmp_path)
    same = {"tomlkit/__init__.py": OLD["tomlkit/__init__.py"]}
    setup, seen, report = _guarded(tmp_path, site, same)
    del seen.executor._download  # type: ignore[attr-defined]
    assert setup.run(setup.guard(report), ["tomlkit-shadow"]) == 0
    assert seen.executor.calls == [["tomlkit-shadow"]]
    err = setup.err
    assert "too late to serialise it" in err
    assert "installing anyway as configured" in err
    assert "Executor._download/_download_link" in err  # the missing seam, said once


# ----------------------------------------------------------------- the journal


def test_an_overwrite_journal_copies_the_owner_and_restores_without_the_intruder(
    tmp_path: Path,
) -> None:
    site = make_site(tmp_path)
    swap = swapjournal.begin([site], "tomlkit", incoming="tomlkit-shadow")
    assert swap is not None
    # Copies: the installer rewrites the owner's files in place (same inode).
    assert (site / "tomlkit" / "__init__.py").stat().st_nlink == 1
    with (site / "tomlkit" / "__init__.py").open("w") as stream:
        stream.write("HALF")
    info = site / "tomlkit_shadow-1.0.dist-info"
    info.mkdir()
    (site / "tomlkit_shadow").mkdir()
    (site / "tomlkit_shadow" / "own.py").write_text("")
    (info / "RECORD").write_text("tomlkit/__init__.py,,\ntomlkit_shadow/own.py,,\n")
    assert swapjournal.finish(swap, ok=False) == "tomlkit 0.13.2"
    assert (site / "tomlkit" / "__init__.py").read_text() == OLD["tomlkit/__init__.py"]
    assert not info.exists()
    assert not (site / "tomlkit_shadow" / "own.py").exists()
    assert (site / "tomlkit-0.13.2.dist-info" / "RECORD").is_file()


@pytest.mark.usefixtures("restore_fake_executor")
@pytest.mark.parametrize("strict", [False, True])
def test_a_failing_precheck_leaves_the_check_as_wheels_are_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, strict: bool
) -> None:
    from poetry_env_audit.guard import FileOwnershipError

    site = _tomlkit_site(tmp_path)
    setup, seen, report = _guarded(tmp_path, site, {"tomlkit/__init__.py": "EVIL\n"})
    setup.command.poetry.pyproject.data["tool"]["poetry-env-audit"] = {"strict": strict}

    def broken(self: ExecutorHandle, ops: object) -> Archives:
        raise RuntimeError("no chooser today")

    monkeypatch.setattr(ExecutorHandle, "archives", broken)
    guard = setup.guard(report)
    if strict:
        assert setup.run(guard, ["leftpad", "tomlkit-shadow"]) == 1
        assert seen.executor.calls == []
    else:
        with pytest.raises(FileOwnershipError):
            setup.run(guard, ["leftpad", "tomlkit-shadow"])
        # Refused as its wheel was about to be written, after leftpad's.
        assert [w.name for w in seen.installed] == ["leftpad-1.0-py3-none-any.whl"]
    assert "no chooser today" in setup.err
    assert (site / "tomlkit" / "__init__.py").read_text() == OLD["tomlkit/__init__.py"]


def test_a_file_sources_wheel_is_found_as_poetrys_executor_finds_it(
    tmp_path: Path,
) -> None:
    from poetry_env_audit.seams.plan import local_wheel
    from poetry_env_audit.seams.plan import operations_to_changes

    wheel = make_wheel(tmp_path / "dist", "local-whl", "1.0", {"local_whl/x.py": ""})
    relative = _package("local-whl", "file", "dist/" + wheel.name)
    relative.root_dir = tmp_path
    assert local_wheel(relative) == str(wheel)
    assert local_wheel(_package("local-whl", "file", str(wheel))) == str(wheel)
    assert local_wheel(_package("gone", "file", str(tmp_path / "gone.whl"))) is None
    assert local_wheel(_package("sdist", "file", str(tmp_path / "x.tar.gz"))) is None
    assert local_wheel(_package("index")) is None
    (planned,) = operations_to_changes([Install(relative)])
    assert (planned.source_type, planned.local_wheel) == ("file", str(wheel))
    (indexed,) = operations_to_changes([Install(_package("idna"))])
    assert (indexed.source_type, indexed.local_wheel) == (None, None)


def test_a_worker_of_poetrys_pool_is_started_before_the_first_swap() -> None:
    from concurrent.futures import ThreadPoolExecutor

    @dataclass
    class PooledExecutor:
        _executor: ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=4)
    try:
        handle = ExecutorHandle(
            executor=PooledExecutor(pool), original=None, fallbacks=Fallbacks()
        )
        handle.start_worker()
        assert len(pool._threads) == 1
        pool.submit(lambda: None).result()  # the idle thread is reused
        assert len(pool._threads) == 1
    finally:
        pool.shutdown(wait=True)
    ExecutorHandle(
        executor=object(), original=None, fallbacks=Fallbacks()
    ).start_worker()
    pool.shutdown()
    broken = ExecutorHandle(
        executor=PooledExecutor(pool), original=None, fallbacks=Fallbacks()
    )
    broken.start_worker()  # submit after shutdown raises: ignored
