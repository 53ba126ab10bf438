"""Reading ``params.yaml``: one section per task, one sub-section per stage."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import types
import typing
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


def param(default: Any, *, ge: float | None = None, gt: float | None = None, le: float | None = None,
          lt: float | None = None, choices: tuple | None = None) -> Any:
    """A dataclass field of a params schema with its allowed values: ``from_dict`` refuses a value
    outside ``ge``/``gt``/``le``/``lt`` or not in ``choices`` (``None`` passes where the type allows it)."""
    rule = {k: v for k, v in {"ge": ge, "gt": gt, "le": le, "lt": lt, "choices": choices}.items() if v is not None}
    return dataclasses.field(default=default, metadata={"allowed": rule})


def _allowed(rule: dict) -> str:
    if "choices" in rule:
        return "one of " + ", ".join(str(c) for c in rule["choices"])
    words = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}
    return " and ".join(f"{words[k]} {rule[k]:g}" for k in ("ge", "gt", "le", "lt") if k in rule)


def _in_range(value: Any, rule: dict) -> bool:
    if "choices" in rule:
        return value in rule["choices"]
    return (("ge" not in rule or value >= rule["ge"]) and ("gt" not in rule or value > rule["gt"])
            and ("le" not in rule or value <= rule["le"]) and ("lt" not in rule or value < rule["lt"]))


def _type_ok(value: Any, hint: Any) -> bool:
    """Whether a YAML value fits a field's annotation (int is not bool; an int is a float)."""
    if hint is Any:
        return True
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return any(_type_ok(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if hint is str:
        return isinstance(value, str)
    origin = typing.get_origin(hint) or hint
    if origin in (list, dict):
        return isinstance(value, origin)
    return True


def _type_name(hint: Any) -> str:
    names = {int: "a whole number", float: "a number", bool: "true or false", str: "a string", list: "a list",
             dict: "a mapping", type(None): "null"}
    parts = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    return " or ".join(names.get(typing.get_origin(p) or p, str(p)) for p in parts)


def check_fields(obj: Any, where: str) -> None:
    """Every field of the params dataclass ``obj`` has its annotated type and lies in its allowed range;
    else one line naming the key, the value and what is allowed (before anything has been written)."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            continue  # checked when it was built
        if not _type_ok(value, hints.get(f.name, Any)):
            hint = f" (quote it in the YAML: '{value}')" if hints[f.name] is str and \
                isinstance(value, (int, float)) and not isinstance(value, bool) else ""
            raise S2SFlowError(f"params.yaml: {where}.{f.name}: {value!r} is not {_type_name(hints[f.name])}{hint}")
        rule = f.metadata.get("allowed")
        if rule and value is not None and not _in_range(value, rule):
            problem = "is unknown" if "choices" in rule else "is out of range"
            raise S2SFlowError(f"params.yaml: {where}.{f.name}: {value!r} {problem}; allowed: {_allowed(rule)}")


def from_dict(cls: type[T], data: dict[str, Any] | None, where: str) -> T:
    """Build a (nested) dataclass from a params dict; unknown keys, values of the wrong type and values
    outside a field's allowed range (see ``param``) are errors naming the key."""
    if data is not None and not isinstance(data, dict):
        raise S2SFlowError(f"params.yaml: {where}: expected a mapping of keys, got {data!r}")
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
    obj = cls(**kwargs)
    check_fields(obj, where)
    return obj


def fingerprint(obj: Any) -> str:
    """A short, stable hash of a JSON-able value (params, configs)."""
    if dataclasses.is_dataclass(obj):
        obj = dataclasses.asdict(obj)
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def stage_name(stage: str, task: str) -> str:
    """The DVC stage running ``stage`` for ``task``: ``train@mnist``, ``train@mt`` (one family for every kind)."""
    return f"{stage}@{task}"
