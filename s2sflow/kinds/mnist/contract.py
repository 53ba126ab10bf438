"""The MNIST data contract, a Great Expectations suite run by the split stage: 28x28 uint8 images,
labels 0-9, exact counts, every class in every split, and train/test overlap at most a threshold."""

from __future__ import annotations

import hashlib
import logging

import numpy as np
import pandas as pd

from s2sflow.core.contracts import ContractReport, validate_frame
from s2sflow.kinds.mnist.data import NUM_CLASSES, ImageSplit


def _frame(split: ImageSplit) -> pd.DataFrame:
    return pd.DataFrame({
        "label": split.labels,
        "height": np.full(len(split), split.images.shape[1]),
        "width": np.full(len(split), split.images.shape[2]),
        "dtype": [str(split.images.dtype)] * len(split),
        "image_sha1": [hashlib.sha1(img.tobytes()).hexdigest() for img in split.images],
    })


def check_mnist_contract(splits: dict[str, ImageSplit], expected_counts: dict[str, int],
                         max_train_test_overlap: int) -> ContractReport:
    import great_expectations as gx

    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    frames = {name: _frame(split) for name, split in splits.items()}
    test_hashes = set(frames["test"]["image_sha1"])
    overlap = {name: int(frames[name]["image_sha1"].isin(test_hashes).sum()) for name in ("train", "validation")}
    for name in ("train", "validation"):
        frames[name]["in_test"] = frames[name]["image_sha1"].isin(test_hashes)
    frames["test"]["in_test"] = False
    classes = list(range(NUM_CLASSES))

    def expectations(split_name: str) -> list:
        e = gx.expectations
        return [
            e.ExpectTableRowCountToEqual(value=expected_counts[split_name]),
            e.ExpectColumnValuesToBeBetween(column="height", min_value=28, max_value=28),
            e.ExpectColumnValuesToBeBetween(column="width", min_value=28, max_value=28),
            e.ExpectColumnValuesToBeInSet(column="dtype", value_set=["uint8"]),
            e.ExpectColumnValuesToBeInSet(column="label", value_set=classes),
            e.ExpectColumnDistinctValuesToContainSet(column="label", value_set=classes),
            # whole images shared with the official test set, allowed up to the params threshold
            e.ExpectColumnValuesToBeInSet(
                column="in_test", value_set=[False],
                mostly=1.0 - max_train_test_overlap / max(len(frames[split_name]), 1)),
        ]

    report = validate_frame("mnist", {name: (frame, expectations(name)) for name, frame in frames.items()})
    report.summary["train_test_overlap"] = overlap
    report.summary["max_train_test_overlap"] = max_train_test_overlap
    return report
