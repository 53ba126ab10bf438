"""The pipeline flow: run the six DVC stages of each chosen task, each task's chain in order.

    python -m flows.pipeline                 # every task in params.yaml's pipeline section
    python -m flows.pipeline --tasks mnist   # just these; a task that cannot run is an error
    python -m flows.pipeline --max-parallel 2 --max-trainings 1   # two task chains at once

Each task's chain (download → ... → export) is one Prefect task submitted to a ThreadPoolTaskRunner:
chains run side by side, the stages inside a chain stay in order, DVC runs with ``--wait-for-lock`` (the
repo lock is taken only around reading and writing dvc.lock), and a Prefect global concurrency limit of
the run's own (``s2sflow-train-<flow run id>``, ``--max-trainings``, default CPU cores / 2 since a
training uses two threads) caps how many trainings run at once so threads are not oversubscribed. By
default two more chains than trainings run (``--max-parallel``): their downloads, splits, tokenizing,
evaluation and export run beside the trainings at the lowest CPU priority (`nice -n 19`) while a
chain of the run is training or waiting for a training slot, taking only the CPU time a training
leaves idle, so on 2 cores `make run` is one training at a time with the other stages hidden behind
it; with no training running or waiting they run at normal priority (a niced stage beside other busy
work, not a training, would only wait). ``--max-parallel 1``: one chain after the other, with
progress bars. The
entries of dvc.lock are the same as a serial run's (a lock built from nothing lists them in the order
they finished).

Every stage that runs goes through `dvc repro <stage>@<task>`, so dvc.lock records lineage however a
run starts. The flow first asks DVC once which stages are stale (`dvc status`): a task's stages before
its first stale one are marked "up to date" in Prefect without starting DVC, so a no-op run costs
little more than a no-op `dvc repro`. Prefect adds retries, logs, a metrics-table artifact and
schedules (see flows/deploy.py). Each run records every stage's wall time in
.s2sflow/runs/<time>.json (`python benchmarks/run_times.py` prints the table).
Only a transient failure is retried: a download whose URL source could not be reached. A params
error, an unknown task or a file missing from the mirror fails at once. A task whose data no source
can supply is skipped with the reason when it comes from the default list; named explicitly, it
fails the run. Failures print one line per task (the stage's own error line), no traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.concurrency.sync import concurrency
from prefect.states import Completed, Failed, State
from prefect.task_runners import ThreadPoolTaskRunner

from s2sflow.core.errors import EXIT_DATA_UNAVAILABLE, S2SFlowError, run_main
from s2sflow.core.fsutil import write_json
from s2sflow.core.params import STAGES, stage_name
from s2sflow.core.stages import headline_metric, pipeline_tasks


class StageFailed(Exception):
    def __init__(self, stage: str, task_id: str, reason: str, data_missing: bool):
        super().__init__(f"{stage}@{task_id}: {reason}")
        self.reason, self.data_missing = reason, data_missing

    @property
    def transient(self) -> bool:
        """Worth a retry: no source could supply the data and a URL was among those tried (the network
        may be back); a params error or a file missing from a mirror or folder will not change."""
        return self.data_missing and "://" in self.reason

    def state(self) -> State:
        """A Failed state carrying the reason (a task returns it: no exception, so no traceback)."""
        return Failed(message=self.reason, data={"reason": self.reason, "data_missing": self.data_missing,
                                                 "transient": self.transient})


def retry_if_transient(task, task_run, state: State) -> bool:
    """Prefect's retry condition: retry a stage only on a transient failure (see StageFailed.transient)."""
    return isinstance(state.data, dict) and bool(state.data.get("transient"))


