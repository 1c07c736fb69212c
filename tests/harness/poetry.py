from __future__ import annotations

# Run Poetry from a throwaway interpreter with a scrubbed environment: its own
# HOME, config, cache and data directories, and nothing inherited that would
# change what Poetry does (POETRY_*, VIRTUAL_ENV, CONDA_*, PIP_*, CI markers).
import os
import subprocess
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping
    from collections.abc import Sequence
    from pathlib import Path

    from harness.interpreters import Interpreter

# Inherited variables dropped before every run: exact names and prefixes.
SCRUB_NAMES = frozenset(
    {"VIRTUAL_ENV", "VIRTUAL_ENV_PROMPT", "CI", "GITLAB_CI", "TF_BUILD"}
    | {"PYENV_VERSION", "COLUMNS", "LINES"}
)
SCRUB_PREFIXES = (
    "POETRY_",
    "CONDA_",
    "PIP_",
    "GITHUB_",
    "BUILD_",
    "SYSTEM_",
    "PYTHON",
    "VIRTUALENV_",
    "XDG_",
)
LOOPBACK = "127.0.0.1,localhost"


def state_dir_for(interp: Interpreter) -> Path:
    """Default per-interpreter state directory: ``<prefix>.state`` next to the
    prefix, so every per-test clone gets fresh HOME/config/cache/data."""
    return interp.prefix.with_name(interp.prefix.name + ".state")


def config_toml(interp: Interpreter) -> str:
    """The global Poetry config a kind starts with.

    system: ``virtualenvs.create = false`` (the target is the interpreter
    itself, as in a Docker image); venv: nothing (``VIRTUAL_ENV`` decides);
    isolated: in-project venvs created from Poetry's own interpreter.
    """
    if interp.kind in ("system", "debian"):
        return "[virtualenvs]\ncreate = false\n"
    if interp.kind == "isolated":
        which = (
            "use-poetry-python = true"
            if interp.poetry_major >= 2
            else ("prefer-active-python = false")
        )
        return f"[virtualenvs]\ncreate = true\nin-project = true\n{which}\n"
    return ""


def prepare_state(
    interp: Interpreter, state_dir: Path | None = None
) -> dict[str, Path]:
    """Create (once) the HOME, config, cache and data dirs under *state_dir*."""
    root = state_dir if state_dir is not None else state_dir_for(interp)
    dirs = {
        "HOME": root / "home",
        "POETRY_CONFIG_DIR": root / "config",
        "POETRY_CACHE_DIR": root / "cache",
        "POETRY_DATA_DIR": root / "data",
    }
    for path in dirs.values():
        path.mkdir(parents=True, exist_ok=True)
    config = dirs["POETRY_CONFIG_DIR"] / "config.toml"
    if not config.exists():
        config.write_text(config_toml(interp))
    return dirs


def scrubbed_environ(base: Mapping[str, str] | None = None) -> dict[str, str]:
    source = os.environ if base is None else base
    return {
        k: v
        for k, v in source.items()
        if k not in SCRUB_NAMES and not k.startswith(SCRUB_PREFIXES)
    }


def offline_home_env(
    home: Path, index_url: str, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment of a tool that installs Poetry itself (the Action's
    steps, a pre-commit hook): *base* scrubbed, a fresh HOME with Poetry's
    config, cache and data under it, pip and Poetry pointed at the local
    index *index_url* only, no keyring, no proxy for the loopback."""
    env = scrubbed_environ(base)
    env.update(
        HOME=str(home),
        POETRY_CONFIG_DIR=str(home / "poetry-config"),
        POETRY_CACHE_DIR=str(home / "poetry-cache"),
        POETRY_DATA_DIR=str(home / "poetry-data"),
        PIP_INDEX_URL=index_url,
        PIP_CONFIG_FILE=os.devnull,
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring",
        no_proxy=LOOPBACK,
        NO_PROXY=LOOPBACK,
    )
    return env


def poetry_env(
    interp: Interpreter,
    *,
    state_dir: Path | None = None,
    extra_env: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment ``run_poetry`` uses (also good for ``python -c`` probes)."""
    env = scrubbed_environ()
    env.update({k: str(v) for k, v in prepare_state(interp, state_dir).items()})
    env["PATH"] = os.pathsep.join([str(interp.bin_dir), env.get("PATH", os.defpath)])
    env["NO_COLOR"] = "1"
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.null.Keyring"
    for name in ("NO_PROXY", "no_proxy"):
        env[name] = ",".join(filter(None, [env.get(name), LOOPBACK]))
    if interp.kind == "venv":
        env["VIRTUAL_ENV"] = str(interp.prefix)
    env.update(extra_env or {})
    return env


def run_python(
    interp: Interpreter,
    args: Sequence[str],
    *,
    cwd: Path,
    extra_env: Mapping[str, str] | None = None,
    timeout: float = 600,
    state_dir: Path | None = None,
    wrapper: Sequence[str] = (),
) -> subprocess.CompletedProcess[str]:
    """``<python> ARGS`` in the same environment Poetry runs in (chrooted
    into ``interp.root`` for the "debian" kind, host paths translated).
    ``wrapper`` goes before the interpreter (a host-side tool such as
    valgrind: not for the chrooted kinds)."""
    env = poetry_env(interp, state_dir=state_dir, extra_env=extra_env)
    command = [*wrapper, str(interp.python), *args]
    if interp.root is not None:
        if wrapper:
            raise ValueError(f"no wrapper inside the {interp.kind} root: {wrapper}")
        command, env, cwd = _chrooted(interp.root, command, env, cwd)
    return subprocess.run(
        command,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def _chrooted(
    root: Path, command: list[str], env: dict[str, str], cwd: Path
) -> tuple[list[str], dict[str, str], Path]:
    """*command* run by ``chroot root``: every host path under *root* in the
    command, the environment and the working directory becomes the path the
    chrooted process sees."""
    from harness.chroot import chroot_command

    prefix = str(root).rstrip("/")

    def inner(value: str) -> str:
        return value.replace(prefix + "/", "/").replace(prefix, "/")

    inner_env = {k: inner(v) for k, v in env.items()}
    inner_env["PATH"] = f"/usr/local/bin:/usr/bin:/bin:{inner_env.get('PATH', '')}"
    argv = [inner(a) for a in command]
    return chroot_command(root, argv, inner_env, cwd=inner(str(cwd))), {}, root


def run_poetry(
    interp: Interpreter,
    args: Sequence[str],
    *,
    cwd: Path,
    extra_env: Mapping[str, str] | None = None,
    timeout: float = 600,
    state_dir: Path | None = None,
    wrapper: Sequence[str] = (),
) -> subprocess.CompletedProcess[str]:
    """``<python> -m poetry ARGS`` in *cwd*; stdout and stderr captured as text.

    Never ``bin/poetry``: clones move the prefix, the script's shebang does not.
    """
    return run_python(
        interp,
        ["-m", "poetry", *args],
        cwd=cwd,
        extra_env=extra_env,
        timeout=timeout,
        state_dir=state_dir,
        wrapper=wrapper,
    )


def sync_args(interp: Interpreter) -> list[str]:
    """Poetry's synchronising install: ``sync`` on 2.x, ``install --sync`` on 1.8."""
    return ["sync"] if interp.poetry_major >= 2 else ["install", "--sync"]


def describe(result: subprocess.CompletedProcess[str]) -> str:
    """A failure message: the command, its exit code and its output."""
    command = " ".join(str(a) for a in result.args)
    return (
        f"$ {command}\nexit code {result.returncode}\n"
        f"--- stdout ---\n{result.stdout}--- stderr ---\n{result.stderr}"
    )
