"""Scale-out on one machine: the pipeline flow runs task chains side by side on Prefect's
ThreadPoolTaskRunner, stages in order inside each chain, one training at a time (a Prefect global
concurrency limit), and dvc.lock ends with the same entries as a serial `dvc repro`."""

import copy
import json
import sys
from datetime import datetime

import pytest
import yaml

from conftest import make_project, run
from s2sflow.core.params import STAGES

pytestmark = pytest.mark.e2e

TASK_RUNS = """
import asyncio, json
from prefect.client.orchestration import get_client
async def main():
    async with get_client() as c:
        runs = await c.read_task_runs(limit=200)
        print(json.dumps([{"name": r.name, "state": r.state.type.value, "start": r.start_time.isoformat(),
                           "end": r.end_time.isoformat()} for r in runs if r.start_time and r.end_time]))
asyncio.run(main())
"""


def _with_twin(params: dict) -> None:
    """A second MNIST-kind task with its own outputs (the same tiny data and settings)."""
    params["twin"] = copy.deepcopy(params["mnist"])
    params["pipeline"]["tasks"]["twin"] = "mnist"


def _overlaps(a: dict, b: dict) -> bool:
    return a["start"] < b["end"] and b["start"] < a["end"]


def test_two_chains_overlap_one_training_at_a_time_and_the_lock_equals_serial(tmp_path, tiny_mirror, env,
                                                                              built_project):
    project = make_project(tmp_path / "project", tiny_mirror, edit=_with_twin)
    penv = {**env, "PREFECT_HOME": str(tmp_path / "prefect-home"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1", "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
            "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore"}
    proc = run([sys.executable, "-m", "flows.pipeline", "--root", str(project), "--max-parallel", "2",
                "--max-trainings", "1"], project, penv, timeout=900)
    out = proc.stdout + proc.stderr
    assert "s2sflow: completed: mnist, twin" in proc.stdout, out[-3000:]
    assert "2 task chains at once, at most 1 training(s) at once" in out, out[-3000:]
    assert "train@twin | " in proc.stderr and "train@mnist | " in proc.stderr  # each line says whose it is
    assert "Unable to acquire lock" not in out and "is busy" not in out

    runs = {r["name"]: r for r in json.loads(run([sys.executable, "-c", TASK_RUNS], project, penv).stdout)}
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


def test_chain_options_are_range_checked(project, env):
    for flag in ("--max-parallel", "--max-trainings"):
        proc = run([sys.executable, "-m", "flows.pipeline", "--root", str(project), flag, "0"], project, env,
                   check=False)
        assert proc.returncode == 2 and f"{flag} 0: must be between 1 and 64" in proc.stderr
        assert "Traceback" not in proc.stderr
