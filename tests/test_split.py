"""The split stage: random_split 55,000/5,000 (here a tiny cut of the real data), the Great
Expectations contract, and the DataModule's own use of the same function."""

import numpy as np
import torch
import yaml

from conftest import TINY_TEST, TINY_TRAIN, TINY_VAL, stage, tree_snapshot
from s2sflow.core.fsutil import read_json
from s2sflow.kinds.mnist.data import MNISTDataModule, load_split, load_tensors, split_train_validation


def test_random_split_is_seeded_and_disjoint():
    train, val = split_train_validation(60000, 5000, seed=42)
    assert (len(train), len(val)) == (55000, 5000)
    assert len(np.intersect1d(train, val)) == 0 and len(np.union1d(train, val)) == 60000
    again_train, again_val = split_train_validation(60000, 5000, seed=42)
    assert np.array_equal(train, again_train) and np.array_equal(val, again_val)
    assert not np.array_equal(val, split_train_validation(60000, 5000, seed=43)[1])
    expected = torch.utils.data.random_split(range(60000), [55000, 5000], generator=torch.Generator().manual_seed(42))
    assert list(val) == list(expected[1].indices)


def test_split_stage_writes_splits_and_contract_report(project, env):
    assert stage("download", project, env).returncode == 0
    proc = stage("split", project, env)
    assert proc.returncode == 0, proc.stderr
    out = project / "data/split/mnist"
    sizes = read_json(out / "split.json")["sizes"]
    assert sizes == {"train": TINY_TRAIN - TINY_VAL, "validation": TINY_VAL, "test": TINY_TEST}
    report = read_json(out / "contract.json")
    assert report["success"] is True
    assert report["summary"]["train_test_overlap"] == {"train": 0, "validation": 0}
    kinds = {r["expectation"] for r in report["results"]["train"]}
    assert {"expect_table_row_count_to_equal", "expect_column_values_to_be_in_set",
            "expect_column_distinct_values_to_contain_set", "expect_column_values_to_be_between"} <= kinds
    train, val = load_split(out / "train"), load_split(out / "validation")
    assert train.images.shape == (TINY_TRAIN - TINY_VAL, 28, 28) and train.images.dtype == np.uint8
    assert len(np.intersect1d(train.source_index, val.source_index)) == 0

    # tokenize, then: the DataModule given raw data builds exactly the tokenize stage's tensors
    assert stage("tokenize", project, env).returncode == 0
    dm = MNISTDataModule(raw_dir=project / "data/raw/mnist", validation_size=TINY_VAL, split_seed=42)
    dm.prepare_data()
    dm.setup("fit")
    for name in ("train", "validation", "test"):
        staged = load_tensors(project / f"data/tokenized/mnist/{name}.safetensors")
        assert torch.equal(dm.datasets[name].tensors[0], staged.tensors[0])
        assert torch.equal(dm.datasets[name].tensors[1], staged.tensors[1])


def test_failed_contract_stops_the_stage_and_writes_nothing(project, env):
    assert stage("download", project, env).returncode == 0
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["mnist"]["split"]["expected_counts"]["test"] = 10000
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    proc = stage("split", project, env)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert lines[0].startswith("s2sflow: mnist: data contract failed (1 expectation(s)): test: "
                               "expect_table_row_count_to_equal({'value': 10000}) observed 400")
    assert not (project / "data/split").exists() or not any((project / "data/split").iterdir())


def test_bad_raw_file_fails_split_with_its_name(project, env):
    assert stage("download", project, env).returncode == 0
    labels = project / "data/raw/mnist/t10k-labels-idx1-ubyte"
    data = bytearray(labels.read_bytes())
    data[8 + 5] = 11
    labels.write_bytes(bytes(data))
    before = tree_snapshot(project / "data")
    proc = stage("split", project, env)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"s2sflow: mnist: {labels.relative_to(project)}: label 11 at index 5 is outside "
                                   "0-9 (1 bad label); fix or re-download the file")
    assert tree_snapshot(project / "data") == before
