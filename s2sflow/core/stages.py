"""What each stage does for a task, as plain functions of (task, project root): the stage scripts,
the flows and the tests all call these. A task's kind (``pipeline.tasks`` in params.yaml maps each
task to one) supplies the stage functions; nothing here knows any kind. Paths follow DESIGN.md."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from s2sflow.core.errors import S2SFlowError
from s2sflow.core.fsutil import TMP_MARK, remove, stale_temps
from s2sflow.core.kind import Kind, get_kind
from s2sflow.core.params import STAGES, from_dict, load_params, param


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
        self.train_times = root / ".s2sflow" / "train" / f"{task}.json"  # wall times: not a DVC output
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


class TaskBusyError(S2SFlowError):
    """Another stage of the same task holds its lock (a second `dvc repro`, or a direct run)."""

    exit_code = 75  # EX_TEMPFAIL: try again when the other run ends


TASK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
LOCK_DIR = Path(".s2sflow") / "locks"


def _lock(path: Path) -> int | None:
    """An open descriptor holding ``path``'s exclusive lock, or None when another process holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


@contextlib.contextmanager
def task_lock(task: str, stage: str, root: str | Path = "."):
    """Hold ``<root>/.s2sflow/locks/<task>.lock`` while a stage of ``task`` runs, whether DVC or a person
    started it: a second run of the task stops with one line instead of deleting the first one's
    temporaries. The lock is the kernel's (flock): a killed run releases it."""
    path = Path(root) / LOCK_DIR / f"{task}.lock"
    fd = _lock(path)
    if fd is None:
        holder = path.read_text(encoding="utf-8", errors="replace").strip() or "another process"
        raise TaskBusyError(f"another stage of this task is running ({holder}); wait for it to end, or stop it",
                            task)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{stage}@{task}, pid {os.getpid()}".encode(), 0)
        yield
    finally:
        os.ftruncate(fd, 0)  # nobody holds it now
        os.close(fd)


def clean_killed_temps(root: str | Path, tasks: list[str], held: str) -> list[Path]:
    """Remove the temporaries that killed runs of ``tasks`` left beside their outputs. ``held``: the task
    whose lock the caller holds; for each other task the lock is tried, and a task whose lock another
    process holds is running: its temporaries are left alone."""
    removed = []
    for task in tasks:
        fd = None if task == held else _lock(Path(root) / LOCK_DIR / f"{task}.lock")
        if fd is None and task != held:
            continue
        try:
            layout = Layout(task, root)
            targets = [layout.raw, layout.split, layout.tokenized, layout.model, layout.export, layout.metrics,
                       layout.training_plots, layout.eval_reports, layout.confusion]
            stale = [t for target in targets for t in stale_temps(target)]
            ckpt = layout.checkpoints / task
            stale += [p for p in ckpt.rglob(f"{TMP_MARK}*")] if ckpt.is_dir() else []
            for path in stale:
                remove(path)
            removed += stale
        finally:
            if fd is not None:
                os.close(fd)
    return removed


def run_stage(stage: str, task: str, root: str | Path = ".", progress: bool = True) -> dict:
    """Run one stage of ``task`` under the task's lock, after removing what killed runs left behind:
    download is the same for every kind; the others are the kind's."""
    if not TASK_NAME.fullmatch(task):
        raise S2SFlowError(f"task '{task}': a task name is letters, digits, '_', '.' and '-' (at most 64)", task)
    layout = Layout(task, root)
    kind, params = task_kind(task, layout.root)
    with task_lock(task, stage, layout.root):
        clean_killed_temps(layout.root, list(pipeline_tasks(layout.params)), held=task)
        return _run_stage(stage, task, kind, params, layout, progress)


def _run_stage(stage: str, task: str, kind: Kind, params: dict, layout: Layout, progress: bool) -> dict:
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
    order, ``license``, the kind's content ``check``, a ``checksums`` list and ``globs`` of a folder source;
    ``url_schemes`` (https, http: nothing else may be allowed), ``url_timeout_s`` per request and
    ``max_file_bytes`` per file, as fetched and decompressed."""

    files: list = field(default_factory=list)
    sources: list = field(default_factory=list)
    license: str = "unknown"
    check: str | None = None
    checksums: str | None = None
    globs: list | None = None
    url_schemes: list = field(default_factory=lambda: ["https", "http"])
    url_timeout_s: float = param(30.0, gt=0, le=3600)
    max_file_bytes: int = param(4 * 1024**3, ge=1)


def run_download(task: str, kind: Kind, params: dict, layout: Layout, progress: bool = True) -> dict:
    from s2sflow.core.sources import URL_SCHEMES, Limits, download

    cfg = from_dict(DownloadConfig, params, f"{task}.download")  # an unknown or misspelled key is one line
    bad = [s for s in cfg.url_schemes if s not in URL_SCHEMES]
    if bad or not cfg.url_schemes:
        raise S2SFlowError(f"params.yaml: {task}.download.url_schemes: {bad[0] if bad else '(empty)'!r} is not "
                           f"allowed; allowed: one or more of {', '.join(URL_SCHEMES)}", task)
    checks, readers = kind.download_hooks()
    limits = Limits(tuple(cfg.url_schemes), float(cfg.url_timeout_s), cfg.max_file_bytes)
    record = download(task, params, layout.raw, progress=progress, root=layout.root, content_checks=checks,
                      package_readers=readers, limits=limits)
    if len(record["files"]) > 20:  # thousands of images: the stage's summary line gives counts (source.json has all)
        record = {**record, "files": {"count": len(record["files"]),
                                      "bytes": sum(f["bytes"] for f in record["files"].values())},
                  "origin": {"kind": record["origin"]["kind"]}}
    return record
