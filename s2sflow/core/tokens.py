"""Token data every text-reading kind shares: loading a saved ``tokenizers`` file, and ragged rows of
ids as flat numpy arrays that become Arrow list columns without a Python loop per token."""

from __future__ import annotations

from itertools import chain
from pathlib import Path

from s2sflow.core.errors import S2SFlowError


def load_tokenizer(path: Path):
    from tokenizers import Tokenizer

    if not path.is_file():
        raise S2SFlowError(f"{path}: tokenizer not found")
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


class Ragged:
    """Rows of unequal length as one flat numpy array (``values``, rows along its first axis) and
    ``offsets`` (row i is ``values[offsets[i]:offsets[i + 1]]``): what an Arrow list column holds."""

    def __init__(self, values, offsets):
        self.values, self.offsets = values, offsets

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @classmethod
    def from_rows(cls, rows: list[list[int]]) -> Ragged:
        import numpy as np

        lengths = np.fromiter(map(len, rows), np.int64, len(rows))
        offsets = row_offsets(lengths)
        return cls(np.fromiter(chain.from_iterable(rows), np.int64, int(offsets[-1])), offsets)

    def tolist(self) -> list:
        values, bounds = self.values.tolist(), self.offsets.tolist()
        return [values[i:j] for i, j in zip(bounds[:-1], bounds[1:])]

    def to_arrow(self, value_type: str = "int64"):
        """A ``list<int64>`` (or ``list<list<int64>>`` for 2-D values) Arrow array, the type ``datasets``
        infers from nested Python lists of ints (it narrows ``input_ids`` to int32, ``token_type_ids``
        to int8: pass ``value_type`` to match)."""
        import numpy as np
        import pyarrow as pa

        values = pa.array(self.values.reshape(-1).astype(value_type))
        if self.values.ndim == 2:
            width = self.values.shape[1]
            inner = np.arange(0, self.values.size + 1, width, dtype=np.int32)
            values = pa.ListArray.from_arrays(pa.array(inner, pa.int32()), values)
        return pa.ListArray.from_arrays(pa.array(self.offsets.astype(np.int32), pa.int32()), values)


def row_offsets(lengths):
    import numpy as np

    out = np.zeros(len(lengths) + 1, np.int64)
    np.cumsum(lengths, out=out[1:])
    return out
