"""The pipeline flow: run the six DVC stages of each chosen task, one task after another.

    python -m flows.pipeline                 # every task in params.yaml's pipeline section
    python -m flows.pipeline --tasks mnist   # just these; a task that cannot run is an error

Every stage goes through `dvc repro <stage>@<task>`, so dvc.lock records lineage however a run
starts. Prefect adds retries (download), logs, a metrics-table artifact and schedules
(see flows/deploy.py). A task whose data no source can supply is skipped with the reason when it
comes from the default list; named explicitly, it fails the run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from s2sflow.core.errors import EXIT_DATA_UNAVAILABLE
from s2sflow.core.params import STAGES, stage_name
from s2sflow.core.stages import headline_metric, pipeline_tasks


class StageFailed(Exception):
    def __init__(self, stage: str, task_id: str, reason: str, data_missing: bool):
        super().__init__(f"{stage}@{task_id}: {reason}")
        self.reason, self.data_missing = reason, data_missing


@dataclass
class PipelineSummary:
    completed: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, dict] = field(default_factory=dict)


def failure_reason(output: str, task_id: str) -> str:
    """The stage's own one-line error (``s2sflow: <task>: ...``) or DVC's last ERROR line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    ours = [line for line in lines if line.startswith(f"s2sflow: {task_id}:")]
    errors = [line for line in lines if line.startswith("ERROR")]
    return (ours or errors or lines or ["unknown error"])[-1]


def run_dvc_stage(stage: str, task_id: str, root: str) -> str:
    """`dvc repro <stage>@<task>` in ``root``. Its output
    streams to this terminal as it comes (progress bars included); its summary lines go to the Prefect
    log; failures raise StageFailed."""
    logger = get_run_logger()
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    cmd = [sys.executable, "-m", "dvc", "repro", stage_name(stage, task_id)]
    logger.info("$ %s", " ".join(cmd[2:]))
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    chunks, echo = [], getattr(sys.stderr, "buffer", None)
    while block := os.read(proc.stdout.fileno(), 1 << 14):
        chunks.append(block)
        if echo is not None:
            echo.write(block)
            echo.flush()
    proc.wait()
    output = b"".join(chunks).decode("utf-8", "replace")
    for line in output.replace("\r", "\n").splitlines():
        if line.startswith(("s2sflow:", "Running stage", "Stage ", "ERROR", "WARNING")):
            logger.info(line.strip())
    if proc.returncode != 0:
        reason = failure_reason(output, task_id)
        raise StageFailed(stage, task_id, reason, data_missing=f"exited with {EXIT_DATA_UNAVAILABLE}" in output)
    return output


@task(name="download", retries=2, retry_delay_seconds=5, task_run_name="download@{task_id}")
def download_stage(task_id: str, root: str) -> str:
    return run_dvc_stage("download", task_id, root)


@task(name="stage", task_run_name="{stage}@{task_id}")
def dvc_stage(stage: str, task_id: str, root: str) -> str:
    return run_dvc_stage(stage, task_id, root)


def default_tasks(root: str) -> list[str]:
    return list(pipeline_tasks(Path(root) / "params.yaml"))


def _publish(summary: PipelineSummary, root: str) -> None:
    rows = []
    for t, m in summary.metrics.items():  # one column set for every task kind
        name = headline_metric(t, root)[0]
        rows.append({"task": t, "headline": name, "value": m.get(name),
                     "metrics": ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                          for k, v in m.items() if not isinstance(v, dict))})
    if rows:
        create_table_artifact(key="s2sflow-metrics", table=rows, description="Test-set metrics per task")
    notes = [f"- **{t}** skipped: {r}" for t, r in summary.skipped.items()]
    notes += [f"- **{t}** failed: {r}" for t, r in summary.failed.items()]
    create_markdown_artifact(key="s2sflow-run-summary", markdown="\n".join(
        ["# s2sflow pipeline", "", f"completed: {', '.join(summary.completed) or 'none'}", "", *notes]))


@flow(name="s2sflow-pipeline", log_prints=True)
def pipeline(tasks: list[str] | None = None, root: str = ".", download_retries: int = 2) -> dict:
    """Run download → split → tokenize → train → evaluate → export for each task, in order.

    ``tasks``: task ids (None: params.yaml's pipeline.tasks, where missing data means skip).
    ``root``: the project folder (holding dvc.yaml). Fails when an explicitly named task cannot run,
    or any task fails for a reason other than missing data."""
    logger = get_run_logger()
    root = str(Path(root).resolve())
    explicit = tasks is not None
    task_ids = list(tasks) if explicit else default_tasks(root)
    summary = PipelineSummary()
    for task_id in task_ids:
        try:
            download_stage.with_options(retries=download_retries)(task_id, root)
            for stage in STAGES[1:]:
                dvc_stage(stage, task_id, root)
        except StageFailed as err:
            if err.data_missing:
                summary.skipped[task_id] = err.reason
                logger.warning("skipping %s: %s", task_id, err.reason)
            else:
                summary.failed[task_id] = str(err)
                logger.error("%s failed: %s", task_id, err)
            continue
        summary.completed.append(task_id)
        metrics_file = Path(root) / "metrics" / f"{task_id}.json"
        if metrics_file.is_file():
            summary.metrics[task_id] = json.loads(metrics_file.read_text())
    _publish(summary, root)
    for task_id, reason in summary.skipped.items():
        print(f"skipped {task_id}: {reason}")
    if summary.failed or (explicit and summary.skipped):
        bad = {**summary.skipped, **summary.failed}
        raise RuntimeError(f"{len(bad)} task(s) could not run: " + "; ".join(f"{t}: {r}" for t, r in bad.items()))
    return {"completed": summary.completed, "skipped": summary.skipped, "metrics": summary.metrics}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", help="comma-separated task ids (default: params.yaml pipeline.tasks)")
    parser.add_argument("--root", default=".", help="project root (default: .)")
    parser.add_argument("--download-retries", type=int, default=2, help="retries of the download stage (default 2)")
    args = parser.parse_args(argv)
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else None
    state = pipeline(tasks=tasks, root=args.root, download_retries=args.download_retries, return_state=True)
    if state.is_completed():
        result = state.result()
        print("s2sflow: completed: " + (", ".join(result["completed"]) or "none"))
        for t, m in result["metrics"].items():
            print(f"  {t}: " + ", ".join(f"{k}={v}" for k, v in m.items() if not isinstance(v, dict)))
        for t, r in result["skipped"].items():
            print(f"s2sflow: skipped {t}: {r}")
        return 0
    print(f"s2sflow: pipeline failed: {state.message}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
