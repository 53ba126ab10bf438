"""Fan task chains out to Prefect workers on several machines, each in its own clone of the project.

    # once: a Prefect server every machine can reach, and the chain deployment on a process pool
    prefect server start --host 0.0.0.0                     # on the coordinator (UI on port 4200)
    export PREFECT_API_URL=http://<coordinator>:4200/api    # on every machine
    python -m flows.fanout deploy                           # pool 's2sflow-chains', deployment 's2sflow-chain/chains'

    # on each worker machine, in its own clone of the project (same git origin, same DVC remote):
    make chain-worker                                       # = S2SFLOW_CLONE=$PWD prefect worker start
                                                            #   --pool s2sflow-chains --limit 1

    # on the coordinator, in a checkout whose HEAD is on the git origin:
    python -m flows.fanout run --tasks mnist,topic          # every task of params.yaml without --tasks

No scheduler of our own: the coordinator flow (``s2sflow-fanout``) starts one run of the deployment
per task (`run_deployment`); Prefect hands each run to a free worker of the pool. A worker's run
(``s2sflow-chain``) checks out the coordinator's commit in the worker's clone (``$S2SFLOW_CLONE``),
runs the task's chain with the pipeline flow as `dvc repro --pull` per stage (inputs and stages
another machine already produced come from the DVC remote), and pushes its outputs and the run-cache
to the project's default DVC remote (`dvc push --run-cache`). When every chain has finished, the
coordinator runs the same stages in its own checkout, again with `dvc repro --pull`: DVC restores
download, split, tokenize, train and export from the run-cache the workers pushed (nothing trains
twice), so dvc.lock gets the same entries as a serial run and a later `dvc repro` runs nothing.

One stage re-runs on the coordinator: evaluate. Its reports (``reports/<task>/eval``) are outputs with
``cache: false`` that are not metrics or plots (so they stay in git, readable on the forge), and DVC
never saves such a stage to the run-cache (dvc/stage/__init__.py: ``no_cache_outs``). Evaluation is
deterministic and cheap next to training; the coordinator's metrics are then checked against the
worker's (a difference is an error: two machine types that compute differently).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.states import Failed, State

from flows.pipeline import checked_tasks, dvc_command, pipeline
from s2sflow.core.errors import S2SFlowError, run_main

CHAIN_FLOW = "s2sflow-chain"
DEFAULT_POOL = "s2sflow-chains"
DEFAULT_DEPLOYMENT = "chains"
CLONE_ENV = "S2SFLOW_CLONE"  # set where a worker starts: the folder of its clone
ENTRYPOINT = "flows/fanout.py:chain_worker"
# files a run changes: the coordinator's checkout may differ from its commit in these only
RUN_OUTPUTS = ("dvc.lock", "metrics/", "reports/")


def _git(args: list[str], root: Path) -> str:
    proc = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise S2SFlowError(f"git {' '.join(args)} in {root}: {last}")
    return proc.stdout.strip()


def _dvc(args: list[str], root: Path) -> subprocess.CompletedProcess:
    cmd, env = dvc_command(*args)
    return subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)


def default_remote(root: Path) -> str:
    """The project's default DVC remote, which workers push to and `dvc repro --pull` pulls from."""
    proc = _dvc(["remote", "default"], root)  # without one: "No default remote set", exit 1
    name = proc.stdout.strip() if proc.returncode == 0 else ""
    if not name:
        raise S2SFlowError(f"{root}: no default DVC remote; add one every machine can reach "
                           "(`dvc remote add -d store s3://bucket/path`) and commit .dvc/config")
    return name


def checked_commit(root: Path, origin: str) -> str:
    """HEAD of the coordinator's checkout, which every worker will run: its tracked files may differ
    from the commit only in a run's outputs, and the commit must be on ``origin`` (workers fetch it)."""
    commit = _git(["rev-parse", "HEAD"], root)
    changed = _git(["diff", "--name-only", "HEAD"], root).splitlines()  # tracked files, staged or not
    changed = [f for f in changed if not f.startswith(RUN_OUTPUTS)]
    if changed:
        raise S2SFlowError(f"{root}: uncommitted changes to {', '.join(changed[:5])}"
                           f"{' ...' if len(changed) > 5 else ''}; the workers run commit {commit[:12]}: "
                           f"commit and push them first")
    if origin not in _git(["remote"], root).split():
        raise S2SFlowError(f"{root}: no git remote '{origin}'; the workers clone and fetch the project from it "
                           f"(`git remote add {origin} <url>`, or --origin <name>)")
    _git(["fetch", "-q", origin], root)
    if not _git(["branch", "-r", "--contains", commit, "--list", f"{origin}/*"], root):
        raise S2SFlowError(f"{root}: commit {commit[:12]} is not on the git remote '{origin}', so the workers "
                           f"cannot check it out; `git push {origin} HEAD` first")
    return commit


