"""Scale-out on existing engines. Task chains side by side: the pipeline flow runs them on Prefect's
ThreadPoolTaskRunner, stages in order inside each chain, one training at a time (a Prefect global
concurrency limit), and dvc.lock ends with the same entries as a serial `dvc repro`. A DVC remote
round trip: a built project pushes its outputs and run-cache (`make push`), a fresh git clone pulls
them (`make pull`) and then has every output, a `dvc repro` that runs nothing and a working
`s2sflow predict`; once against a local-directory remote, once against a real S3-protocol server
(moto's, started on loopback in the test) through dvc-s3. One file, so one built project serves both."""

import json
import os
import shutil
import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from PIL import Image

from conftest import REPO, make_project, prefect_test_env, run, with_twin
from s2sflow.core.params import STAGES
from s2sflow.kinds.mnist.idx import read_idx

pytestmark = pytest.mark.e2e


TASK_RUNS = """
import asyncio, json
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
async def main():
    async with get_client() as c:  # the task runs of the newest flow run that finished
        flows = [f for f in await c.read_flow_runs(limit=50) if f.state.is_completed()]
        newest = max(flows, key=lambda f: f.start_time).id
        runs = await c.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[newest])), limit=200)
        print(json.dumps([{"name": r.name, "state": r.state.type.value, "start": r.start_time.isoformat(),
                           "end": r.end_time.isoformat()} for r in runs if r.start_time and r.end_time]))
asyncio.run(main())
"""


LIMITS = """
from prefect.client.orchestration import get_client
with get_client(sync_client=True) as c:
    print(" ".join(limit.name for limit in c.read_global_concurrency_limits()))
"""


def _overlaps(a: dict, b: dict) -> bool:
    return a["start"] < b["end"] and b["start"] < a["end"]


