from __future__ import annotations

# A minimal Debian unstable root (debootstrap --variant=minbase) holding
# Debian's own python3.14 and python3.15, which need a newer C library than
# the host's Debian release has.  Built once per machine into the harness
# cache (a stamp marks it complete; a half-built root is thrown away), never
# written to afterwards: every use mounts an overlay over it.
#
#   ensure_root(cache_root)      the cached root (built on first use, ~1 to 2 min)
#   overlay(lower, upper, work)  a throwaway writable view of it
#   chroot_mounts(root, binds)   /proc, /dev, /dev/shm, a private /tmp and bind
#                                mounts inside it, always unmounted afterwards
import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from harness.interpreters import exclusive

if TYPE_CHECKING:
    from collections.abc import Iterator
    from collections.abc import Mapping
    from collections.abc import Sequence

SUITE = "sid"
#: Debian packages of the root.  gcc and python3.15-dev: Poetry 2.5.1's
#: closure has no cp315 wheel of zstandard yet, it is built from its sdist
#: once (harness.wheels); python3-shellingham: one of Poetry's dependencies
#: as a Debian package, so Poetry's closure is split between
#: /usr/local/lib/python3.X/dist-packages and /usr/lib/python3/dist-packages.
PACKAGES = (
    "python3.14",
    "python3.14-venv",
    "python3.15",
    "python3.15-venv",
    "python3.15-dev",
    "gcc",
    "python3-shellingham",
)
#: Bump when the way the root is built changes.
ROOT_FORMAT = 1
STAMP = ".complete.json"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
ENV_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class ChrootError(RuntimeError):
    pass


def root_key() -> str:
    payload = json.dumps({"format": ROOT_FORMAT, "suite": SUITE, "packages": PACKAGES})
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def root_dir(cache_root: Path) -> Path:
    return cache_root / "chroot" / f"{SUITE}-{root_key()}"


def is_complete(root: Path) -> bool:
    return (root / STAMP).is_file()


# --- the archive the host's apt uses ------------------------------------------------


def debian_mirror(apt_dir: Path = Path("/etc/apt")) -> str:
    """The URI of the Debian archive the host's apt is configured with (the
    entry for the host's release, from sources.list or deb822 .sources)."""
    codename = _os_release().get("VERSION_CODENAME", "")
    entries = list(_apt_entries(apt_dir))
    for uri, suites in entries:
        if codename and codename in suites:
            return uri.rstrip("/")
    for uri, _ in entries:
        if uri.rstrip("/").endswith("/debian"):
            return uri.rstrip("/")
    raise ChrootError(f"no Debian archive in {apt_dir}/sources.list*")


def _os_release() -> dict[str, str]:
    try:
        text = Path("/etc/os-release").read_text(encoding="utf-8")
    except OSError:
        return {}
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line)
    return {k: v.strip().strip('"') for k, v in pairs}


def _apt_entries(apt_dir: Path) -> Iterator[tuple[str, list[str]]]:
    files = [apt_dir / "sources.list"]
    files += sorted((apt_dir / "sources.list.d").glob("*"))
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            continue
        if path.name.endswith(".sources"):
            yield from _deb822_entries(text)
        elif path.name.endswith(".list"):
            yield from _one_line_entries(text)


def _one_line_entries(text: str) -> Iterator[tuple[str, list[str]]]:
    for line in text.splitlines():
        words = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
        if len(words) >= 3 and words[0] == "deb":
            yield words[1], [words[2]]


def _deb822_entries(text: str) -> Iterator[tuple[str, list[str]]]:
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line:
                continue
            key, value = line.split(":", 1)
            fields[key.strip().lower()] = value.strip()
        if "deb" not in fields.get("types", "").split():
            continue
        suites = fields.get("suites", "").split()
        for uri in fields.get("uris", "").split():
            yield uri, suites


# --- building the root -----------------------------------------------------------------


