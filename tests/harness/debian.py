from __future__ import annotations

# The "debian" kind: Debian's own /usr/bin/python3.X with Poetry and the
# plugin installed by `pip install --break-system-packages` (pip puts them in
# /usr/local/lib/python3.X/dist-packages; Debian's python3-shellingham stays
# in /usr/lib/python3/dist-packages, so Poetry's closure is split between the
# two; the standard library carries EXTERNALLY-MANAGED), Poetry configured
# with virtualenvs.create = false.
#
# Tests must never write into a shared interpreter: the cached Debian root
# (harness.chroot) is only ever a lower layer.  Once per session Poetry is
# installed into an overlay whose upper dir becomes the "template layer";
# each test gets a fresh overlay of (template layer, cached root) and runs
# Poetry chrooted into it.  Needs root (mount, chroot): the Debian legs of
# scripts/dev.py run inside the root and set $POETRY_ENV_AUDIT_TEST_DEBIAN.
import contextlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING

from harness.chroot import chroot_command
from harness.chroot import chroot_mounts
from harness.chroot import is_complete
from harness.chroot import overlay
from harness.chroot import root_dir
from harness.interpreters import Interpreter
from harness.wheels import find_wheel

if TYPE_CHECKING:
    from collections.abc import Iterator

DEBIAN_ENV = "POETRY_ENV_AUDIT_TEST_DEBIAN"
#: Where pip puts what it installs into Debian's python, and where Debian's
#: own python3-* packages live (inside the root).
LOCAL_DIST = "/usr/local/lib/python{minor}/dist-packages"
DEBIAN_DIST = "/usr/lib/python3/dist-packages"
#: The wheelhouse inside the template layer while Poetry is installed.
WHEELS = "/opt/poetry-env-audit-wheels"


def debian_root_problem(minor: str, cache_root: Path) -> str:
    """Why the "debian" kind of Python *minor* cannot be made here ("" when
    it can): it needs the cached root with that python3.X, and root
    privileges (the Debian legs of scripts/dev.py have both)."""
    root = root_dir(cache_root)
    if not is_complete(root):
        return f"no complete Debian root at {root}"
    if not (root / f"usr/bin/python{minor}").exists():
        return f"the Debian root has no python{minor}"
    if os.geteuid() != 0:
        return "mounting overlays and chroot need root"
    return ""


@dataclass
class DebianPython:
    """Per-test throwaway Debian roots with Poetry (and the plugin) installed
    into Debian's own python."""

    cache_root: Path
    minor: str
    poetry_version: str
    wheel_dirs: list[Path]
    plugin: Path
    scratch: Path
    _layer: Path | None = field(default=None, init=False)

    @property
    def pristine(self) -> Path:
        return root_dir(self.cache_root)

    @property
    def python(self) -> str:
        return f"/usr/bin/python{self.minor}"

    def layer(self) -> Path:
        """The template layer: Poetry, pip and the plugin pip-installed with
        ``--break-system-packages`` into Debian's python (built once per
        session; the cached root is only read)."""
        if self._layer is None:
            base = Path(tempfile.mkdtemp(prefix="debian-layer-", dir=self.scratch))
            with self._mounted([self.pristine], base) as merged:
                wheels = merged / WHEELS.lstrip("/")
                wheels.mkdir(parents=True)
                for directory in self.wheel_dirs:
                    for wheel in directory.glob("*.whl"):
                        target = wheels / wheel.name
                        if not target.exists():
                            shutil.copyfile(wheel, target)
                shutil.copyfile(self.plugin, wheels / self.plugin.name)
                pip = find_wheel(wheels, "pip")
                if pip is None:
                    raise RuntimeError("no pip wheel in the wheelhouse")
                install = [self.python, f"{WHEELS}/{pip.name}/pip", "install"]
                install += ["--break-system-packages", "--no-index", "--quiet"]
                install += ["--find-links", WHEELS, "pip"]
                install += [
                    f"poetry=={self.poetry_version}",
                    f"{WHEELS}/{self.plugin.name}",
                ]
                self._check(merged, install)
                shutil.rmtree(wheels)
            self._layer = base / "upper"
        return self._layer

    @contextlib.contextmanager
    def interpreter(self) -> Iterator[Interpreter]:
        """A fresh overlay of (template layer, cached root), unmounted and
        removed afterwards: the "debian" Interpreter in it."""
        layer = self.layer()
        base = Path(tempfile.mkdtemp(prefix="debian-test-", dir=self.scratch))
        try:
            with self._mounted([layer, self.pristine], base) as merged:
                version = self._output(merged, [self.python, "-c", _VERSION]).strip()
                yield Interpreter(
                    kind="debian",
                    prefix=merged / "usr",
                    python=merged / self.python.lstrip("/"),
                    poetry_version=self.poetry_version,
                    python_version=version,
                    has_plugin=True,
                    root=merged,
                )
        finally:
            if not os.environ.get("POETRY_ENV_AUDIT_TEST_KEEP"):
                shutil.rmtree(base, ignore_errors=True)

    @contextlib.contextmanager
    def _mounted(self, lower: list[Path], base: Path) -> Iterator[Path]:
        tmp = base / "tmp-unused"
        tmp.mkdir()
        # /proc and /dev; /tmp stays the overlay's own (the bind of *tmp* goes
        # to a path nobody uses).
        upper, work = base / "upper", base / "work"
        with (
            overlay(lower, upper, work, base / "merged") as merged,
            chroot_mounts(merged, [], tmp=tmp, tmp_inner="/run/unused-tmp"),
        ):
            yield merged

    def _check(self, root: Path, argv: list[str]) -> None:
        import subprocess

        env = {"HOME": "/root", "PIP_CONFIG_FILE": os.devnull, "LANG": "C.UTF-8"}
        env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
        env["PIP_ROOT_USER_ACTION"] = "ignore"
        result = subprocess.run(
            chroot_command(root, argv, env), capture_output=True, text=True
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"in the Debian root: {' '.join(argv)} failed:\n"
                f"{result.stdout}{result.stderr}"
            )

    def _output(self, root: Path, argv: list[str]) -> str:
        import subprocess

        command = chroot_command(root, argv, {"LANG": "C.UTF-8"})
        return subprocess.run(
            command, capture_output=True, text=True, check=True
        ).stdout


_VERSION = "import sys; print('%d.%d.%d' % sys.version_info[:3])"