class _NoEmptyTraceback(logging.Filter):
    """Prefect logs an exhausted retry with ``exc_info=True`` even when the task returned a Failed
    state (no exception), which prints a stray ``NoneType: None``; drop that empty traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.exc_info, tuple) and record.exc_info[0] is None:
            record.exc_info = None
        return True


logging.getLogger("prefect.task_runs").addFilter(_NoEmptyTraceback())


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


class _Echo:
    """Streams a stage's output to this terminal. Serial runs pass the bytes through (progress bars
    included); with chains side by side, whole lines only, each prefixed with ``stage@task |`` (a
    progress bar's carriage-return updates are dropped: the Prefect log keeps the summary lines)."""

    _lock = threading.Lock()

    def __init__(self, label: str | None):
        self.label, self.pending = label, b""
        self.out = getattr(sys.stderr, "buffer", None)

    def write(self, block: bytes) -> None:
        if self.out is None:
            return
        if self.label is None:
            with self._lock:
                self.out.write(block)
                self.out.flush()
            return
        *lines, self.pending = (self.pending + block).split(b"\n")
        self._emit(lines)

    def close(self) -> None:
        if self.label is not None and self.pending:
            self._emit([self.pending])

    def _emit(self, lines: list[bytes]) -> None:
        text = [line.rsplit(b"\r", 1)[-1].strip() for line in lines]
        text = [line for line in text if line]
        if text and self.out is not None:
            with self._lock:
                self.out.write(b"".join(self.label.encode() + b" | " + line + b"\n" for line in text))
                self.out.flush()


def dvc_command(*args: str) -> tuple[list[str], dict[str, str]]:
    """The command line of DVC (this interpreter's) with ``args``, and its environment: analytics off, and
    this interpreter's folder first on PATH (DVC's queue workers start as `dvc ...` from PATH). Every
    DVC call of the flows goes through here."""
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return [sys.executable, "-m", "dvc", *args], {**os.environ, "DVC_NO_ANALYTICS": "1", "PATH": path}


NICENESS = 19  # CPU priority of the stages that run beside a training (see stage_command)


class _Trainings:
    """How many chains of this process are at their train stage (training, or waiting for a slot):
    a stage of another chain yields the CPU (``nice``) only while one is, since a niced stage beside
    busy work that is not a training (another program, a test) would only wait."""

    def __init__(self) -> None:
        self._count = 0
        self._lock = threading.Lock()

    @contextmanager
    def at_train(self):
        with self._lock:
            self._count += 1
        try:
            yield
        finally:
            with self._lock:
                self._count -= 1

    def busy(self) -> bool:
        with self._lock:
            return self._count > 0


TRAININGS = _Trainings()


def stage_command(stage: str, task_id: str, pull: bool = False, yielding: bool = False) -> tuple[list[str], dict]:
    """The command line and environment of `dvc --wait-for-lock repro [--pull] <stage>@<task>`.
    ``yielding``: run it at the lowest CPU priority (`nice -n 19`; DVC's stage command inherits it), so
    a stage beside a training takes only the CPU time the training leaves idle. On 2 cores a busy
    single-threaded process at normal priority cuts a 2-thread bf16 training step rate to about a
    quarter (OpenMP threads wait on each other); niced, the training keeps its rate (measured with a
    256-1024-256 MLP: 42.6 steps/s alone, 11.6 beside a busy loop, 50.8 beside the same loop niced)."""
    cmd, env = dvc_command("--wait-for-lock", "repro", *(["--pull"] if pull else []), stage_name(stage, task_id))
    if yielding and shutil.which("nice"):
        cmd = ["nice", "-n", str(NICENESS), *cmd]
    return cmd, env


def run_dvc_stage(stage: str, task_id: str, root: str, prefixed: bool = False, pull: bool = False,
                  yielding: bool = False) -> str:
    """`dvc --wait-for-lock repro <stage>@<task>` in ``root`` (``pull``: with ``--pull``, so DVC first
    fetches the default remote's run-cache and missing inputs, and restores a stage it has a run-cache
    entry for instead of running it; ``yielding``: at the lowest CPU priority, see stage_command). Its
    output streams to this terminal as it comes (see _Echo); its summary lines go to the Prefect log;
    failures raise StageFailed."""
    logger = get_run_logger()
    cmd, env = stage_command(stage, task_id, pull, yielding)
    logger.info("$ %sdvc repro %s%s", f"nice -n {NICENESS} " if cmd[0] == "nice" else "", "--pull " if pull else "",
                stage_name(stage, task_id))
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    chunks, echo = [], _Echo(stage_name(stage, task_id) if prefixed else None)
    while block := os.read(proc.stdout.fileno(), 1 << 14):
        chunks.append(block)
        echo.write(block)
    echo.close()
    proc.wait()
    output = b"".join(chunks).decode("utf-8", "replace")
    for line in output.replace("\r", "\n").splitlines():
        if line.startswith(("s2sflow:", "Running stage", "Stage ", "ERROR", "WARNING")):
            logger.info(line.strip())
    if proc.returncode != 0:
        reason = failure_reason(output, task_id)
        raise StageFailed(stage, task_id, reason, data_missing=f"exited with {EXIT_DATA_UNAVAILABLE}" in output)
    return output


_STATUS: dict[str, subprocess.Popen] = {}  # `dvc status` started early by main(), per project root


def start_status(root: str) -> subprocess.Popen:
    """Start `dvc status --json` in ``root`` (main() does so before Prefect's server starts, so the two
    overlap); stale_stages() collects it."""
    cmd, env = dvc_command("status", "--json")
    return subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def stale_stages(root: str) -> set[str] | None:
    """The stages `dvc status` reports as changed (their deps, params or outs differ from dvc.lock, or
    they have no lock entry), asked once for the whole project; None when DVC cannot answer (then
    every stage goes through `dvc repro`, which reports the problem)."""
    proc = _STATUS.pop(root, None) or start_status(root)
    stdout, _ = proc.communicate()
    try:
        status = json.loads(stdout or "null")
    except json.JSONDecodeError:
        return None
    return set(status) if proc.returncode == 0 and isinstance(status, dict) else None


def first_stale(task_id: str, stale: set[str] | None) -> int:
    """Index in STAGES of the task's first stage that must go through `dvc repro` (every later stage
    goes too: its deps may change when the stale one runs); len(STAGES) when all are up to date."""
    if stale is None:
        return 0
    return next((i for i, stage in enumerate(STAGES) if stage_name(stage, task_id) in stale), len(STAGES))


def restored(output: str, stage: str, task_id: str) -> bool:
    """Whether DVC restored the stage's outputs from its run-cache instead of running its command."""
    return f"Stage '{stage_name(stage, task_id)}' is cached - skipping run" in output


def _stage_state(stage: str, task_id: str, root: str, prefixed: bool, pull: bool, yielding: bool = False) -> State:
    try:
        return Completed(data=run_dvc_stage(stage, task_id, root, prefixed, pull, yielding))
    except StageFailed as err:
        return err.state()


@task(name="download", retries=2, retry_delay_seconds=5, retry_condition_fn=retry_if_transient,
      task_run_name="download@{task_id}", result_serializer="json")
def download_stage(task_id: str, root: str, prefixed: bool = False, pull: bool = False,
                   yielding: bool = False) -> State:
    return _stage_state("download", task_id, root, prefixed, pull, yielding)


@task(name="stage", task_run_name="{stage}@{task_id}", result_serializer="json")
def dvc_stage(stage: str, task_id: str, root: str, prefixed: bool = False, pull: bool = False,
              yielding: bool = False) -> State:
    return _stage_state(stage, task_id, root, prefixed, pull, yielding)


@task(name="up to date", task_run_name="{stage}@{task_id}", result_serializer="json")
def up_to_date_stage(stage: str, task_id: str) -> State:
    """A stage `dvc status` found unchanged: recorded in Prefect, DVC not started."""
    return Completed(message="up to date (dvc status)")


TRAIN_LIMIT = "s2sflow-train"  # the Prefect global concurrency limit every training takes a slot of


def default_trainings(cores: int | None = None) -> int:
    """Trainings at once by default: one per two CPU cores (a training stage uses two threads)."""
    return max(1, (cores if cores is not None else os.cpu_count() or 1) // 2)


def default_parallel(cores: int | None = None) -> int:
    """Chains side by side by default: the trainings, plus two chains whose other stages (download,
    split, tokenize before a training; evaluate and export after one) run beside them at the lowest
    CPU priority, so the cores never wait for a stage that needs no training slot."""
    return default_trainings(cores) + 2


def train_limit_name() -> str:
    """This flow run's own training limit, ``s2sflow-train-<flow run id>``: a run that is killed while
    a training holds a slot leaves that slot taken for good (Prefect frees a slot only when its holder
    leaves the `concurrency` block), so a limit shared by every run would make the next run wait
    forever for a training slot nobody holds."""
    from prefect.runtime import flow_run

    return f"{TRAIN_LIMIT}-{flow_run.id or 'local'}"


def set_train_limit(name: str, limit: int) -> None:
    """Create or update the global concurrency limit ``name`` on the flow's Prefect server."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(name, limit)


def delete_train_limit(name: str) -> None:
    """Remove the run's training limit when the run ends (a killed run leaves its own behind, unused)."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.delete_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            pass


@dataclass
class ChainRun:
    """One task's chain: its stages' rows for the run record, and its last state."""
    rows: list[dict] = field(default_factory=list)
    state: State | None = None


@task(name="chain", task_run_name="chain@{task_id}", result_serializer="json", cache_policy=NO_CACHE)
def task_chain(task_id: str, root: str, begin: int, download_retries: int, limit: str | None, prefixed: bool,
               t0: float, on_stage=None, pull: bool = False) -> State:
    """Run one task's six stages in order (stages before ``begin`` are marked up to date); the first
    failure ends the chain and is its state. ``limit``: the run's training limit (see train_limit_name):
    training waits for a slot of it, and the other stages yield the CPU while a chain trains or waits to
    (chains side by side; see _Trainings);
    ``pull``: `dvc repro --pull` (see run_dvc_stage)."""
    state, limited = None, limit is not None
    for i, stage in enumerate(STAGES):
        if state is not None and state.is_failed():
            break
        t = time.perf_counter()
        if i < begin:
            state = up_to_date_stage(stage, task_id, return_state=True)
        elif stage == "download":
            state = download_stage.with_options(retries=download_retries)(task_id, root, prefixed, pull,
                                                                          limited and TRAININGS.busy(),
                                                                          return_state=True)
        elif stage == "train" and limited:
            with TRAININGS.at_train(), concurrency(limit, occupy=1, strict=True):
                t = time.perf_counter()  # a wait for the training slot is not the stage's time
                state = dvc_stage(stage, task_id, root, prefixed, pull, False, return_state=True)
        else:
            state = dvc_stage(stage, task_id, root, prefixed, pull, limited and TRAININGS.busy(), return_state=True)
        if on_stage is not None:
            output = state.result(raise_on_failure=False) if i >= begin and state.is_completed() else ""
            on_stage(task_id, {"stage": stage, "task": task_id, "seconds": round(time.perf_counter() - t, 3),
                               "start": round(t - t0, 3), "ran": i >= begin,
                               "restored": isinstance(output, str) and restored(output, stage, task_id),
                               "state": state.type.value.capitalize()})
    if state.is_failed():  # a new state carrying the stage's reason (a stage's own state would be read
        failure = state.result(raise_on_failure=False)  # by Prefect as one more upstream state)
        failure = failure if isinstance(failure, dict) else {"reason": state.message}
        return Failed(message=failure["reason"], data=failure)
    return Completed(message=f"{task_id}: {len(STAGES) - begin} stage(s) run by DVC")


def _record_times(root: str, started: str, seconds: float, times: list[dict], parallel: int = 1) -> Path:
    """Write this run's stage times to .s2sflow/runs/<started>.json (temp file, then rename)."""
    target = Path(root) / ".s2sflow" / "runs" / f"{started}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    write_json(target, {"started": started, "seconds": round(seconds, 3), "max_parallel": parallel,
                        "stages": times})
    return target


