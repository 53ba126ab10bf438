"""The IDX format of MNIST: a 4-byte magic (0, 0, dtype code, ndim), big-endian uint32 sizes,
then the raw values. Every way a file can be wrong is reported with its name."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from s2sflow.core.errors import S2SFlowError

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
           0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_CODES = {np.dtype(np.uint8): 0x08}


def parse_idx(data: bytes, name: str, expect_ndim: int | None = None) -> np.ndarray:
    """Decode IDX bytes; ``name`` is the file named in errors."""
    if len(data) < 4:
        raise S2SFlowError(f"{name}: truncated IDX file ({len(data)} bytes, no header)")
    zero1, zero2, code, ndim = data[0], data[1], data[2], data[3]
    magic = int.from_bytes(data[:4], "big")
    if zero1 or zero2 or code not in _DTYPES or ndim == 0:
        raise S2SFlowError(f"{name}: wrong magic number {magic} (0x{magic:08x}); an IDX file starts with "
                           "0x0000 then a type code and the number of dimensions (2051 for images, 2049 for labels)")
    if expect_ndim is not None and ndim != expect_ndim:
        expected = {3: 2051, 1: 2049}.get(expect_ndim, expect_ndim)
        raise S2SFlowError(f"{name}: wrong magic number {magic}; expected {expected} ({expect_ndim}-dimensional IDX)")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise S2SFlowError(f"{name}: truncated IDX file: header needs {header} bytes, file has {len(data)}")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = np.dtype(_DTYPES[code])
    expected_bytes = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) < expected_bytes:
        raise S2SFlowError(f"{name}: truncated IDX file: header promises shape {tuple(shape)} "
                           f"({expected_bytes} bytes), file has {len(data)}")
    if len(data) > expected_bytes:
        raise S2SFlowError(f"{name}: {len(data) - expected_bytes} unexpected trailing bytes after shape {tuple(shape)}")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)


def read_idx(path: str | Path, expect_ndim: int | None = None) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise S2SFlowError(f"{path}: file not found")
    return parse_idx(path.read_bytes(), str(path), expect_ndim)


def encode_idx(array: np.ndarray) -> bytes:
    array = np.ascontiguousarray(array)
    code = _CODES.get(array.dtype)
    if code is None:
        raise ValueError(f"encode_idx supports uint8 arrays, got {array.dtype}")
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def check_labels(labels: np.ndarray, num_classes: int, name: str) -> None:
    """Labels must lie in 0..num_classes-1; the first offending position is named."""
    bad = np.flatnonzero(labels >= num_classes)
    if bad.size:
        i = int(bad[0])
        raise S2SFlowError(f"{name}: label {int(labels[i])} at index {i} is outside 0-{num_classes - 1} "
                           f"({bad.size} bad label{'s' if bad.size > 1 else ''}); fix or re-download the file")


def check_mnist_array(array: np.ndarray, is_labels: bool, name: str) -> None:
    """MNIST's content rules: labels in 0-9, images 28x28."""
    if is_labels:
        check_labels(array, 10, name)
    elif array.shape[1:] != (28, 28):
        raise S2SFlowError(f"{name}: images are {array.shape[1]}x{array.shape[2]}, expected 28x28")
