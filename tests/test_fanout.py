"""Fan-out to several machines, played on this one: a real `prefect server`, a bare git repository as
the origin, a local-folder DVC remote, two Prefect process workers each in its own clone of the
project, and a coordinator checkout that fans the task chains out (flows/fanout.py). Each worker
runs one chain and pushes its outputs and run-cache; the coordinator restores them (nothing trains
twice) and ends with the dvc.lock of a serial `dvc repro` of the same code, params and data."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import make_project, prefect_server, prefect_test_env, run, stop_group, with_twin
from s2sflow.core.params import STAGES

pytestmark = pytest.mark.e2e

GIT = ["git", "-c", "user.email=t@example.com", "-c", "user.name=test"]
POOL = "s2sflow-chains"
WORKERS = """
import asyncio, json
from prefect.client.orchestration import get_client
async def main():
    async with get_client() as c:
        print(json.dumps(sorted(w.name for w in await c.read_workers_for_work_pool("s2sflow-chains"))))
asyncio.run(main())
"""


def _coordinator(tmp_path: Path, mirror: Path, env: dict) -> Path:
    """A tiny two-task project (mnist, twin) with a default DVC remote committed, pushed to a bare
    origin repository."""
    project = make_project(tmp_path / "coordinator", mirror, edit=with_twin)
    run([sys.executable, "-m", "dvc", "remote", "add", "-d", "store", str(tmp_path / "dvc-store")], project, env)
    subprocess.run(["git", "add", ".dvc/config"], cwd=project, check=True)
    subprocess.run(GIT + ["commit", "-qm", "DVC remote"], cwd=project, check=True)
    subprocess.run(["git", "clone", "-q", "--bare", str(project), str(tmp_path / "origin.git")], check=True)
    subprocess.run(["git", "remote", "add", "origin", str(tmp_path / "origin.git")], cwd=project, check=True)
    subprocess.run(["git", "fetch", "-q", "origin"], cwd=project, check=True)
    return project


def _fanout(project: Path, env: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "flows.fanout", *args], project, env, check=check, timeout=900)


def _start_worker(clone: Path, env: dict) -> subprocess.Popen:
    wenv = {**env, "S2SFLOW_CLONE": str(clone), "PYTHONPATH": str(clone), "PREFECT_WORKER_QUERY_SECONDS": "1"}
    log = open(clone.parent / f"{clone.name}.log", "w")
    return subprocess.Popen([sys.executable, "-m", "prefect", "worker", "start", "--pool", POOL, "--limit", "1",
                             "--name", clone.name], cwd=clone, env=wenv, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def _chains_run(clone: Path) -> set[str]:
    """The tasks whose stages ran (or were restored) in a clone, from its run records."""
    return {row["task"] for rec in (clone / ".s2sflow/runs").glob("*.json")
            for row in json.loads(rec.read_text())["stages"] if row.get("task")}


def test_two_workers_in_two_clones_run_the_chains_and_the_coordinator_restores_them(
        tmp_path, tiny_mirror, env, built_project):
    penv = prefect_test_env(env, tmp_path / "prefect-home")
    project = _coordinator(tmp_path, tiny_mirror, penv)
    clones = [tmp_path / "worker-a", tmp_path / "worker-b"]
    for clone in clones:
        subprocess.run(["git", "clone", "-q", str(tmp_path / "origin.git"), str(clone)], check=True)
    with prefect_server(penv, tmp_path) as api:
        penv["PREFECT_API_URL"] = api
        deployed = _fanout(project, penv, "deploy").stdout
        assert "deployment 's2sflow-chain/chains'" in deployed and f"on pool '{POOL}'" in deployed, deployed
        workers = [_start_worker(clone, penv) for clone in clones]
        try:
            deadline = time.time() + 120
            while json.loads(run([sys.executable, "-c", WORKERS], project, penv).stdout) != ["worker-a", "worker-b"]:
                assert time.time() < deadline, "the two workers did not register with the pool"
                time.sleep(1)
            # the coordinator has no data mirror: whatever it gets, it gets from the DVC remote
            coordinator_env = {k: v for k, v in penv.items() if k != "S2SFLOW_DATA_MIRROR"}
            proc = _fanout(project, coordinator_env, "run", "--tasks", "mnist,twin", "--timeout", "600", check=False)
        finally:
            for worker in workers:
                stop_group(worker)
    logs = "\n".join((tmp_path / f"{c.name}.log").read_text() for c in clones)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:] + "\n--- workers ---\n" + logs[-4000:]
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=project, capture_output=True, text=True).stdout.strip()
    assert f"s2sflow: fan-out of {commit[:12]} completed: mnist, twin" in proc.stdout, out[-3000:]
    assert "Traceback" not in out

    # each worker ran one chain, at the coordinator's commit, and trained there
    ran = [_chains_run(clone) for clone in clones]
    assert sorted(ran, key=sorted) == [{"mnist"}, {"twin"}], ran
    for clone in clones:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=clone, capture_output=True, text=True).stdout
        assert head.strip() == commit
        task = next(iter(_chains_run(clone)))
        assert (clone / f"models/{task}/model.safetensors").is_file()

    # the coordinator trained nothing: every stage but evaluate came from the run-cache the workers pushed
    for task in ("mnist", "twin"):
        for stage in ("download", "split", "tokenize", "train", "export"):
            assert f"Stage '{stage}@{task}' is cached - skipping run" in out, (stage, task, out[-3000:])
        assert f"Running stage 'evaluate@{task}'" in out  # reports/<task>/eval: cache false, not run-cacheable
        assert f"Running stage 'train@{task}'" not in out
    record = json.loads(max((project / ".s2sflow/runs").glob("*.json")).read_text())
    rows = {(r["task"], r["stage"]): r for r in record["stages"] if r.get("task")}
    assert {k: r["restored"] for k, r in rows.items()} == {(t, s): s != "evaluate" for t in ("mnist", "twin")
                                                           for s in STAGES}

    # the lock of a serial run: the same entries as built_project's `dvc repro` of the same code and data
    lock = yaml.safe_load((project / "dvc.lock").read_text())["stages"]
    serial = yaml.safe_load((built_project / "dvc.lock").read_text())["stages"]
    assert sorted(lock) == sorted(f"{s}@{t}" for t in ("mnist", "twin") for s in STAGES)
    for s in ("download", "split", "tokenize", "train", "evaluate"):
        assert lock[f"{s}@mnist"] == serial[f"{s}@mnist"], s
    export, serial_export = dict(lock["export@mnist"]), dict(serial["export@mnist"])
    assert export.pop("outs") != serial_export.pop("outs") and export == serial_export  # the card's git commit
    card = json.loads((project / "exports/mnist/model_card.json").read_text())
    assert card["git"]["commit"] == commit  # written on a worker, at the coordinator's commit
    for name in ("metrics/mnist.json", "models/mnist/model.safetensors", "exports/mnist/model.onnx"):
        assert (project / name).read_bytes() == (built_project / name).read_bytes(), name
    assert (project / "models/twin/model.safetensors").read_bytes() == (project / "models/mnist/model.safetensors"
                                                                         ).read_bytes()
    bare = {k: v for k, v in coordinator_env.items() if k != "PREFECT_API_URL"}
    status = run([sys.executable, "-m", "dvc", "status"], project, bare).stdout
    assert "Data and pipelines are up to date" in status, status
    repro = run([sys.executable, "-m", "dvc", "repro"], project, bare)
    assert "Running stage" not in repro.stdout + repro.stderr, repro.stdout[-2000:]


def _one_line(proc) -> str:
    assert proc.returncode != 0 and "Traceback" not in proc.stdout + proc.stderr, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_fanout_refuses_what_workers_could_not_reproduce_in_one_line(tmp_path, tiny_mirror, env):
    """Checked before any flow run starts (no server needed): each a single line and a non-zero exit."""
    penv = {**env, "PREFECT_API_URL": "http://127.0.0.1:9/api"}  # never contacted
    no_api = {k: v for k, v in env.items() if k != "PREFECT_API_URL"}
    project = _coordinator(tmp_path, tiny_mirror, penv)
    assert "PREFECT_API_URL is not set" in _one_line(_fanout(project, no_api, "run", check=False))
    assert "--timeout 0: must be more than 0 seconds" in _one_line(
        _fanout(project, penv, "run", "--timeout", "0", check=False))
    assert "--tasks ghost: not in params.yaml pipeline.tasks" in _one_line(
        _fanout(project, penv, "run", "--tasks", "ghost", check=False))
    assert "--job-variables: a JSON object is needed, not list" in _one_line(
        _fanout(project, penv, "deploy", "--job-variables", "[1]", check=False))
    assert "--job-variables: not JSON" in _one_line(
        _fanout(project, penv, "deploy", "--job-variables", "{", check=False))

    with open(project / "params.yaml", "a") as handle:  # an uncommitted change the workers would not see
        handle.write("\n# an edit\n")
    line = _one_line(_fanout(project, penv, "run", check=False))
    assert "uncommitted changes to params.yaml" in line and "commit and push them first" in line, line
    subprocess.run(GIT + ["commit", "-qam", "an edit"], cwd=project, check=True)
    line = _one_line(_fanout(project, penv, "run", check=False))
    assert "is not on the git remote 'origin'" in line and "git push origin HEAD" in line, line
    line = _one_line(_fanout(project, penv, "run", "--origin", "upstream", check=False))
    assert "no git remote 'upstream'" in line, line

    subprocess.run(["git", "push", "-q", "origin", "HEAD"], cwd=project, check=True)
    run([sys.executable, "-m", "dvc", "remote", "default", "--unset"], project, penv)
    line = _one_line(_fanout(project, penv, "run", check=False))
    assert "no default DVC remote" in line and "dvc remote add -d" in line, line
