"""Prefect: the pipeline flow (skips a task whose data is missing, fails when that task is named),
a scheduled deployment run by a real server and process worker, and the comparison flow."""

import copy
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
import yaml

from conftest import run

pytestmark = pytest.mark.e2e


def _with_ghost_task(project):
    """A second task whose files are not in the mirror."""
    params = yaml.safe_load((project / "params.yaml").read_text())
    ghost = copy.deepcopy(params["mnist"])
    ghost["download"]["sources"] = [{"mirror": "ghost"}]
    params["ghost"] = ghost
    params["pipeline"]["tasks"] = {"mnist": "mnist", "ghost": "mnist"}
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture
def prefect_env(env, tmp_path):
    return {**env, "PREFECT_HOME": str(tmp_path / "prefect-home"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1", "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
            "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore"}


def test_pipeline_flow_skips_missing_data_and_fails_when_it_is_named(project, prefect_env):
    _with_ghost_task(project)
    flow = [sys.executable, "-m", "flows.pipeline", "--root", str(project)]
    proc = run(flow + ["--download-retries", "0"], project, prefect_env)
    out = proc.stdout + proc.stderr
    assert "s2sflow: completed: mnist" in proc.stdout
    assert "s2sflow: skipped ghost: s2sflow: ghost: " in proc.stdout
    assert "ghost/t" in out and "file not found in the data mirror" in out
    metrics = json.loads((project / "metrics/mnist.json").read_text())
    assert f"  mnist: accuracy={metrics['accuracy']}" in proc.stdout

    named = run(flow + ["--tasks", "ghost", "--download-retries", "0"], project, prefect_env, check=False)
    assert named.returncode == 1
    assert "s2sflow: pipeline failed:" in named.stderr and "ghost" in named.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _py(code: str, cwd, env) -> str:
    return run([sys.executable, "-c", code], cwd, env).stdout.strip()


def test_scheduled_deployment_runs_on_a_process_worker(project, prefect_env, tmp_path):
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                               "--port", str(port)], cwd=tmp_path, env=prefect_env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    api = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{api}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert time.time() < deadline and server.poll() is None, "prefect server did not become healthy"
            time.sleep(0.5)
        env = {**prefect_env, "PREFECT_API_URL": api}
        out = run([sys.executable, "-m", "flows.deploy", "--name", "ci", "--pool", "ci-pool", "--cron", "0 2 * * *",
                   "--tasks", "mnist"], project, env).stdout
        assert "created work pool 'ci-pool' (process)" in out and "schedule '0 2 * * *'" in out
        flow_run_id = _py("from prefect.deployments import run_deployment\n"
                          "print(run_deployment('s2sflow-pipeline/ci', timeout=0).id)", project, env)
        worker = run([sys.executable, "-m", "prefect", "worker", "start", "--pool", "ci-pool", "--run-once"],
                     tmp_path, env, timeout=600)
        assert worker.returncode == 0
        report = json.loads(_py(
            "import asyncio, json, uuid\n"
            "from prefect.client.orchestration import get_client\n"
            "async def main():\n"
            "    async with get_client() as c:\n"
            f"        fr = await c.read_flow_run(uuid.UUID('{flow_run_id}'))\n"
            "        dep = await c.read_deployment_by_name('s2sflow-pipeline/ci')\n"
            "        from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId\n"
            "        ids = ArtifactFilterFlowRunId(any_=[fr.id])\n"
            "        arts = await c.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ids))\n"
            "        crons = [s.schedule.cron for s in dep.schedules]\n"
            "        print(json.dumps({'state': fr.state.type.value, 'crons': crons,\n"
            "                          'artifacts': {a.key: a.data for a in arts}}))\n"
            "asyncio.run(main())", project, env))
        assert report["state"] == "COMPLETED"
        assert report["crons"] == ["0 2 * * *"]
        metrics = json.loads((project / "metrics/mnist.json").read_text())
        table = report["artifacts"]["s2sflow-metrics"]
        table = json.loads(table) if isinstance(table, str) else table
        assert table[0]["task"] == "mnist" and table[0]["headline"] == "accuracy"
        assert table[0]["value"] == metrics["accuracy"] and f"accuracy={metrics['accuracy']:.4g}" in table[0]["metrics"]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)


def test_compare_flow_runs_a_grid_and_writes_a_sorted_report(built_project, prefect_env, tmp_path):
    import shutil

    project = tmp_path / "copy"
    shutil.copytree(built_project, project, symlinks=True)
    subprocess.run(["git", "add", "-A"], cwd=project, check=True, env=prefect_env)
    subprocess.run(["git", "commit", "-qm", "baseline run"], cwd=project, check=True, env=prefect_env)
    params_before = (project / "params.yaml").read_bytes()
    proc = run([sys.executable, "-m", "flows.compare", "--task", "mnist", "--name", "opt",
                "--grid", "mnist.train.optimizer.name=sgd,adamw", "--set", "mnist.train.epochs=1"],
               project, prefect_env)
    report = (project / "reports/compare/opt.md").read_text()
    rows = [line for line in report.splitlines() if line.startswith("| opt-")]
    assert len(rows) == 2
    accs = [float(r.split("|")[3]) for r in rows]
    assert accs == sorted(accs, reverse=True)
    assert {r.split("|")[2].strip() for r in rows} == {"sgd", "adamw"}
    assert (project / "reports/compare/opt.png").read_bytes()[:4] == b"\x89PNG"
    assert (project / "params.yaml").read_bytes() == params_before  # the workspace is left as it was
    shown = run([sys.executable, "-m", "dvc", "exp", "show", "--json"], project, prefect_env).stdout
    assert "opt-0" in shown and "opt-1" in shown
    assert "wrote" in proc.stdout
