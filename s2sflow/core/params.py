"""Reading ``params.yaml``: one section per task, one sub-section per stage."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any, TypeVar

import yaml

from s2sflow.core.errors import S2SFlowError

PARAMS_FILE = Path("params.yaml")
STAGES = ("download", "split", "tokenize", "train", "evaluate", "export")

T = TypeVar("T")


def load_params(path: str | Path = PARAMS_FILE) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise S2SFlowError(f"{path}: not found; run from the project root (where dvc.yaml is)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise S2SFlowError(f"{path}: not valid YAML: {' '.join(str(err).split())}") from None
    return data


def task_params(task: str, path: str | Path = PARAMS_FILE) -> dict[str, Any]:
    params = load_params(path)
    if task not in params or not isinstance(params[task], dict):
        known = sorted(k for k, v in params.items() if isinstance(v, dict) and "train" in v)
        raise S2SFlowError(f"{path}: no section for task '{task}' (known tasks: {', '.join(known)})", task)
    return params[task]


def stage_params(task: str, stage: str, path: str | Path = PARAMS_FILE) -> dict[str, Any]:
    section = task_params(task, path)
    if stage not in section:
        raise S2SFlowError(f"{path}: missing section {task}.{stage}", task)
    return section[stage] or {}


def from_dict(cls: type[T], data: dict[str, Any] | None, where: str) -> T:
    """Build a (nested) dataclass from a params dict; unknown keys are errors naming the key."""
    data = dict(data or {})
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise S2SFlowError(f"params.yaml: unknown key {where}.{unknown[0]} (expected one of: {', '.join(fields)})")
    kwargs = {}
    for name, value in data.items():
        default = fields[name].default_factory if fields[name].default_factory is not dataclasses.MISSING else None
        sub = default() if default else None
        if dataclasses.is_dataclass(sub):
            value = from_dict(type(sub), value, f"{where}.{name}")
        kwargs[name] = value
    return cls(**kwargs)


def fingerprint(obj: Any) -> str:
    """A short, stable hash of a JSON-able value (params, configs)."""
    if dataclasses.is_dataclass(obj):
        obj = dataclasses.asdict(obj)
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def stage_name(stage: str, task: str) -> str:
    """The DVC stage running ``stage`` for ``task``: ``train@mnist``, ``train@mt`` (one family for every kind)."""
    return f"{stage}@{task}"
