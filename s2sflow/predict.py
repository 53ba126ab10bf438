"""Predictions from an exported model (``exports/<task>/``) with onnxruntime: no training code needed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from s2sflow.errors import S2SFlowError
from s2sflow.fsutil import read_json


@dataclass
class ImagePrediction:
    file: str
    label: int
    probabilities: list[float]


def load_image(path: Path, invert: str = "auto") -> np.ndarray:
    """Any image file -> (28, 28) float in [0, 1], white digit on black like MNIST."""
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise S2SFlowError(f"{path}: file not found")
    try:
        with Image.open(path) as img:
            gray = img.convert("L")
            if gray.size != (28, 28):
                gray = gray.resize((28, 28), Image.Resampling.BILINEAR)
            pixels = np.asarray(gray, dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError) as err:
        raise S2SFlowError(f"{path}: not a readable image ({err.__class__.__name__}); give a PNG or JPEG") from None
    if invert == "yes" or (invert == "auto" and pixels.mean() > 0.5):
        pixels = 1.0 - pixels
    return pixels


class ExportedImageClassifier:
    def __init__(self, export_dir: Path, task: str):
        import onnxruntime as ort

        onnx_path = export_dir / "model.onnx"
        if not onnx_path.is_file():
            raise S2SFlowError(f"{onnx_path} not found; run `dvc repro export@{task}` (or `make run`) first", task)
        self.prep = read_json(export_dir / "preprocessing.json")
        options = ort.SessionOptions()
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])

    def predict(self, paths: list[Path], invert: str = "auto") -> list[ImagePrediction]:
        pixels = np.stack([load_image(p, invert) for p in paths])
        x = ((pixels - self.prep["mean"]) / self.prep["std"]).astype(np.float32)[:, None]
        (log_probs,) = self.session.run(None, {"images": x})
        probs = np.exp(log_probs.astype(np.float64))
        return [ImagePrediction(str(p), int(pr.argmax()), [round(float(v), 6) for v in pr])
                for p, pr in zip(paths, probs)]