def ensure_root(cache_root: Path) -> Path:
    """The cached Debian unstable root, built on first use (once per machine:
    debootstrap is installed with apt-get when missing)."""
    root = root_dir(cache_root)
    if is_complete(root):
        return root
    with exclusive(root.with_name(root.name + ".lock")):
        if not is_complete(root):
            _build(root)
    return root


def _build(root: Path) -> None:
    debootstrap = _debootstrap()
    mirror = debian_mirror()
    partial = root.with_name(f"{root.name}.partial")
    _remove_tree(partial)
    _remove_tree(root)
    sys.stderr.write(
        f"poetry-env-audit tests: building a Debian {SUITE} root in {root} "
        "(once per machine, about 2 minutes)\n"
    )
    started = time.monotonic()
    command = [debootstrap, "--variant=minbase", f"--include={','.join(PACKAGES)}"]
    command += [SUITE, str(partial), mirror]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        log = (result.stdout + result.stderr)[-3000:]
        raise ChrootError(f"debootstrap failed ({result.returncode}):\n{log}")
    refresh_host_files(partial)
    took = time.monotonic() - started
    stamp = {"suite": SUITE, "packages": PACKAGES, "seconds": round(took, 1)}
    (partial / STAMP).write_text(json.dumps(stamp, indent=1) + "\n")
    partial.rename(root)


