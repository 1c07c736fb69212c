from __future__ import annotations

# A PEP 503 "simple" index built from directories of wheels and sdists, served
# on loopback by the standard library's threading HTTP server.
import hashlib
import html
import os
import shutil
import threading
import time
import zipfile
from email.parser import HeaderParser
from functools import partial
from http.server import SimpleHTTPRequestHandler
from http.server import ThreadingHTTPServer
from typing import TYPE_CHECKING
from typing import Any

from harness.wheels import distribution_files
from harness.wheels import normalize

if TYPE_CHECKING:
    from pathlib import Path
    from types import TracebackType

_SDIST_SUFFIXES = (".tar.gz", ".zip", ".tar.bz2")


def project_of(filename: str) -> str:
    """Normalised project name of a wheel or sdist file name."""
    if filename.endswith(".whl"):
        return normalize(filename.split("-")[0])
    for suffix in _SDIST_SUFFIXES:
        if filename.endswith(suffix):
            return normalize(filename[: -len(suffix)].rsplit("-", 1)[0])
    raise ValueError(f"not a distribution file: {filename}")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def link_or_copy(source: Path, dest: Path) -> None:
    """Hard-link *source* to *dest*, copying when linking is impossible."""
    try:
        os.link(source, dest)
    except OSError:
        shutil.copy2(source, dest)


def build_simple_index(dirs: list[Path], root: Path) -> Path:
    """Write ``root/simple/`` (PEP 503, with PEP 658 metadata for wheels) for
    every distribution file in *dirs*; files go to ``root/files/``.

    Returns ``root/simple``.  The first file of a given name wins.
    """
    files_dir = root / "files"
    files_dir.mkdir(parents=True, exist_ok=True)
    projects: dict[str, list[Path]] = {}
    for directory in dirs:
        for source in distribution_files(directory):
            target = files_dir / source.name
            if not target.exists():
                link_or_copy(source, target)
                projects.setdefault(project_of(source.name), []).append(target)
    simple = root / "simple"
    simple.mkdir(parents=True, exist_ok=True)
    for project, files in projects.items():
        _write_project_page(simple / project, sorted(files))
    _write_root_page(simple, sorted(projects))
    return simple


def _write_root_page(simple: Path, projects: list[str]) -> None:
    links = "".join(f'<a href="{p}/">{p}</a><br>\n' for p in projects)
    (simple / "index.html").write_text(_page("Simple index", links))


def _write_project_page(directory: Path, files: list[Path]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    links = "".join(_anchor(f) for f in files)
    (directory / "index.html").write_text(_page(directory.name, links))


def _anchor(file: Path) -> str:
    attributes = ""
    requires_python: str | None = None
    if file.suffix == ".whl":
        metadata = _extract_metadata(file)
        if metadata is not None:
            meta_hash = hashlib.sha256(metadata).hexdigest()
            attributes += f' data-dist-info-metadata="sha256={meta_hash}"'
            attributes += f' data-core-metadata="sha256={meta_hash}"'
            requires_python = _requires_python(metadata)
    if requires_python:
        attributes += f' data-requires-python="{html.escape(requires_python)}"'
    href = f"../../files/{file.name}#sha256={sha256_of(file)}"
    return f'<a href="{href}"{attributes}>{file.name}</a><br>\n'


def _extract_metadata(wheel: Path) -> bytes | None:
    """Write ``<wheel>.metadata`` (PEP 658) next to *wheel*; return its bytes."""
    with zipfile.ZipFile(wheel) as archive:
        names = [
            n
            for n in archive.namelist()
            if n.count("/") == 1 and n.endswith(".dist-info/METADATA")
        ]
        if len(names) != 1:
            return None
        data = archive.read(names[0])
    wheel.with_name(wheel.name + ".metadata").write_bytes(data)
    return data


def _requires_python(metadata: bytes) -> str | None:
    headers = HeaderParser().parsestr(metadata.decode("utf-8", "replace"))
    value = headers.get("Requires-Python")
    return str(value).strip() if value else None


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html><head><meta name="pypi:repository-version" '
        f'content="1.0"><title>{html.escape(title)}</title></head>\n'
        f"<body>\n{body}</body></html>\n"
    )


class _QuietHandler(SimpleHTTPRequestHandler):
    #: Seconds each request waits before it is answered (a remote index's
    #: round trip; benchmarks only).
    latency = 0.0

    def log_message(self, format: str, *args: Any) -> None:
        return

    def handle_one_request(self) -> None:
        if self.latency:
            time.sleep(self.latency)
        super().handle_one_request()


class IndexServer:
    """The index under *root* served on 127.0.0.1 (random port) from a daemon
    thread.  Use as a context manager; ``url`` ends with ``/simple/``."""

    def __init__(self, root: Path, *, latency: float = 0.0) -> None:
        handler_class = type("_Handler", (_QuietHandler,), {"latency": latency})
        handler = partial(handler_class, directory=str(root))
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="local-index",
            daemon=True,
        )
        self.root = root
        self.port = int(self._server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}/simple/"

    def start(self) -> IndexServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=10)
        self._server.server_close()

    def __enter__(self) -> IndexServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def serve(root: Path, *, latency: float = 0.0) -> IndexServer:
    """``with serve(root) as server: ... server.url ...``

    *latency* (seconds) delays every request, as a remote index would.
    """
    return IndexServer(root, latency=latency)
