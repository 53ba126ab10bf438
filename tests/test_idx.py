import numpy as np
import pytest

from s2sflow.core.errors import S2SFlowError
from s2sflow.kinds.mnist.idx import check_labels, encode_idx, parse_idx


def test_roundtrip_keeps_shape_and_values():
    images = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    data = encode_idx(images)
    assert data[:4] == bytes([0, 0, 8, 3]) and int.from_bytes(data[:4], "big") == 2051
    assert np.array_equal(parse_idx(data, "x", expect_ndim=3), images)


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d[:-5], "truncated IDX file: header promises shape (2, 28, 28) (1584 bytes), file has 1579"),
    (lambda d: d[:2], "truncated IDX file (2 bytes, no header)"),
    (lambda d: b"\x00\x00\x08\x03\x00\x00" + d[6:10], "truncated IDX file: header needs 16 bytes"),
    (lambda d: b"\x12\x34" + d[2:], "wrong magic number 305399811"),
    (lambda d: d[:3] + b"\x01" + d[4:], "wrong magic number 2049; expected 2051"),
    (lambda d: d + b"\x00", "1 unexpected trailing bytes"),
])
def test_malformed_files_are_named_with_the_problem(mutate, message):
    data = encode_idx(np.zeros((2, 28, 28), dtype=np.uint8))
    with pytest.raises(S2SFlowError) as err:
        parse_idx(mutate(data), "some/file-idx3-ubyte", expect_ndim=3)
    assert str(err.value).startswith("some/file-idx3-ubyte: ")
    assert message in str(err.value)


def test_label_outside_range_names_index():
    labels = np.array([1, 2, 11, 3, 12], dtype=np.uint8)
    with pytest.raises(S2SFlowError, match=r"labels: label 11 at index 2 is outside 0-9 \(2 bad labels\)"):
        check_labels(labels, 10, "labels")
