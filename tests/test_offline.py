"""Telemetry off and hubs offline in code for every entry point (s2sflow/offline.py): the flows, the
``s2sflow`` command and the stage runner stages/py agree on the same defaults, and a value the user
sets wins."""

import json
import re
import subprocess
import sys
from pathlib import Path

from s2sflow import offline

ROOT = Path(__file__).resolve().parent.parent


def _bare_env(**extra) -> dict:
    return {"PATH": "/usr/bin:/bin", "HOME": "/tmp", **extra}


def test_stage_runner_sets_the_same_defaults():
    text = (ROOT / "stages/py").read_text()
    found = dict(re.findall(r'(\w+)="\$\{\1:-([^}]*)\}"', text))
    assert found == offline.DEFAULTS


def test_stage_runner_exports_them_and_keeps_a_users_value():
    code = f"import os, json; print(json.dumps({{k: os.environ.get(k) for k in {list(offline.DEFAULTS)!r}}}))"
    env = _bare_env(S2SFLOW_PYTHON=sys.executable, HF_HUB_OFFLINE="0")
    out = subprocess.run(["sh", str(ROOT / "stages/py"), "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout
    assert json.loads(out) == {**offline.DEFAULTS, "HF_HUB_OFFLINE": "0"}


def test_cli_and_flows_apply_them_before_prefect_or_the_hub_load():
    code = ("import os, sys; import {mod}; "
            "print(all(os.environ.get(k) == v for k, v in {defaults!r}.items()), os.environ['HF_HUB_OFFLINE'], "
            "'prefect' in sys.modules)")
    for mod, prefect_loaded in (("s2sflow.cli", False), ("flows", False)):
        out = subprocess.run([sys.executable, "-c", code.format(mod=mod, defaults={
            k: v for k, v in offline.DEFAULTS.items() if k != "HF_HUB_OFFLINE"})], cwd=ROOT,
            env=_bare_env(HF_HUB_OFFLINE="0", PYTHONPATH=str(ROOT)), capture_output=True, text=True, check=True)
        assert out.stdout.split() == ["True", "0", str(prefect_loaded)], (mod, out.stdout, out.stderr)
