"""What each stage does for a task, as plain functions of (task, project root): the stage scripts,
the flows and the tests all call these. A task's kind (``pipeline.tasks`` in params.yaml maps each
task to one) supplies the stage functions; nothing here knows any kind. Paths follow DESIGN.md."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from s2sflow.core.errors import S2SFlowError
from s2sflow.core.kind import Kind, get_kind
from s2sflow.core.params import STAGES, from_dict, load_params


class Layout:
    """Where a task's stage outputs live under the project root."""

    def __init__(self, task: str, root: str | Path = "."):
        root = Path(root)
        self.task, self.root = task, root
        self.raw = root / "data" / "raw" / task
        self.split = root / "data" / "split" / task
        self.tokenized = root / "data" / "tokenized" / task
        self.model = root / "models" / task
        self.training_plots = root / "reports" / task / "training"
        self.checkpoints = root / "checkpoints"
        self.metrics = root / "metrics" / f"{task}.json"
        self.eval_reports = root / "reports" / task / "eval"
        self.confusion = root / "reports" / task / "confusion"  # confusion.json, for kinds that have one
        self.export = root / "exports" / task
        self.params = root / "params.yaml"


def _tasks(params: dict, params_path: str | Path) -> dict[str, str]:
    tasks = (params.get("pipeline") or {}).get("tasks")
    if not isinstance(tasks, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in tasks.items()):
        raise S2SFlowError(f"{params_path}: pipeline.tasks must map each task to its kind (`mnist: mnist`, "
                           f"`topic: text`, ...)")
    return tasks


def pipeline_tasks(params_path: str | Path) -> dict[str, str]:
    """``pipeline.tasks``: every task the pipeline builds, in order, with its kind."""
    return _tasks(load_params(params_path), params_path)


def task_kind(task: str, root: str | Path = ".") -> tuple[Kind, dict]:
    """The task's kind and its params section (``params.yaml`` read once), the section's own keys checked."""
    params_path = Path(root) / "params.yaml"
    params = load_params(params_path)
    tasks = _tasks(params, params_path)
    if task not in tasks:
        raise S2SFlowError(f"params.yaml: task '{task}' is not in pipeline.tasks (known: {', '.join(tasks)}); add "
                           f"`{task}: <kind>` there", task)
    kind = get_kind(tasks[task], task)
    section = params.get(task)
    if not isinstance(section, dict):
        raise S2SFlowError(f"{params_path}: no section for task '{task}' (it is in pipeline.tasks)", task)
    allowed = (*STAGES, *kind.section_keys)
    unknown = sorted(k for k in section if k not in allowed)
    if unknown:
        raise S2SFlowError(f"params.yaml: unknown key {task}.{unknown[0]} (a {kind.name} task has: "
                           f"{', '.join(allowed)})", task)
    return kind, section


def headline_metric(task: str, root: str | Path = ".") -> tuple[str, str]:
    """The task's headline test metric and whether higher is better (reports sort by it)."""
    kind, section = task_kind(task, root)
    return kind.headline(section)


def run_stage(stage: str, task: str, root: str | Path = ".", progress: bool = True) -> dict:
    """Run one stage of ``task``: download is the same for every kind; the others are the kind's."""
    layout = Layout(task, root)
    kind, params = task_kind(task, layout.root)
    if stage not in params:
        raise S2SFlowError(f"params.yaml: missing section {task}.{stage}", task)
    section = params[stage] or {}
    if stage == "download":
        return run_download(task, kind, section, layout, progress)
    summary = kind.stage(stage)(task, section, layout)
    if stage == "evaluate":  # a declared DVC plot folder: empty for kinds without a confusion matrix
        layout.confusion.mkdir(parents=True, exist_ok=True)
    return summary


@dataclass
class DownloadConfig:
    """``<task>.download`` (see ``s2sflow/core/sources.py``): ``files`` (name + sha256), ``sources`` tried in
    order, ``license``, the kind's content ``check``, a ``checksums`` list and ``globs`` of a folder source."""

    files: list = field(default_factory=list)
    sources: list = field(default_factory=list)
    license: str = "unknown"
    check: str | None = None
    checksums: str | None = None
    globs: list | None = None


def run_download(task: str, kind: Kind, params: dict, layout: Layout, progress: bool = True) -> dict:
    from s2sflow.core.sources import download

    from_dict(DownloadConfig, params, f"{task}.download")  # an unknown or misspelled key is one line
    checks, readers = kind.download_hooks()
    record = download(task, params, layout.raw, progress=progress, root=layout.root, content_checks=checks,
                      package_readers=readers)
    if len(record["files"]) > 20:  # thousands of images: the stage's summary line gives counts (source.json has all)
        record = {**record, "files": {"count": len(record["files"]),
                                      "bytes": sum(f["bytes"] for f in record["files"].values())},
                  "origin": {"kind": record["origin"]["kind"]}}
    return record
