"""Prefect: the pipeline flow (skips a task whose data is missing, fails when that task is named),
a scheduled deployment run by a real server and process worker, and the comparison flow."""

import copy
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import prefect_server, prefect_test_env, run
from s2sflow.core.params import STAGES

REPO = Path(__file__).resolve().parents[1]

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
    return prefect_test_env(env, tmp_path / "prefect-home")


# what the Makefile exports for privacy; the flow must not need any of it (s2sflow/offline.py)
MAKEFILE_PRIVACY = ("DVC_NO_ANALYTICS", "DO_NOT_TRACK", "PREFECT_SERVER_ANALYTICS_ENABLED", "GX_ANALYTICS_ENABLED",
                    "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HUB_DISABLE_TELEMETRY", "TRANSFORMERS_OFFLINE",
                    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW")
LOOPBACK = ("'127.0.0.1'", "'::1'", "'localhost'", "'0.0.0.0'")


def _audited_env(env: dict, tmp_path) -> tuple[dict, object]:
    """``env`` without the Makefile's privacy settings, with every Python process auditing its sockets."""
    log = tmp_path / "net-audit.jsonl"
    bare = {k: v for k, v in env.items() if k not in MAKEFILE_PRIVACY and not k.startswith(("HF_", "GX_"))}
    bare.update(PYTHONPATH=str(Path(__file__).parent / "netaudit"), S2SFLOW_NET_AUDIT=str(log),
                PREFECT_HOME=str(tmp_path / "prefect-home-bare"))
    return bare, log


def _assert_only_loopback(log) -> None:
    records = [json.loads(line) for line in log.read_text().splitlines()]
    connects = [r for r in records if r["event"] == "connect"]
    inet = [r for r in connects if r["family"] in (socket.AF_INET, socket.AF_INET6)]
    assert inet, "the audit saw no connection at all (the Prefect server is on loopback: the hook did not run)"
    outside = [r for r in inet if not r["address"].startswith(tuple("(" + h for h in LOOPBACK))]
    lookups = [r for r in records if r["event"] == "getaddrinfo" and r["host"] not in LOOPBACK]
    assert not outside and not lookups, f"contacted beyond loopback: {(outside + lookups)[:5]}"


def _one_line_failure(proc, task: str) -> str:
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out and "NoneType: None" not in out, out[-3000:]
    lines = proc.stderr.splitlines()  # the stage's own output streams before the flow ends, as it came
    end = max(i for i, line in enumerate(lines) if "Flow run" in line and "Finished in state" in line)
    summary = [line for line in lines[end + 1:] if line.startswith("s2sflow: ")]
    assert len(summary) == 1 and summary[0].startswith(f"s2sflow: {task}: "), proc.stderr[-3000:]
    return summary[0]


def test_pipeline_flow_skips_missing_data_and_fails_when_it_is_named(project, env, tmp_path):
    """Run without the Makefile's environment, auditing every socket of every process: only loopback.
    A task whose file is missing from the mirror is skipped (default list) or fails with one line
    (named), never retried; a task whose URL cannot be reached is retried, then fails with one line."""
    _with_ghost_task(project)
    bare, log = _audited_env(env, tmp_path)
    flow = [sys.executable, "-m", "flows.pipeline", "--root", str(project)]
    proc = run(flow, project, bare)  # download retries: the default (2)
    out = proc.stdout + proc.stderr
    assert "s2sflow: completed: mnist" in proc.stdout
    assert "s2sflow: skipped ghost: s2sflow: ghost: " in proc.stdout
    assert "ghost/t" in out and "file not found in the data mirror" in out
    assert "Retry 1/" not in out  # a file missing from the mirror is not transient
    metrics = json.loads((project / "metrics/mnist.json").read_text())
    assert f"  mnist: accuracy={metrics['accuracy']}" in proc.stdout
    _assert_only_loopback(log)

    page = project / "reports/site/index.html"  # the results page, linked from the run's artifact
    assert f'data-metric="accuracy">{metrics["accuracy"]}<' in page.read_text().replace("'", '"')
    built = page.stat().st_mtime_ns

    # a second run: `dvc status` once, every stage of mnist marked up to date in Prefect, DVC never
    # started for a stage; then one changed export param: only export goes through `dvc repro`
    again = run(flow + ["--tasks", "mnist"], project, bare)
    assert page.stat().st_mtime_ns == built  # nothing ran: the page is kept, not rebuilt
    out = again.stdout + again.stderr
    assert "dvc status: 0 stale stage(s)" in out and "$ dvc repro" not in out, out[-3000:]
    assert out.count("Finished in state Completed('up to date (dvc status)')") == 6, out[-3000:]
    record = json.loads(max((project / ".s2sflow/runs").glob("*.json")).read_text())
    assert [(r["stage"], r["ran"]) for r in record["stages"][1:]] == [(s, False) for s in STAGES]
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["mnist"]["export"]["check_images"] = 50
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    export = run(flow + ["--tasks", "mnist"], project, bare)
    out = export.stdout + export.stderr
    assert "dvc status: 1 stale stage(s): export@mnist" in out and out.count("$ dvc repro") == 1, out[-3000:]
    assert "$ dvc repro export@mnist" in out and "Running stage 'export@mnist'" in out
    record = json.loads(max((project / ".s2sflow/runs").glob("*.json")).read_text())
    assert [(r["stage"], r["ran"]) for r in record["stages"][1:]] == [(s, s == "export") for s in STAGES]
    times = subprocess.run([sys.executable, str(REPO / "benchmarks/run_times.py"), "--root", str(project)],
                           capture_output=True, text=True, check=True).stdout
    assert "stages run by DVC: 1; up to date (·): 5" in times and "\nmnist " in times, times
    status = run([sys.executable, "-m", "dvc", "status", "--with-deps", "export@mnist"], project, bare).stdout
    assert "Data and pipelines are up to date" in status, status

    named = run(flow + ["--tasks", "ghost"], project, bare, check=False)
    assert named.returncode == 1
    assert "file not found in the data mirror" in _one_line_failure(named, "ghost")
    assert "Retry 1/" not in named.stdout + named.stderr

    params = yaml.safe_load((project / "params.yaml").read_text())  # a URL source nobody listens on
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    params["ghost"]["download"]["sources"] = [{"url": f"http://127.0.0.1:{port}/{{name}}"}]
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    no_mirror = {k: v for k, v in bare.items() if k != "S2SFLOW_DATA_MIRROR"}
    net = run(flow + ["--tasks", "ghost", "--download-retries", "1"], project, no_mirror, check=False)
    assert net.returncode == 1
    assert "no source could supply the data" in _one_line_failure(net, "ghost")
    assert "Retry 1/1" in net.stdout + net.stderr  # transient: retried once, as asked
    _assert_only_loopback(log)


def test_pipeline_flow_refuses_bad_tasks_and_params_in_one_line(project, env, tmp_path):
    """An unknown task or a params.yaml that is not YAML: exit 2, one line, before Prefect starts."""
    bare, _ = _audited_env(env, tmp_path)
    flow = [sys.executable, "-m", "flows.pipeline", "--root", str(project)]
    unknown = run(flow + ["--tasks", "mnist,nosuchtask"], project, bare, check=False)
    assert unknown.returncode == 2
    assert unknown.stderr.strip() == ("s2sflow: --tasks nosuchtask: not in params.yaml pipeline.tasks (known: "
                                      "mnist); add `<task>: <kind>` there or pick a known task")
    assert "temporary server" not in unknown.stdout + unknown.stderr
    (project / "params.yaml").write_text((project / "params.yaml").read_text() + "\nmnist: [unclosed\n")
    broken = run(flow + ["--tasks", "mnist"], project, bare, check=False)
    assert broken.returncode == 2
    lines = broken.stderr.strip().splitlines()
    assert len(lines) == 1 and "params.yaml: not valid YAML" in lines[0], broken.stderr
    assert not (project / "data/raw/mnist").exists()


def _py(code: str, cwd, env) -> str:
    return run([sys.executable, "-c", code], cwd, env).stdout.strip()


def test_scheduled_deployment_runs_on_a_process_worker(built_project, prefect_env, tmp_path):
    """The nightly deployment (flow.from_source) run by a real process worker, on a built project: the
    run finds every stage up to date and publishes the metrics table (a worker running stages of a
    deployment: tests/test_fanout.py)."""
    import shutil

    project = tmp_path / "copy"
    shutil.copytree(built_project, project, symlinks=True)
    with prefect_server(prefect_env, tmp_path) as api:
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
        record = json.loads(max((project / ".s2sflow/runs").glob("*.json")).read_text())
        assert [(r["stage"], r["ran"]) for r in record["stages"][1:]] == [(s, False) for s in STAGES]


def test_compare_flow_runs_a_grid_and_writes_a_sorted_report(built_project, prefect_env, tmp_path):
    """A grid queued in DVC (`dvc exp run --queue`) and run by two queue workers at once (the 4-point
    grid against a sequential run: benchmarks/queued_grid.py)."""
    import shutil

    project = tmp_path / "copy"
    shutil.copytree(built_project, project, symlinks=True)
    subprocess.run(["git", "add", "-A"], cwd=project, check=True, env=prefect_env)
    subprocess.run(["git", "commit", "-qm", "baseline run"], cwd=project, check=True, env=prefect_env)
    params_before = (project / "params.yaml").read_bytes()
    proc = run([sys.executable, "-m", "flows.compare", "--task", "mnist", "--name", "opt",
                "--grid", "mnist.train.optimizer.name=sgd,adamw",
                "--set", "mnist.train.epochs=1", "--jobs", "2"], project, prefect_env)
    report = (project / "reports/compare/opt.md").read_text()
    rows = [line for line in report.splitlines() if line.startswith("| opt-")]
    assert len(rows) == 2, report
    accs = [float(r.split("|")[3]) for r in rows]
    assert accs == sorted(accs, reverse=True) and accs[0] != accs[1]  # the points really differ
    assert {r.split("|")[2].strip() for r in rows} == {"sgd", "adamw"}
    assert (project / "reports/compare/opt.png").read_bytes()[:4] == b"\x89PNG"
    assert (project / "params.yaml").read_bytes() == params_before  # the workspace is left as it was
    shown = run([sys.executable, "-m", "dvc", "exp", "show", "--json"], project, prefect_env).stdout
    assert all(f"opt-{i}" in shown for i in range(2))
    assert "$ dvc exp run --run-all --jobs 2" in proc.stdout + proc.stderr
    assert "wrote" in proc.stdout
