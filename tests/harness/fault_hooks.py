"""Test-only fault hooks for throwaway interpreters (see ``faults/sitecustomize.py``).

The variables are ``ENV_AUDIT_FAULT_*``, outside the plugin's own
``POETRY_ENV_AUDIT_*`` prefix (the plugin refuses variables of its prefix it
does not know), so the hook file goes in as the interpreter's ``sitecustomize``
unchanged.
"""

from __future__ import annotations

import shutil
from pathlib import Path

SITECUSTOMIZE = Path(__file__).resolve().parent / "faults" / "sitecustomize.py"
#: FILE: one JSON line per executed operation.
TRACE = "ENV_AUDIT_FAULT_TRACE"
#: NAME: the distribution whose update is held open ...
SWAP = "ENV_AUDIT_FAULT_SWAP"
#: ... for this many seconds after its old files were removed.
SWAP_SECONDS = "ENV_AUDIT_FAULT_SWAP_SECONDS"
#: PATH: a wheel writing the site-relative file PATH writes half of it over
#: what is there, then waits SWAP_SECONDS before writing it whole.
WRITE = "ENV_AUDIT_FAULT_WRITE"
#: N:DIR: the first of N concurrent installs waits, before its first operation,
#: until the other N - 1 say in DIR/*.err that they wait for the lock.
HOLD = "ENV_AUDIT_FAULT_HOLD"
#: STEP: ``poetry self isolate`` is killed (SIGKILL) right after this step.
KILL_AT = "ENV_AUDIT_FAULT_KILL_AT"


def install_faults(site_dir: Path) -> None:
    """Put the hooks into the interpreter whose site-packages is *site_dir*."""
    shutil.copyfile(SITECUSTOMIZE, site_dir / "sitecustomize.py")