@contextmanager
def clone_lock(root: Path):
    """One chain at a time in a clone (a worker started with ``--limit 1`` never asks for two)."""
    path = root / ".s2sflow" / "worker.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def push_uncached_run_outputs(root: Path, task_id: str, remote: str) -> tuple[int, int]:
    """Push the objects of the task's cache-false metrics and plots that its run-cache entries name.

    DVC saves a stage's ``cache: false`` metrics and plots into its cache with the run-cache entry, and
    a run-cache restore checks them out from there (treeverse/dvc#3778), but DVC 3's `push --run-cache`
    uploads the run records only and `dvc push` skips ``cache: false`` outputs: another machine would
    find the entry but not its metrics and plots, and re-run the stage (here: train, for its
    ``reports/<task>/training``). So the worker pushes the objects of the run-cache entries that
    match this task's dvc.lock entries with DVC's own calls (``stage_cache.get_used_objs``, which
    DVC 2's `push --run-cache` used, and ``cloud.push``). Returns (objects transferred, failed)."""
    import yaml
    from dvc.repo import Repo

    lock = yaml.safe_load((root / "dvc.lock").read_text(encoding="utf-8")) or {}
    wanted = [(e.get("cmd"), e.get("outs")) for name, e in (lock.get("stages") or {}).items()
              if name.endswith(f"@{task_id}")]
    with Repo(str(root)) as repo:
        entries = []
        for path in Path(repo.stage_cache.cache_dir).glob("*/*/*"):
            entry = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            if (entry.get("cmd"), entry.get("outs")) in wanted:
                entries.append((path.parent.name, path.name))
        objs = set().union(*repo.stage_cache.get_used_objs(entries).values())
        result = repo.cloud.push(objs, remote=remote)
    return len(result.transferred), len(result.failed)


def _failed(message: str) -> State:
    return Failed(message=message, data={"reason": message})


@flow(name=CHAIN_FLOW, log_prints=True, result_serializer="json")
def chain_worker(task: str, commit: str, origin: str = "origin") -> dict | State:
    """One task's chain in this worker's clone (``$S2SFLOW_CLONE``, else the working directory): check
    out ``commit`` from ``origin``, run the six stages with `dvc repro --pull`, push the outputs and the
    run-cache to the default DVC remote. Returns the task's metrics and where it ran."""
    logger = get_run_logger()
    root = Path(os.environ.get(CLONE_ENV) or os.getcwd()).resolve()
    if not (root / "dvc.yaml").is_file() or not (root / ".git").exists():
        return _failed(f"{root}: not a clone of an s2sflow project (set {CLONE_ENV} to the clone's folder "
                       "where the worker starts)")
    with clone_lock(root):
        try:
            _git(["fetch", "-q", origin], root)
            _git(["checkout", "-q", "--force", "--detach", commit], root)
            remote = default_remote(root)
        except S2SFlowError as err:
            return _failed(err.line())
        logger.info("%s: commit %s checked out in %s on %s", task, commit[:12], root, socket.gethostname())
        state = pipeline(tasks=[task], root=str(root), pull=True, return_state=True)
        if not state.is_completed():
            result = state.result(raise_on_failure=False)
            failed = result.get("failed", {}) if isinstance(result, dict) else {}
            return _failed(failed.get(task) or state.message or f"{task}: the chain failed")
        pushed = _dvc(["push", "--run-cache", "--with-deps", f"export@{task}"], root)
        if pushed.returncode != 0:
            last = ((pushed.stderr or pushed.stdout).strip().splitlines() or ["(no output)"])[-1]
            return _failed(f"s2sflow: {task}: dvc push to '{remote}' failed: {last}")
        summary = (pushed.stdout.strip().splitlines() or ["nothing to push"])[-1]
        logger.info("%s: dvc push --run-cache to '%s': %s", task, remote, summary)
        sent, failed = push_uncached_run_outputs(root, task, remote)
        if failed:
            return _failed(f"s2sflow: {task}: {failed} object(s) of its cache-false metrics and plots could not be "
                           f"pushed to '{remote}' (see the worker's log)")
        logger.info("%s: %d object(s) of cache-false metrics and plots pushed for the run-cache", task, sent)
    result = {"task": task, "commit": commit, "host": socket.gethostname(), "clone": str(root),
              "remote": remote, "metrics": state.result(raise_on_failure=False)["metrics"].get(task)}
    create_markdown_artifact(key=f"s2sflow-chain-{task}".replace("_", "-").lower(), markdown="\n".join([
        f"# chain@{task}", "", f"- commit `{commit}`", f"- clone `{root}` on `{result['host']}`",
        f"- pushed to DVC remote `{remote}`: {summary}", f"- metrics: `{json.dumps(result['metrics'])}`"]))
    return result