def test_two_chains_overlap_one_training_at_a_time_and_the_lock_equals_serial(tmp_path, tiny_mirror, env,
                                                                              built_project):
    project = make_project(tmp_path / "project", tiny_mirror, edit=with_twin)
    penv = prefect_test_env(env, tmp_path / "prefect-home")
    flow = [sys.executable, "-m", "flows.pipeline", "--root", str(project), "--max-parallel", "2",
            "--max-trainings", "1"]
    # a run killed while a training holds the training slot: the next run on the same Prefect home must not
    # wait for that slot (each run has its own limit)
    killed = subprocess.Popen(flow, cwd=project, env=penv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, start_new_session=True)
    seen = []
    for line in killed.stdout:
        seen.append(line)
        if "$ dvc repro train@" in line:
            break
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait()
    assert any("$ dvc repro train@" in line for line in seen), "".join(seen)[-3000:]
    proc = run(flow, project, penv, timeout=900)
    out = proc.stdout + proc.stderr
    assert "s2sflow: completed: mnist, twin" in proc.stdout, out[-3000:]
    assert "2 task chains at once, at most 1 training(s) at once (concurrency limit s2sflow-train-" in out, out[-3000:]
    assert "train@twin | " in proc.stderr and "train@mnist | " in proc.stderr  # each line says whose it is
    assert "Unable to acquire lock" not in out and "is busy" not in out
    assert "$ dvc repro train@mnist" in out and "$ dvc repro train@twin" in out, out[-3000:]  # normal priority

    runs = {r["name"]: r for r in json.loads(run([sys.executable, "-c", TASK_RUNS], project, penv).stdout)}
    limits = run([sys.executable, "-c", LIMITS], project, penv).stdout.split()
    assert len(limits) == 1, limits  # the killed run's limit stays behind, unused; the finished run removed its own
    for r in runs.values():
        r["start"], r["end"] = datetime.fromisoformat(r["start"]), datetime.fromisoformat(r["end"])
    stages = {t: [runs[f"{s}@{t}"] for s in STAGES] for t in ("mnist", "twin")}
    assert all(r["state"] == "COMPLETED" for rows in stages.values() for r in rows)
    for rows in stages.values():  # in order inside a chain
        assert all(a["end"] <= b["start"] for a, b in zip(rows, rows[1:])), rows
    pairs = [(a["name"], b["name"]) for a in stages["mnist"] for b in stages["twin"] if _overlaps(a, b)]
    assert pairs, "no stage of one chain ran while a stage of the other did"
    assert _overlaps(runs["chain@mnist"], runs["chain@twin"])
    assert not _overlaps(runs["train@mnist"], runs["train@twin"]), "two trainings at once (limit 1)"
    # a stage yields the CPU (nice 19) only while a chain trains or waits to: none niced after the last
    # training ended (the last chain's export always comes then), none niced that began after it
    niced = {line.split("dvc repro ")[1].split()[0] for line in out.splitlines() if "$ nice -n 19 dvc repro " in line}
    trained = max(runs[f"train@{t}"]["end"] for t in ("mnist", "twin"))
    last = max(("mnist", "twin"), key=lambda t: runs[f"train@{t}"]["end"])
    assert f"$ dvc repro export@{last}" in out and f"export@{last}" not in niced, out[-3000:]
    for name in niced:
        assert not name.startswith("train@") and runs[name]["start"] < trained, (name, niced)

    record = json.loads(max((project / ".s2sflow/runs").glob("*.json")).read_text())
    assert record["max_parallel"] == 2
    assert [(r["task"], r["stage"]) for r in record["stages"][1:]] == [(t, s) for t in ("mnist", "twin")
                                                                       for s in STAGES]

    lock = yaml.safe_load((project / "dvc.lock").read_text())["stages"]
    serial = yaml.safe_load((built_project / "dvc.lock").read_text())["stages"]
    assert sorted(lock) == sorted(f"{s}@{t}" for t in ("mnist", "twin") for s in STAGES)
    for s in ("download", "split", "tokenize", "train", "evaluate"):  # the serial `dvc repro` of the same
        assert lock[f"{s}@mnist"] == serial[f"{s}@mnist"], s         # code, params and data: the same entries
    # export too, but for the model card's git commit (each tiny project is its own repository)
    export, serial_export = (dict(lock["export@mnist"]), dict(serial["export@mnist"]))
    assert export.pop("outs") != serial_export.pop("outs") and export == serial_export
    for name in ("model.onnx", "model.safetensors", "config.json", "preprocessing.json"):
        assert (project / "exports/mnist" / name).read_bytes() == (built_project / "exports/mnist" / name).read_bytes()
    cards = [json.loads((p / "exports/mnist/model_card.json").read_text()) for p in (project, built_project)]
    assert cards[0].pop("git") != cards[1].pop("git") and cards[0] == cards[1]
    for name in ("metrics/twin.json", "models/twin/model.safetensors"):  # the twin trained alongside
        assert (project / name).read_bytes() == (project / name.replace("twin", "mnist")).read_bytes(), name
    status = run([sys.executable, "-m", "dvc", "status"], project, penv).stdout
    assert "Data and pipelines are up to date" in status, status


