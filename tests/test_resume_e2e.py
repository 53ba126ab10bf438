"""Killing `dvc repro train@mnist` mid-run and running it again resumes from the last checkpoint and
ends with exactly the model and metrics of an uninterrupted run."""

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import yaml

from conftest import dvc
from s2sflow.core.fsutil import read_json

pytestmark = pytest.mark.e2e


def _copy_with_params(built_project, dest, engine):
    shutil.copytree(built_project, dest, symlinks=True)
    params = yaml.safe_load((dest / "params.yaml").read_text())
    train = params["mnist"]["train"]
    train.update(engine=engine, epochs=4, batch_size=16)
    train["model"].update(conv1_channels=16, conv2_channels=32, hidden=64)
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return dest


def _curves(project) -> dict[str, int]:
    """Rows per training curve (reports/mnist/training/**.tsv)."""
    folder = project / "reports/mnist/training"
    return {str(p.relative_to(folder)): len(p.read_text().splitlines()) for p in folder.rglob("*.tsv")}


@pytest.mark.parametrize("engine", ["lightning", "pytorch"])
def test_killed_training_resumes_from_checkpoint(built_project, env, tmp_path, engine):
    # the uninterrupted run, in its own copy (so the killed copy's DVC run-cache cannot restore it)
    reference = _copy_with_params(built_project, tmp_path / "reference", engine)
    dvc(["repro", "evaluate@mnist"], reference, env)
    model = (reference / "models/mnist/model.safetensors").read_bytes()
    metrics = (reference / "metrics/mnist.json").read_bytes()
    curves = _curves(reference)
    assert curves and all(rows > 1 for rows in curves.values()), curves
    assert not any((reference / "checkpoints/mnist").iterdir())  # dropped once training completed

    project = _copy_with_params(built_project, tmp_path / "killed", engine)
    proc = subprocess.Popen([sys.executable, "-m", "dvc", "repro", "train@mnist"], cwd=project, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    name = "last.ckpt" if engine == "lightning" else "last.pt"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        found = list((project / "checkpoints/mnist").glob(f"*/{name}")) \
            if (project / "checkpoints/mnist").is_dir() else []
        if found:
            break
        time.sleep(0.05)
    time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert list((project / "checkpoints/mnist").glob(f"*/{name}")), "the run finished before it could be killed"
    assert not (project / "models/mnist/model.safetensors").exists()  # killed mid-run: no model written

    out = dvc(["repro", "evaluate@mnist"], project, env)
    assert "resuming from" in out.stdout + out.stderr
    summary = read_json(project / "models/mnist/train_summary.json")
    assert summary["resumed_from"] and summary["global_step"] == 4 * 63  # 1,000 images / 16 per batch
    assert (project / "models/mnist/model.safetensors").read_bytes() == model
    assert (project / "metrics/mnist.json").read_bytes() == metrics
    assert _curves(project) == curves  # rows the killed run logged after its checkpoint are not repeated
    for tsv in (reference / "reports/mnist/training").rglob("*.tsv"):
        assert (project / tsv.relative_to(reference)).read_bytes() == tsv.read_bytes(), tsv.name
    assert not any((project / "checkpoints/mnist").iterdir())  # dropped once training completed