def _deployment_runs(name: str, task_ids: list[str], commit: str, origin: str) -> dict:
    from prefect.deployments import run_deployment

    return {t: run_deployment(name, parameters={"task": t, "commit": commit, "origin": origin}, timeout=0,
                              flow_run_name=f"chain@{t}", tags=["s2sflow"]) for t in task_ids}


def _wait(runs: dict, poll_seconds: float, timeout: float | None) -> dict:
    """Poll the chains' flow runs until each is final; log each state change. Returns task → FlowRun."""
    from prefect.client.orchestration import get_client

    logger = get_run_logger()
    seen: dict[str, str] = {}
    final: dict = {}
    deadline = None if timeout is None else time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while len(final) < len(runs):
            for task_id, flow_run in runs.items():
                if task_id in final:
                    continue
                current = client.read_flow_run(flow_run.id)
                state = current.state.type.value if current.state else "PENDING"
                if seen.get(task_id) != state:
                    seen[task_id] = state
                    logger.info("chain@%s: %s", task_id, state.lower())
                if current.state is not None and current.state.is_final():
                    final[task_id] = current
            if len(final) < len(runs):
                if deadline is not None and time.monotonic() > deadline:
                    waiting = [t for t in runs if t not in final]
                    raise S2SFlowError(f"chains still unfinished after {timeout:g} s: {', '.join(waiting)} "
                                       f"(are workers polling the pool? `make chain-worker`)")
                time.sleep(poll_seconds)
    return final


def _worker_metrics(client, flow_run) -> dict | None:
    """The metrics a worker reported in its chain artifact (None when it made none)."""
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    arts = client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(
        any_=[flow_run.id])))
    for art in arts:
        text = art.data if isinstance(art.data, str) else ""
        for line in text.splitlines():
            if line.startswith("- metrics: `"):
                return json.loads(line[len("- metrics: `"):-1])
    return None


@flow(name="s2sflow-fanout", log_prints=True, result_serializer="json")
def fanout(tasks: list[str] | None = None, root: str = ".", deployment: str = f"{CHAIN_FLOW}/{DEFAULT_DEPLOYMENT}",
           origin: str = "origin", poll_seconds: float = 2.0, timeout: float | None = None) -> dict | State:
    """Start one chain deployment run per task, wait for all, then bring the results into this
    checkout (`dvc repro --pull`: restored from the run-cache the workers pushed; see the module doc)."""
    from prefect.client.orchestration import get_client

    logger = get_run_logger()
    base = Path(root).resolve()
    try:
        task_ids = checked_tasks(tasks, str(base))
        commit = checked_commit(base, origin)
        remote = default_remote(base)
        logger.info("fanning out %d chain(s) of commit %s to '%s' (DVC remote '%s')", len(task_ids), commit[:12],
                    deployment, remote)
        runs = _deployment_runs(deployment, task_ids, commit, origin)
        final = _wait(runs, poll_seconds, timeout)
    except S2SFlowError as err:
        return Failed(message=err.line(), data={"failed": {"fanout": err.line()}})
    failed = {t: (fr.state.message or fr.state.type.value) for t, fr in final.items() if not fr.state.is_completed()}
    if failed:
        for t, reason in failed.items():
            logger.error("chain@%s failed on its worker: %s", t, reason)
        return Failed(message=f"{len(failed)} chain(s) failed on their workers: {', '.join(failed)}",
                      data={"failed": failed})
    with get_client(sync_client=True) as client:
        reported = {t: _worker_metrics(client, fr) for t, fr in final.items()}
    logger.info("all chains done; restoring their stages here from DVC remote '%s'", remote)
    state = pipeline(tasks=task_ids, root=str(base), pull=True, return_state=True)
    result = state.result(raise_on_failure=False)
    if not state.is_completed():
        return Failed(message=state.message, data=result if isinstance(result, dict) else {"failed": {}})
    differ = {t: "metrics here differ from the worker's (machines of different types?)"
              for t in task_ids if reported.get(t) is not None and result["metrics"].get(t) != reported[t]}
    if differ:
        return Failed(message=f"metrics differ from the workers' for {', '.join(differ)}",
                      data={**result, "failed": differ})
    return {**result, "commit": commit, "workers": {t: fr.id.hex for t, fr in final.items()}}


def job_variables(text: str | None) -> dict:
    """``--job-variables``: a JSON object (the pool type's job variables, e.g. a Docker pool's ``image``
    and ``env``); anything else is one line."""
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise S2SFlowError(f"--job-variables: not JSON ({err.msg} at character {err.pos}); give an object such as "
                           "'{\"env\": {\"S2SFLOW_CLONE\": \"/srv/s2sflow\"}}'") from None
    if not isinstance(value, dict):
        raise S2SFlowError(f"--job-variables: a JSON object is needed, not {type(value).__name__}")
    return value


