from __future__ import annotations

# Integration-test harness for poetry-env-audit (standard library only).
#
# Builds throwaway interpreters holding real Poetry, a local package index on
# loopback, fixture projects and site-packages snapshots.  ``scripts/dev.py``
# imports it before any dependency is installed, so nothing in this package may
# import a third-party module.  See tests/harness/README.md.
