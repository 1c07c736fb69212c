"""Ownership by file (issue 11): a wheel of another name that would write a
file of a distribution Poetry needs is refused before it is written."""

from __future__ import annotations

import sysconfig
import zipfile
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import pytest

from poetry_env_audit.guard import FileOwnershipError
from poetry_env_audit.ownership import Owner
from poetry_env_audit.ownership import collisions
from poetry_env_audit.ownership import protected_files
from poetry_env_audit.ownership import wheel_files
from unit.factories import dist
from unit.factories import poetry_env
from unit.test_guard import make_setup
from unit.test_guard import operations

if TYPE_CHECKING:
    from collections.abc import Mapping


def make_wheel(dest: Path, name: str, version: str, files: Mapping[str, str]) -> Path:
    stem = name.replace("-", "_")
    path = dest / f"{stem}-{version}-py3-none-any.whl"
    dest.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        for rel, text in files.items():
            zf.writestr(rel, text)
        info = f"{stem}-{version}.dist-info"
        zf.writestr(
            f"{info}/METADATA",
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        )
        zf.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\n")
        zf.writestr(f"{info}/RECORD", "")
    return path


def test_wheel_files_maps_data_purelib_and_skips_scripts(tmp_path: Path) -> None:
    wheel = make_wheel(
        tmp_path,
        "tomlkit-shadow",
        "1.0",
        {
            "tomlkit/__init__.py": "",
            "tomlkit_shadow-1.0.data/purelib/tomlkit/api.py": "",
            "tomlkit_shadow-1.0.data/scripts/evil": "",
            "../escape.py": "",
        },
    )
    name, paths = wheel_files(wheel)
    assert name == "tomlkit-shadow"
    assert "tomlkit/__init__.py" in paths
    assert "tomlkit/api.py" in paths
    assert not [p for p in paths if "evil" in p or "escape" in p]


def _site_with_tomlkit(root: Path) -> Path:
    site = root / "site"
    (site / "tomlkit").mkdir(parents=True)
    (site / "tomlkit" / "__init__.py").write_text("")
    info = site / "tomlkit-0.13.2.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: tomlkit\nVersion: 0.13.2\n"
    )
    (info / "RECORD").write_text(
        "tomlkit/__init__.py,,\ntomlkit-0.13.2.dist-info/METADATA,,\n"
        "tomlkit/__pycache__/__init__.cpython-311.pyc,,\n../../bin/tomlkit,,\n"
    )
    return site


def test_protected_files_are_those_of_poetrys_distributions(tmp_path: Path) -> None:
    site = str(_site_with_tomlkit(tmp_path))
    poetry = poetry_env(
        [
            dist("poetry", "2.5.1", ["tomlkit>=0.11"]),
            dist("tomlkit", "0.13.2", location=site),
        ],
        import_paths=(site,),
    )
    protected = protected_files(poetry, [site])
    assert set(protected) == {
        "tomlkit/__init__.py",
        "tomlkit-0.13.2.dist-info/METADATA",
    }
    assert protected["tomlkit/__init__.py"] == Owner("tomlkit", "tomlkit", "0.13.2")
    assert protected_files(poetry, [str(tmp_path / "elsewhere")]) == {}


def test_a_wheel_of_another_name_collides_its_own_name_does_not(tmp_path: Path) -> None:
    owner = Owner("tomlkit", "tomlkit", "0.13.2")
    protected = {"tomlkit/__init__.py": owner}
    shadow = make_wheel(tmp_path, "tomlkit-shadow", "1.0", {"tomlkit/__init__.py": ""})
    (found,) = collisions(shadow, protected)
    assert (
        found.describe()
        == "tomlkit-shadow would overwrite tomlkit/__init__.py of tomlkit 0.13.2"
    )
    update = make_wheel(
        tmp_path / "u", "tomlkit", "0.13.3", {"tomlkit/__init__.py": ""}
    )
    assert collisions(update, protected) == []
    other = make_wheel(tmp_path / "o", "leftpad", "1.0", {"leftpad/__init__.py": ""})
    assert collisions(other, protected) == []


# ----------------------------------------------------------------- in the guard


@dataclass
class FakeWheelInstaller:
    installed: list[Path] = field(default_factory=list)

    def install(self, wheel: Path) -> None:
        self.installed.append(wheel)


def _shadowing_setup(
    tmp_path: Path, name: str = "tomlkit-shadow", **kw: Any
) -> tuple[Any, FakeWheelInstaller, Path]:
    own_site = [Path(sysconfig.get_paths()["purelib"])]
    setup = make_setup(tmp_path, site_dirs=own_site, **kw)
    wheels = FakeWheelInstaller()
    payload = "tomlkit" if name == "tomlkit-shadow" else name
    archive = make_wheel(
        tmp_path / "wheels", name, "1.0", {f"{payload}/__init__.py": ""}
    )
    executor = setup.executor
    executor._wheel_installer = wheels  # type: ignore[attr-defined]
    original = type(executor).execute

    def execute(self: Any, ops: list[Any]) -> int:
        status = original(self, ops)
        for _ in ops:
            self._wheel_installer.install(archive)
        return status

    type(executor).execute = execute  # type: ignore[method-assign,assignment]
    return setup, wheels, archive


@pytest.fixture
def _restore_fake_executor() -> Any:
    from unit.test_guard import FakeExecutor

    original = FakeExecutor.execute
    yield
    FakeExecutor.execute = original  # type: ignore[method-assign]


@pytest.mark.usefixtures("_restore_fake_executor")
def test_guard_refuses_a_wheel_that_shadows_poetrys_files(tmp_path: Path) -> None:
    setup, wheels, _ = _shadowing_setup(tmp_path)
    guard = setup.guard()
    with pytest.raises(
        FileOwnershipError, match=r"tomlkit-shadow would overwrite tomlkit/__init__\.py"
    ):
        setup.executor.execute(operations(["tomlkit-shadow"]))
    assert wheels.installed == []
    err = setup.err
    assert "refusing to install tomlkit-shadow" in err
    assert "POETRY_ENV_AUDIT_BREAKS=warn" in err
    del guard


@pytest.mark.usefixtures("_restore_fake_executor")
def test_breaks_warn_installs_the_shadowing_wheel_with_a_warning(
    tmp_path: Path,
) -> None:
    setup, wheels, archive = _shadowing_setup(tmp_path, table={"breaks": "warn"})
    setup.guard()
    assert setup.executor.execute(operations(["tomlkit-shadow"])) == 0
    assert wheels.installed == [archive]
    assert "installing anyway as configured" in setup.err


@pytest.mark.usefixtures("_restore_fake_executor")
def test_wheels_that_shadow_nothing_are_installed(tmp_path: Path) -> None:
    setup, wheels, archive = _shadowing_setup(tmp_path, name="leftpad-x")
    setup.guard()
    assert setup.executor.execute(operations(["leftpad-x"])) == 0
    assert wheels.installed == [archive]
    assert "refusing" not in setup.err