def test_a_yielding_stage_runs_at_the_lowest_cpu_priority_through_dvc(tmp_path, env):
    """stage_command(yielding=True) prefixes `nice -n 19`, and DVC's stage command inherits it; without
    it the stage runs at this process's priority. The defaults: one training per two cores, two more
    chains than trainings."""


    from flows.pipeline import NICENESS, default_parallel, default_trainings, stage_command

    repo = tmp_path / "niced"
    repo.mkdir()
    run(["git", "init", "-q"], repo, env)
    run([sys.executable, "-m", "dvc", "init", "-q"], repo, env)
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"split": {"foreach": ["x"], "do": {
        "cmd": f"{sys.executable} -c \"import os; open('nice.txt', 'w').write(str(os.nice(0)))\"",
        "outs": ["nice.txt"]}}}}))
    for yielding, expected in ((True, NICENESS), (False, os.nice(0))):
        cmd, cmd_env = stage_command("split", "x", yielding=yielding)
        assert (cmd[:3] == ["nice", "-n", str(NICENESS)]) == yielding
        proc = subprocess.run([*cmd, "--force"], cwd=repo, env={**cmd_env, **env}, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert int((repo / "nice.txt").read_text()) == min(expected, 19)
    assert (default_trainings(2), default_parallel(2)) == (1, 3)
    assert (default_trainings(16), default_parallel(16)) == (8, 10)
    assert (default_trainings(1), default_parallel(1)) == (1, 3)


def test_chain_options_are_range_checked(project, env):
    for flag in ("--max-parallel", "--max-trainings"):
        proc = run([sys.executable, "-m", "flows.pipeline", "--root", str(project), flag, "0"], project, env,
                   check=False)
        assert proc.returncode == 2 and f"{flag} 0: must be between 1 and 64" in proc.stderr
        assert "Traceback" not in proc.stderr


VENV = Path(sys.executable).parent.parent
GIT = ["git", "-c", "user.email=t@example.com", "-c", "user.name=test"]


def _make(target: str, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    """`make <target>` with this test's interpreter as the venv (``-o``: never reinstall it here)."""
    return run(["make", "--no-print-directory", "-f", str(REPO / "Makefile"), "-o", f"{VENV}/.installed",
                f"VENV={VENV}", target], cwd, env)


def _committed_copy(built_project: Path, dest: Path, env: dict, remote: list[list[str]]) -> Path:
    """A copy of the built project with its lock, metrics, reports and the remote's config committed."""
    shutil.copytree(built_project, dest, symlinks=True)
    for args in remote:
        run([sys.executable, "-m", "dvc", "remote", *args], dest, env)
    subprocess.run(["git", "add", "-A"], cwd=dest, check=True)
    subprocess.run(GIT + ["commit", "-qm", "pipeline run"], cwd=dest, check=True)
    return dest


def _round_trip(project: Path, tmp_path: Path, env: dict) -> None:
    pushed = _make("push", project, env).stdout
    assert "pushed" in pushed, pushed
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(project), str(clone)], check=True)
    assert not (clone / "models/mnist").exists() and not (clone / ".dvc/cache").exists()
    no_mirror = {k: v for k, v in env.items() if k != "S2SFLOW_DATA_MIRROR"}  # nothing may be downloaded
    _make("pull", clone, no_mirror)
    for rel in ("data/raw/mnist/t10k-images-idx3-ubyte", "data/tokenized/mnist/train.safetensors",
                "models/mnist/model.safetensors", "exports/mnist/model.onnx"):
        assert (clone / rel).read_bytes() == (project / rel).read_bytes(), rel
    status = run([sys.executable, "-m", "dvc", "status"], clone, no_mirror).stdout
    assert "Data and pipelines are up to date" in status, status
    repro = run([sys.executable, "-m", "dvc", "repro"], clone, no_mirror)
    assert "Running stage" not in repro.stdout + repro.stderr, repro.stdout[-2000:]
    images = read_idx(clone / "data/raw/mnist/t10k-images-idx3-ubyte")
    png = tmp_path / "digit.png"
    Image.fromarray(images[0]).save(png)
    cmd = [sys.executable, "-m", "s2sflow.cli", "predict", "--task", "mnist", "--json"]
    pulled = json.loads(run(cmd + ["--root", str(clone), str(png)], tmp_path, no_mirror).stdout)
    original = json.loads(run(cmd + ["--root", str(project), str(png)], tmp_path, no_mirror).stdout)
    assert pulled["label"] == original["label"] and pulled["probabilities"] == original["probabilities"]


def test_local_directory_remote_round_trip(built_project, env, tmp_path):
    store = tmp_path / "dvc-store"
    project = _committed_copy(built_project, tmp_path / "project", env, [["add", "-d", "store", str(store)]])
    _round_trip(project, tmp_path, env)
    assert any(p.is_file() for p in (store / "files" / "md5").rglob("*"))
    assert (store / "runs").is_dir()  # the run-cache went too (`--run-cache`)


def test_s3_remote_round_trip_on_a_loopback_server(built_project, env, tmp_path):
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        creds = {"AWS_ACCESS_KEY_ID": "s2sflow", "AWS_SECRET_ACCESS_KEY": "s2sflow-secret",
                 "AWS_DEFAULT_REGION": "us-east-1"}
        s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1")
        s3.create_bucket(Bucket="s2sflow-dvc")
        s3env = {**env, **creds}
        project = _committed_copy(built_project, tmp_path / "project", s3env, [
            ["add", "-d", "s3store", "s3://s2sflow-dvc/cache"],
            ["modify", "s3store", "endpointurl", endpoint]])
        _round_trip(project, tmp_path, s3env)
        keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket="s2sflow-dvc")
                for o in page.get("Contents", [])]
        assert any(k.startswith("cache/files/md5/") for k in keys) and any(k.startswith("cache/runs/") for k in keys)
    finally:
        server.stop()
