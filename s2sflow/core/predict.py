"""What every kind's ``s2sflow predict`` shares: onnxruntime sessions on the CPU, an exported
``model.onnx`` with its ``preprocessing.json``, and reading inputs from stdin."""

from __future__ import annotations

import sys
from pathlib import Path

from s2sflow.core.errors import S2SFlowError
from s2sflow.core.fsutil import read_json


def onnx_session(path: Path):
    """An onnxruntime session on the CPU, with its warnings off."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class ExportedOnnxModel:
    """An exported ``model.onnx`` with its ``preprocessing.json``, served by onnxruntime on the CPU."""

    def __init__(self, export_dir: Path, task: str):
        onnx_path = export_dir / "model.onnx"
        if not onnx_path.is_file():
            raise S2SFlowError(f"{onnx_path} not found; run `dvc repro export@{task}` (or `make run`) first", task)
        self.prep = read_json(export_dir / "preprocessing.json")
        self.session = onnx_session(onnx_path)


def stdin_lines(task: str) -> list[str]:
    """The non-blank lines of stdin (texts when none are given as arguments), or one clear error."""
    lines = [line.rstrip("\n") for line in sys.stdin if line.strip()]
    if not lines:
        raise S2SFlowError("no input: give texts as arguments, or lines on stdin", task)
    return lines