def deploy(pool: str = DEFAULT_POOL, name: str = DEFAULT_DEPLOYMENT, variables: dict | None = None) -> str:
    """Create (or update) the chain deployment on a work pool (a process pool is created if missing; a
    Docker or Kubernetes pool you create first, see the README). Its one pull step moves a run into the
    worker's clone, ``{{ $S2SFLOW_CLONE }}``, read where the run starts (the worker's machine, or the
    container: set it in ``variables["env"]``)."""
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.utilities.callables import parameter_schema

    from flows.deploy import ensure_work_pool

    asyncio.run(ensure_work_pool(pool))
    with get_client(sync_client=True) as client:
        flow_id = client.create_flow_from_name(CHAIN_FLOW)
        deployment_id = client.create_deployment(
            flow_id=flow_id, name=name, work_pool_name=pool, entrypoint=ENTRYPOINT, tags=["s2sflow"],
            description="s2sflow: one task's chain in a worker's clone (flows/fanout.py)",
            pull_steps=[{"prefect.deployments.steps.set_working_directory": {"directory": "{{ $" + CLONE_ENV + " }}"}}],
            parameter_openapi_schema=parameter_schema(chain_worker).model_dump_for_openapi(),
            enforce_parameter_schema=True, job_variables=variables or {})
    print(f"deployment '{CHAIN_FLOW}/{name}' ({deployment_id}) on pool '{pool}'; start a worker in each clone "
          f"with `{CLONE_ENV}=$PWD prefect worker start --pool {pool} --limit 1` (or `make chain-worker`)")
    return str(deployment_id)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    dep = sub.add_parser("deploy", help="create the chain deployment (needs PREFECT_API_URL: a real server)")
    dep.add_argument("--pool", default=DEFAULT_POOL,
                     help=f"process work pool (created if missing; default {DEFAULT_POOL})")
    dep.add_argument("--name", default=DEFAULT_DEPLOYMENT, help=f"deployment name (default {DEFAULT_DEPLOYMENT})")
    dep.add_argument("--job-variables", metavar="JSON",
                     help="the pool's job variables as a JSON object, e.g. for a Docker pool "
                          "'{\"image\": \"reg/s2sflow:tag\", \"env\": {\"S2SFLOW_CLONE\": \"/srv/s2sflow\"}}'")
    go = sub.add_parser("run", help="fan the chains out to the pool's workers and bring the results back here")
    go.add_argument("--tasks", help="comma-separated task ids (default: params.yaml pipeline.tasks)")
    go.add_argument("--root", default=".", help="the coordinator's checkout (default: .)")
    go.add_argument("--deployment", default=f"{CHAIN_FLOW}/{DEFAULT_DEPLOYMENT}",
                    help=f"the chain deployment (default {CHAIN_FLOW}/{DEFAULT_DEPLOYMENT})")
    go.add_argument("--origin", default="origin", help="the git remote the workers fetch from (default origin)")
    go.add_argument("--timeout", type=float, default=None,
                    help="seconds to wait for the chains (default: no limit)")
    args = parser.parse_args(argv)
    if not os.environ.get("PREFECT_API_URL"):
        print("s2sflow: PREFECT_API_URL is not set: the workers need a Prefect server they all reach "
              "(`prefect server start --host 0.0.0.0`, then export PREFECT_API_URL=http://<host>:4200/api)",
              file=sys.stderr)
        return 2
    if args.command == "deploy":
        return run_main(lambda: deploy(args.pool, args.name, job_variables(args.job_variables))) or 0
    if args.timeout is not None and args.timeout <= 0:
        print(f"s2sflow: --timeout {args.timeout:g}: must be more than 0 seconds", file=sys.stderr)
        return 2
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks is not None else None
    root = Path(args.root).resolve()
    # every check that needs no server, before a flow run starts: one line each
    rc = run_main(lambda: (checked_tasks(tasks, str(root)), default_remote(root), checked_commit(root, args.origin)))
    if rc:
        return rc
    state = fanout(tasks=tasks, root=str(root), deployment=args.deployment, origin=args.origin,
                   timeout=args.timeout, return_state=True)
    result = state.result(raise_on_failure=False)
    if state.is_completed():
        print(f"s2sflow: fan-out of {result['commit'][:12]} completed: " + ", ".join(result["completed"]))
        for t, m in result["metrics"].items():
            print(f"  {t}: " + ", ".join(f"{k}={v}" for k, v in m.items() if not isinstance(v, dict)))
        return 0
    failed = result.get("failed") if isinstance(result, dict) else None
    for t, reason in (failed or {"fanout": state.message}).items():
        print(reason if str(reason).startswith("s2sflow: ") else f"s2sflow: {t}: {reason}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
