"""Remedies: the commands a user can paste to get out of a finding."""

from __future__ import annotations

import os
import re
import shlex
from typing import TYPE_CHECKING

from packaging.specifiers import InvalidSpecifier
from packaging.specifiers import Specifier
from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion
from packaging.version import Version

from poetry_env_audit.findings import Remedy
from poetry_env_audit.findings import Verdict
from poetry_env_audit.plan import Action
from poetry_env_audit.target import TargetReason

if TYPE_CHECKING:
    from collections.abc import Sequence

    from poetry_env_audit.findings import Finding
    from poetry_env_audit.findings import Holder
    from poetry_env_audit.poetry_env import PoetryEnvironment
    from poetry_env_audit.poetry_env import RequiredBy
    from poetry_env_audit.target import TargetEnvironment

OWN_NAME = "poetry-env-audit"


def combined_specifier(requirements: Sequence[str]) -> str:
    """The intersection of several specifier texts, as one short specifier set.

    Of several lower bounds only the highest is kept, of several upper bounds
    the lowest: ``>=2.5,>=3.18,<4`` becomes ``>=3.18,<4``.
    """
    lower: Specifier | None = None
    upper: Specifier | None = None
    others: dict[str, None] = {}
    for text in requirements:
        try:
            specs = list(SpecifierSet(text))
        except InvalidSpecifier:
            continue
        for spec in specs:
            try:
                bound = Version(spec.version)
            except InvalidVersion:
                others.setdefault(str(spec), None)
                continue
            if spec.operator in (">=", ">"):
                if lower is None or (bound, spec.operator == ">") > (
                    Version(lower.version),
                    lower.operator == ">",
                ):
                    lower = spec
            elif spec.operator in ("<", "<="):
                # Stricter: a lower bound, or the same bound exclusive.
                if upper is None or (bound, spec.operator == "<=") < (
                    Version(upper.version),
                    upper.operator == "<=",
                ):
                    upper = spec
            else:
                others.setdefault(str(spec), None)
    parts = [str(s) for s in (lower, upper) if s is not None] + list(others)
    return ",".join(parts)


def isolate_in_place(
    poetry: PoetryEnvironment, target: TargetEnvironment
) -> Remedy | None:
    """``poetry self isolate``, when it applies: the recipe stays as it is."""
    from poetry_env_audit.poetry_env import ISOLATE_COMMAND
    from poetry_env_audit.poetry_env import offers_isolation

    if os.name != "posix" or not offers_isolation(
        shared=target.shared,
        kind=poetry.installation.kind,
        isolated_here=poetry.installation.self_isolated,
    ):
        return None
    return Remedy(
        title=(
            "Move Poetry into its own virtualenv, same interpreter and versions,"
            " offline (the project still installs here)"
        ),
        command=ISOLATE_COMMAND,
    )


def isolate_poetry(poetry: PoetryEnvironment) -> Remedy:
    # Plugins that Poetry itself requires (poetry-plugin-export on 1.8) come along.
    plugins = {
        name
        for name in poetry.plugins
        if not any(r.package == "poetry" for r in _required_by(poetry, name))
    }
    inject = " ".join(shlex.quote(name) for name in sorted(plugins | {OWN_NAME}))
    return Remedy(
        title="Install Poetry in its own environment (pipx or the official installer)",
        command=f"pipx install {_poetry_pin(poetry.version)} && pipx inject poetry {inject}",
    )


_PLAIN_VERSION = re.compile(r"[A-Za-z0-9.+!_-]+")


def _poetry_pin(version: str) -> str:
    """``"poetry==2.5.1"`` as the README shows it; quoted for the shell when the
    version (read from Poetry's metadata) holds anything else."""
    if _PLAIN_VERSION.fullmatch(version):
        return f'"poetry=={version}"'
    return shlex.quote(f"poetry=={version}")


def _required_by(poetry: PoetryEnvironment, name: str) -> tuple[RequiredBy, ...]:
    dist = poetry.get(name)
    return dist.required_by if dist else ()


def use_a_venv(target: TargetEnvironment) -> Remedy | None:
    if target.reason is TargetReason.CREATE_FALSE:
        return Remedy(
            title="Let Poetry create a virtualenv for the project",
            command="poetry config virtualenvs.create true --local",
        )
    if target.reason is TargetReason.VIRTUAL_ENV:
        return Remedy(
            title="Do not install into the virtualenv that holds Poetry",
            command="env -u VIRTUAL_ENV poetry install",
        )
    if target.reason is TargetReason.CONDA_PREFIX:
        return Remedy(
            title="Do not install into the conda environment that holds Poetry",
            command="conda deactivate && poetry install",
        )
    return None


