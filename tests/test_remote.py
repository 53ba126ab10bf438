"""A DVC remote round trip: a built project pushes its outputs and run-cache (`make push`), a fresh git
clone pulls them (`make pull`) and then has every output, a `dvc repro` that runs nothing and a
working `s2sflow predict`. Once against a local-directory remote, once against a real S3-protocol
server (moto's, started on loopback in the test) through dvc-s3."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from conftest import REPO, run
from s2sflow.kinds.mnist.idx import read_idx

pytestmark = pytest.mark.e2e

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