def _debootstrap() -> str:
    found = shutil.which("debootstrap") or shutil.which("/usr/sbin/debootstrap")
    if found:
        return found
    if shutil.which("apt-get") is None:
        raise ChrootError("debootstrap is missing and there is no apt-get to get it")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "debootstrap"],
    ):
        result = subprocess.run(command, capture_output=True, text=True, env=env)
        if result.returncode != 0:
            raise ChrootError(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
    found = shutil.which("debootstrap") or shutil.which("/usr/sbin/debootstrap")
    if not found:
        raise ChrootError("apt-get installed debootstrap but it is not on PATH")
    return found


def refresh_host_files(root: Path) -> None:
    """The host's resolver configuration and CA bundle, so pip inside the
    root reaches the package index as the host does."""
    for source in (Path("/etc/resolv.conf"), HOST_CA_BUNDLE):
        if not source.is_file():
            continue
        dest = root / source.relative_to("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.is_symlink() or dest.exists():
            dest.unlink()
        shutil.copyfile(source, dest)


def _remove_tree(path: Path) -> None:
    if path.exists():
        # A crashed run may have left mounts inside: never follow them.
        for mounted in reversed(mounts_under(path)):
            _umount(mounted)
        shutil.rmtree(path)


# --- mounts ----------------------------------------------------------------------------


def mounts_under(path: Path) -> list[Path]:
    """Mount points at or below *path*, in mount order."""
    real = os.path.realpath(path)
    found = []
    with Path("/proc/self/mountinfo").open(encoding="utf-8") as info:
        for line in info:
            point = line.split()[4].encode().decode("unicode_escape")
            if point == real or point.startswith(real + "/"):
                found.append(Path(point))
    return found


def _mount(args: Sequence[str]) -> None:
    mount = shutil.which("mount") or "/usr/bin/mount"
    result = subprocess.run([mount, *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise ChrootError(f"mount {' '.join(args)}: {result.stderr.strip()}")


def _umount(point: Path) -> None:
    umount = shutil.which("umount") or "/usr/bin/umount"
    result = subprocess.run([umount, str(point)], capture_output=True, text=True)
    if result.returncode != 0:
        # Still busy (a process in it did not end yet): detach it lazily.
        subprocess.run([umount, "-l", str(point)], capture_output=True, check=False)


@contextlib.contextmanager
def overlay(
    lower: Sequence[Path], upper: Path, work: Path, merged: Path
) -> Iterator[Path]:
    """A writable overlay of *lower* (first entry on top) at *merged*; writes
    go to *upper*; unmounted afterwards."""
    for directory in (upper, work, merged):
        directory.mkdir(parents=True, exist_ok=True)
    lowers = ":".join(str(p) for p in lower)
    options = f"lowerdir={lowers},upperdir={upper},workdir={work}"
    _mount(["-t", "overlay", "overlay", "-o", options, str(merged)])
    try:
        yield merged
    finally:
        for point in reversed(mounts_under(merged)):
            _umount(point)


@contextlib.contextmanager
def chroot_mounts(
    root: Path,
    binds: Sequence[tuple[Path, str]],
    *,
    tmp: Path,
    tmp_inner: str = "/tmp",  # noqa: S108 - the root's own mount point
) -> Iterator[Path]:
    """/proc, /dev, /dev/shm, *tmp* as /tmp and each (host dir, inner path)
    of *binds* mounted inside *root*; all unmounted afterwards, also when the
    body fails."""
    points: list[Path] = []
    try:
        proc = root / "proc"
        proc.mkdir(exist_ok=True)
        _mount(["-t", "proc", "proc", str(proc)])
        points.append(proc)
        # The root's own /dev, /dev/shm and /tmp mount points (not files made
        # in a shared temporary directory): S108 does not apply.
        system = [
            (Path("/dev"), "/dev"),
            (Path("/dev/pts"), "/dev/pts"),  # pseudo-terminals (pty tests)
            (Path("/dev/shm"), "/dev/shm"),  # noqa: S108
            (tmp, tmp_inner),
        ]
        for source, inner in [*system, *binds]:
            target = root / inner.lstrip("/")
            target.mkdir(parents=True, exist_ok=True)
            _mount(["--bind", str(source), str(target)])
            points.append(target)
        yield root
    finally:
        for point in reversed(points):
            _umount(point)


def chroot_command(
    root: Path, argv: Sequence[str], env: Mapping[str, str], *, cwd: str = "/"
) -> list[str]:
    """``chroot ROOT /usr/bin/env -i -C CWD NAME=VALUE... ARGV``: nothing of
    the caller's environment leaks in but *env*."""
    pairs = [f"{k}={v}" for k, v in sorted({"PATH": ENV_PATH, **env}.items())]
    chroot = shutil.which("chroot") or "/usr/sbin/chroot"
    return [chroot, str(root), "/usr/bin/env", "-i", "-C", cwd, *pairs, *argv]


# --- a run inside the root ----------------------------------------------------------------

#: Where a run sees the repository, the harness cache and its dev venv.
REPO_MOUNT = "/repo"
#: The Debian legs' base Python: Debian's python3.X copied into a prefix of
#: its own (harness.interpreters.make_system_python), made in each leg's
#: overlay at this fixed path.
BASE_PREFIX = "/opt/poetry-env-audit-python{minor}"
CACHE_MOUNT = "/cache"
DEV_VENV_MOUNT = "/opt/poetry-env-audit-dev"


@contextlib.contextmanager
def session_root(
    root: Path, scratch: Path, *, repo: Path, cache_root: Path, dev_venv: Path
) -> Iterator[Path]:
    """A throwaway overlay of the cached *root* (writes go to *scratch*, the
    cached root stays pristine) with /proc, /dev, /dev/shm, a private /tmp,
    the repository at /repo, the harness cache at /cache and *dev_venv* at
    /opt/poetry-env-audit-dev; everything unmounted afterwards."""
    tmp = scratch / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    tmp.chmod(0o1777)
    dev_venv.mkdir(parents=True, exist_ok=True)
    binds = [(repo, REPO_MOUNT), (cache_root, CACHE_MOUNT), (dev_venv, DEV_VENV_MOUNT)]
    upper, work = scratch / "upper", scratch / "work"
    with overlay([root], upper, work, scratch / "merged") as merged:
        refresh_host_files(merged)
        with chroot_mounts(merged, binds, tmp=tmp):
            yield merged