def checked_tasks(tasks: list[str] | None, root: str) -> list[str]:
    """The tasks to run (None: all of params.yaml's pipeline.tasks); an unknown name, or a params.yaml
    that cannot be read, is one S2SFlowError line before anything starts."""
    known = list(pipeline_tasks(Path(root) / "params.yaml"))
    if tasks is None:
        return known
    unknown = [t for t in tasks if t not in known]
    if unknown or not tasks:
        raise S2SFlowError(f"--tasks {','.join(unknown) or '(empty)'}: not in params.yaml pipeline.tasks (known: "
                           f"{', '.join(known)}); add `<task>: <kind>` there or pick a known task")
    return list(tasks)


def _results_page(root: str, refresh: bool) -> str:
    """The results page (s2sflow.site), rebuilt when a stage ran or it is missing (a no-op run keeps it:
    the text baselines it computes would cost more than the run), as a line for the run's artifact."""
    from s2sflow.site import build_site

    page = Path(root).resolve() / "reports" / "site" / "index.html"
    try:
        if refresh or not page.is_file():
            build_site(root, page)
    except S2SFlowError as err:
        return f"results page not written: {err}"
    return f"results page: [{page}]({page.as_uri()}) (open it in a browser; `s2sflow report` rebuilds it)"


def _publish(summary: PipelineSummary, root: str, refresh_site: bool = True) -> None:
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
        ["# s2sflow pipeline", "", f"completed: {', '.join(summary.completed) or 'none'}", "", *notes, "",
         _results_page(root, refresh_site)]))


