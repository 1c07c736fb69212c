"""Every Poetry internal this plugin touches, in one package.

Poetry has no stable plugin API. Each function in these modules wraps one
internal and :data:`SEAMS` lists them, with the module that adapts each and
the Poetry versions it was checked on, so that a new Poetry release means
reading this package. Nothing outside it imports from ``poetry`` at run time
(the plugin and command base classes excepted, which Poetry documents for
plugins). The modules, by what they adapt:

``environment``
    Poetry's ``Env`` objects: the target, its directories, PEP 668.
``plan``
    the ``Locker`` and a dry-run ``Installer``: the operations an install would run.
``executor``
    the ``Executor``: the wrapped ``execute`` and the serial phase.
``project``
    the loaded project: directory, ``[tool.poetry-env-audit]``, groups.
``command``
    the installing commands, as the guard sees one.
``closure``
    what ``env-audit --assume-shared`` / ``--poetry`` judge against: Poetry's
    own ``Env``, or the image's closure from Poetry's ``Solver`` on a
    ``MockEnv`` and an ``InstalledRepository`` of it.

A seam that is missing at run time is noted in the command's
:class:`Fallbacks` with what was done instead, and reported in one line.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Run by the test matrix (scripts/dev.py test). 2.1.4, 2.3.4 and 2.4.3 were
#: read (shared notes) but are not in the matrix.
CHECKED_ON = ("1.8.5", "2.0.1", "2.2.1", "2.5.1")


@dataclass(frozen=True)
class Seam:
    """One Poetry internal this plugin relies on, and the versions it was checked on."""

    name: str
    what: str
    checked_on: tuple[str, ...] = CHECKED_ON


SEAMS: tuple[Seam, ...] = (
    Seam(
        "EnvManager.get",
        "poetry.utils.env.EnvManager(poetry).get(): the env Poetry picks, without creating one",
    ),
    Seam("EnvManager.use_in_project_venv", "where a new virtualenv would be created"),
    Seam("Env.site_packages.candidates", "directories an install writes to"),
    Seam("Env.paths['stdlib']", "where a PEP 668 EXTERNALLY-MANAGED marker lives"),
    Seam(
        "Locker.lock_data/is_fresh",
        "the lock file is present, readable and fresh",
    ),
    Seam(
        "Config.get('installer.re-resolve') read by Installer._do_install (2.x)",
        "env-audit plans from the lock's markers, without solving",
        ("2.0.1", "2.2.1", "2.5.1"),
    ),
    Seam(
        "Installer(io, env, package, locker, pool, config, executor=...)",
        "a dry run with a recording executor gives Poetry's own plan",
    ),
    Seam(
        "Installer.only_groups/extras/requires_synchronization/dry_run",
        "plan options as `poetry install` sets them",
    ),
    Seam(
        "Operation.job_type/package/initial_package/target_package/skipped",
        "reading the plan",
    ),
    Seam(
        "Locker.locked_repository() (an instance attribute over it) + Locker.lock",
        "Poetry's own read of the lock, kept for the plan's requirements while the"
        " file is unchanged: one parse per command",
    ),
    Seam(
        "Locker.lock_data['package'] + Locker._get_locked_package(info, with_dependencies=)",
        "env-audit: Poetry plans a 2.1 lock from its packages without dependencies"
        " (Installer._do_install reads locked_repository() for the names only), and"
        " only the planned packages that can reach Poetry's closure are read with theirs",
        ("2.0.1", "2.2.1", "2.5.1"),
    ),
    Seam(
        "Package.requires + Dependency.to_pep_508()",
        "requirements of a planned version, from the lock",
    ),
    Seam(
        "poetry.core.constraints.version.parse_constraint",
        "whether the project's constraints allow Poetry's",
    ),
    Seam(
        "COMMAND listener at priority 0",
        "runs after Poetry's configure_env/configure_installer: command._installer is set",
    ),
    Seam(
        "InstallerCommand / SelfCommand in the command's MRO",
        "which commands install, and which target Poetry's own env",
    ),
    Seam(
        "Executor.execute (instance attribute)",
        "the last point before files change; returning 1 stops the command",
    ),
    Seam("Executor._env", "the environment the executor writes to"),
    Seam(
        "Executor._display_summary",
        "printed once for the whole plan when operations run in two phases",
    ),
    Seam(
        "Executor._shutdown", "Ctrl-C during the parallel phase stops the serial phase"
    ),
    Seam(
        "Env.marker_env/supported_tags/paths/sys_path/site_packages",
        "lazily cached facts, computed before a swap",
    ),
    Seam("Installer.is_dry_run()", "--dry-run never blocks"),
    Seam(
        "GroupCommand.activated_groups, Installer._extras/_requires_synchronization,"
        " Config installer.re-resolve",
        "a remedy's install is planned with the command's groups and extras",
    ),
    Seam(
        "Executor._use_builtin_uninstall, Env.site_packages.distributions(name=)",
        "serialised swaps use Poetry's in-process uninstaller (absent before 2.5: pip)",
        ("2.5.1",),
    ),
    Seam(
        "Installer._installed_repository/_get_installed",
        "re-read the installed packages after waiting for the environment lock",
    ),
    Seam("Env.paths['purelib']", "where the environment lock lives"),
    Seam(
        "Executor.run_pip('uninstall', name, '-y') called by Executor._remove (instance attribute)",
        "a serialised swap removes the old files in process, from its journal, where"
        " Poetry would start a pip subprocess",
    ),
    Seam(
        "Executor._wheel_installer.install(archive) (instance attribute)",
        "every wheel an operation writes, checked against the files of Poetry's"
        " distributions before it is written",
    ),
    Seam(
        "Executor._download(operation) (Executor._chooser + the artifact cache),"
        " Executor._download_link(operation, Link), Executor._max_workers,"
        " Executor.supports_fancy_output (instance attribute)",
        "the planned wheels fetched before the first operation, as Poetry's own run"
        " fetches them (into its cache): ownership by file is decided before any"
        " file changes",
    ),
    Seam(
        "Executor._executor (the ThreadPoolExecutor built in Executor.__init__)",
        "a worker thread started before the first swap, so none starts while a swap"
        " runs (Ctrl-C during a thread's start hangs the interpreter's exit)",
    ),
    Seam(
        "ConsoleCommandEvent.disable_command / ConsoleTerminateEvent.set_exit_code (cleo)",
        "refuse before the command runs",
    ),
    Seam(
        "EnvManager.get_system_env(naive=True)",
        "--assume-shared: Poetry's own environment is the target (what `poetry self`"
        " installs into)",
    ),
    Seam(
        "Installer(..., installed=InstalledRepository) + InstalledRepository()"
        ".add_package(Package(name, version))",
        "--poetry: the dry run compares the lock with the image's closure",
    ),
    Seam(
        "MockEnv(version_info, python_implementation, platform, platform_machine,"
        " os_name, marker_env)",
        "--poetry: the image's Python for the solver, the dry run and the project's"
        " python constraint",
    ),
    Seam(
        "Solver(root, pool, [], [], io).use_environment(env), solve()"
        ".calculate_operations(with_uninstalls=False)",
        "--poetry: pip install poetry==VERSION's closure, resolved by Poetry",
    ),
    Seam(
        "LegacyRepository(name, url, config=, disable_cache=), RepositoryPool("
        "repositories=), pool.repositories[].url, Config.get('cache-dir')",
        "--poetry: --index-url or the project's sources, and the cache's key and place",
    ),
)


def poetry_version() -> str:
    from poetry.__version__ import __version__

    return str(__version__)


class Fallbacks:
    """The seams found missing during one command, each with what was done instead."""

    def __init__(self) -> None:
        self._noted: dict[str, str] = {}

    def note(self, seam: str, fallback: str) -> None:
        self._noted.setdefault(seam, fallback)

    def take(self) -> list[tuple[str, str]]:
        """What was noted since the last call, sorted by seam."""
        noted, self._noted = self._noted, {}
        return sorted(noted.items())


def one_line(exc: BaseException) -> str:
    """An exception's message on one line, without its final full stop."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text.rstrip(".")
