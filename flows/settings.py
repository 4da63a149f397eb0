"""Prefect environment for textmine's flows; import this before `prefect`.

Defaults only (a value the user set wins):
- PREFECT_SERVER_ANALYTICS_ENABLED=false: no usage data leaves the machine.
- PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS=90: without a server, each
  process starts a temporary API, measured here at 8-10 s (about 20 s on a
  fresh PREFECT_HOME), beyond Prefect's default time-out.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

PREFECT_DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
}
REPO = Path(__file__).resolve().parent.parent


def configure_prefect_env() -> None:
    """Set textmine's Prefect defaults and make `flows` importable from the repository."""
    for key, value in PREFECT_DEFAULTS.items():
        os.environ.setdefault(key, value)
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))


configure_prefect_env()