@flow(name="s2sflow-pipeline", log_prints=True, result_serializer="json",
      task_runner=ThreadPoolTaskRunner(max_workers=default_parallel()))
def pipeline(tasks: list[str] | None = None, root: str = ".", download_retries: int = 2,
             max_parallel: int | None = None, max_trainings: int | None = None, pull: bool = False) -> dict | State:
    """Run download → split → tokenize → train → evaluate → export for each task, each task's chain
    in order, up to ``max_parallel`` chains at once (see the module doc; None: CPU cores / 2).

    ``tasks``: task ids (None: params.yaml's pipeline.tasks, where missing data means skip).
    ``root``: the project folder (holding dvc.yaml). ``max_trainings``: trainings at once with chains
    side by side (sets the ``s2sflow-train`` concurrency limit; None: CPU cores / 2). ``pull``: stages
    run as `dvc repro --pull` (restored from the default DVC remote's run-cache where it has them,
    as the fan-out flow's workers and coordinator do: flows/fanout.py). Ends Failed (no
    traceback; the returned state's data holds ``failed``: task → reason) when an explicitly named
    task cannot run, or any task fails for a reason other than missing data."""
    logger = get_run_logger()
    root = str(Path(root).resolve())
    explicit = tasks is not None
    try:
        task_ids = checked_tasks(tasks, root)
    except S2SFlowError as err:
        return Failed(message=err.line(), data={"failed": {"pipeline": err.line()}, "completed": [], "skipped": {}})
    parallel = min(len(task_ids), max_parallel or (max_trainings or default_trainings()) + 2)
    summary = PipelineSummary()
    started = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    t0 = time.perf_counter()
    stale = stale_stages(root)
    status_row = {"stage": "dvc status", "task": None, "seconds": round(time.perf_counter() - t0, 3), "ran": True,
                  "state": "Completed" if stale is not None else "Failed"}
    ours = sorted(stage_name(s, t) for t in task_ids for s in STAGES if stale and stage_name(s, t) in stale)
    logger.info("dvc status: %s", "no answer; every stage goes through dvc repro" if stale is None else
                f"{len(ours)} stale stage(s)" + (f": {', '.join(ours)}" if ours else ""))
    limit = train_limit_name() if parallel > 1 else None
    if limit is not None:
        trainings = max_trainings or default_trainings()
        set_train_limit(limit, trainings)
        logger.info("%d task chains at once, at most %d training(s) at once (concurrency limit %s)",
                    parallel, trainings, limit)
    chains = {t: ChainRun() for t in task_ids}
    record_lock = threading.Lock()

    def on_stage(task_id: str, row: dict) -> None:
        with record_lock:
            chains[task_id].rows.append(row)
            rows = [status_row] + [r for c in chains.values() for r in c.rows]  # task order, then stage order
            _record_times(root, started, time.perf_counter() - t0, rows, parallel)

    futures = {}
    for task_id in task_ids:
        args = (task_id, root, first_stale(task_id, stale), download_retries, limit, parallel > 1, t0, on_stage,
                pull)
        if parallel > 1:
            futures[task_id] = task_chain.submit(*args)
        else:  # one chain at a time: each waits for the one before, as a plain loop
            chains[task_id].state = task_chain(*args, return_state=True)
    for task_id, future in futures.items():
        future.wait()
        chains[task_id].state = future.state
    if limit is not None:
        delete_train_limit(limit)
    with record_lock:
        _record_times(root, started, time.perf_counter() - t0,
                      [status_row] + [r for c in chains.values() for r in c.rows], parallel)
    for task_id, chain in chains.items():
        state = chain.state
        if state.is_failed():
            failure = state.result(raise_on_failure=False)
            failure = failure if isinstance(failure, dict) else {"reason": state.message}
            if failure.get("data_missing"):
                summary.skipped[task_id] = failure["reason"]
                logger.warning("skipping %s: %s", task_id, failure["reason"])
            else:
                summary.failed[task_id] = failure["reason"]
                logger.error("%s failed: %s", task_id, failure["reason"])
            continue
        summary.completed.append(task_id)
        metrics_file = Path(root) / "metrics" / f"{task_id}.json"
        if metrics_file.is_file():
            summary.metrics[task_id] = json.loads(metrics_file.read_text())
    ran = any(row.get("ran") for c in chains.values() for row in c.rows)
    _publish(summary, root, refresh_site=ran)
    for task_id, reason in summary.skipped.items():
        print(f"skipped {task_id}: {reason}")
    result = {"completed": summary.completed, "skipped": summary.skipped, "metrics": summary.metrics}
    if summary.failed or (explicit and summary.skipped):
        bad = {**summary.skipped, **summary.failed}
        return Failed(message=f"{len(bad)} task(s) could not run: {', '.join(bad)}", data={**result, "failed": bad})
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", help="comma-separated task ids (default: params.yaml pipeline.tasks)")
    parser.add_argument("--root", default=".", help="project root (default: .)")
    parser.add_argument("--download-retries", type=int, default=2,
                        help="retries of a download that failed for a transient reason (default 2)")
    parser.add_argument("--max-parallel", type=int, default=None,
                        help=f"task chains run at once (default: the trainings at once + 2 = {default_parallel()}: "
                             "their other stages run beside the trainings at the lowest CPU priority); the stages "
                             "of one chain always run in order; 1: one chain at a time, with progress bars")
    parser.add_argument("--pull", action="store_true",
                        help="run each stage as `dvc repro --pull`: fetch missing inputs and the default DVC "
                             "remote's run-cache first, and restore a stage from it instead of running it")
    parser.add_argument("--max-trainings", type=int, default=None,
                        help=f"trainings at once when chains run side by side (default: CPU cores / 2 = "
                             f"{default_trainings()}), via the run's Prefect concurrency limit "
                             f"'{TRAIN_LIMIT}-<flow run id>'")
    args = parser.parse_args(argv)
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks is not None else None
    if args.download_retries < 0:
        parser.error(f"--download-retries {args.download_retries}: must be 0 or more")
    for flag, value in (("--max-parallel", args.max_parallel), ("--max-trainings", args.max_trainings)):
        if value is not None and not 1 <= value <= 64:
            parser.error(f"{flag} {value}: must be between 1 and 64")
    run_main(lambda: checked_tasks(tasks, args.root))  # bad names or params: one line, before Prefect starts
    root = str(Path(args.root).resolve())
    _STATUS[root] = start_status(root)  # runs while Prefect's temporary server starts
    workers = args.max_parallel or (args.max_trainings or default_trainings()) + 2
    flow_ = pipeline.with_options(task_runner=ThreadPoolTaskRunner(max_workers=workers))
    state = flow_(tasks=tasks, root=args.root, download_retries=args.download_retries,
                  max_parallel=args.max_parallel, max_trainings=args.max_trainings, pull=args.pull,
                  return_state=True)
    result = state.result(raise_on_failure=False)
    if state.is_completed():
        print("s2sflow: completed: " + (", ".join(result["completed"]) or "none"))
        for t, m in result["metrics"].items():
            print(f"  {t}: " + ", ".join(f"{k}={v}" for k, v in m.items() if not isinstance(v, dict)))
        for t, r in result["skipped"].items():
            print(f"s2sflow: skipped {t}: {r}")
        return 0
    if isinstance(result, dict) and result.get("failed"):
        if result.get("completed"):
            print("s2sflow: completed: " + ", ".join(result["completed"]), file=sys.stderr)
        for t, reason in result["failed"].items():  # the stage's own line: "s2sflow: <task>: ..."
            print(reason if reason.startswith("s2sflow: ") else f"s2sflow: {t}: {reason}", file=sys.stderr)
    else:
        print(f"s2sflow: pipeline failed: {state.message}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