def install_without_sync(flags: str = "") -> Remedy:
    """``poetry install`` with ``flags``: the way out of a synchronising removal."""
    if "--all-extras" in flags.split():
        title = (
            "Install without synchronising, with every extra (without them this"
            " Poetry also removes extras it needs)"
        )
    else:
        title = "Install without synchronising (a plain install removes nothing)"
    return Remedy(title=title, command=" ".join(("poetry install", flags)).strip())


#: Said instead when the engine found that every install without
#: synchronising would remove packages Poetry needs too.
NO_PLAIN_INSTALL = Remedy(
    title=(
        "No install without synchronising avoids it: each would remove packages"
        " Poetry needs; isolate Poetry instead"
    ),
    command=None,
)


def align_lock(
    finding: Finding,
    holders: Sequence[Holder],
    command: str | None = None,
    *,
    plain: Remedy | None = None,
) -> Remedy:
    """The remedy that changes what the project asks for; for a removal, the
    checked install without synchronising (``plain``, by default a bare one)."""
    if finding.action is Action.REMOVE:
        if command is not None and command.startswith("poetry remove"):
            return Remedy(
                title="Change pyproject.toml and the lock only, leave the environment alone",
                command=command,
            )
        return plain or install_without_sync()
    spec = poetry_specifier(finding)
    blocking = [h for h in holders if not h.allows]
    if blocking:
        who = "; ".join(
            f"{h.who} requires {finding.package} ({h.constraint})" for h in blocking
        )
        return Remedy(
            title=(
                f"The project's constraints exclude what Poetry needs"
                f" ({finding.package}{spec}): {who}; isolate Poetry instead"
            ),
            command=None,
        )
    requirement = shlex.quote(f"{finding.package}{spec}")
    return Remedy(
        title=f"Align the lock with Poetry's requirement ({finding.package}{spec})",
        command=f"poetry add {requirement}",
    )


def poetry_specifier(finding: Finding) -> str:
    """What every requirer of the finding's package accepts, as one specifier."""
    return combined_specifier(
        [specifier_of(r.requirement) for r in finding.required_by]
    )


def specifier_of(requirement: str) -> str:
    """``packaging>=24.2`` -> ``>=24.2`` (extras dropped)."""
    rest = requirement[len(_name_part(requirement)) :]
    if rest.startswith("["):
        rest = rest[rest.find("]") + 1 :]
    return rest


def _name_part(requirement: str) -> str:
    for i, ch in enumerate(requirement):
        if ch in "<>=!~ ;([":
            return requirement[:i]
    return requirement


def for_package(
    finding: Finding,
    poetry: PoetryEnvironment,
    target: TargetEnvironment,
    holders: Sequence[Holder],
    command: str | None = None,
    *,
    plain_install_passes: bool = True,
    plain: Remedy | None = None,
) -> tuple[Remedy, ...]:
    isolate = isolate_in_place(poetry, target)
    remedies: list[Remedy] = [isolate] if isolate is not None else []
    # Aligning the lock makes sense for Poetry's dependencies, not for Poetry itself.
    itself = finding.package.lower() in ("poetry", "poetry-core")
    # Another wheel's files: no constraint on the package itself helps.
    overwrite = finding.action is Action.OVERWRITE
    if finding.verdict is Verdict.BREAKS and not itself and not overwrite:
        removal_by_sync = finding.action is Action.REMOVE and not (
            command or ""
        ).startswith("poetry remove")
        if plain_install_passes or not removal_by_sync:
            remedies.append(align_lock(finding, holders, command, plain=plain))
    venv = use_a_venv(target)
    if venv is not None:
        remedies.append(venv)
    remedies.append(isolate_poetry(poetry))
    return tuple(remedies)


def for_shared(
    poetry: PoetryEnvironment, target: TargetEnvironment
) -> tuple[Remedy, ...]:
    isolate = isolate_in_place(poetry, target)
    venv = use_a_venv(target)
    return (
        *((isolate,) if isolate else ()),
        *((venv,) if venv else ()),
        isolate_poetry(poetry),
    )


def repair(poetry: PoetryEnvironment, package: str, specifier: str) -> Remedy:
    requirement = shlex.quote(f"{package}{specifier}")
    return Remedy(
        title="Repair Poetry's environment with pip",
        command=f"{shlex.quote(poetry.python)} -m pip install {requirement}",
    )
