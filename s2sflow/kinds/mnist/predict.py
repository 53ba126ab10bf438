"""``s2sflow predict --task mnist digit.png``: the exported ONNX CNN over any image file (resized to
28x28; dark-on-light images inverted)."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from s2sflow.core.errors import S2SFlowError
from s2sflow.core.predict import ExportedOnnxModel


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


class ExportedImageClassifier(ExportedOnnxModel):

    def predict(self, paths: list[Path], invert: str = "auto") -> list[ImagePrediction]:
        pixels = np.stack([load_image(p, invert) for p in paths])
        x = ((pixels - self.prep["mean"]) / self.prep["std"]).astype(np.float32)[:, None]
        (log_probs,) = self.session.run(None, {"images": x})
        probs = np.exp(log_probs.astype(np.float64))
        return [ImagePrediction(str(p), int(pr.argmax()), [round(float(v), 6) for v in pr])
                for p, pr in zip(paths, probs)]



def predict(args: argparse.Namespace, export_dir: Path) -> None:
    """Print the digit of each image (file, digit, probability; ``--json``: one object per line)."""

    if not args.inputs:
        raise S2SFlowError("give one or more image files, e.g. `s2sflow predict --task mnist digit.png`", args.task)
    model = ExportedImageClassifier(export_dir, args.task)
    for pred in model.predict([Path(p) for p in args.inputs], args.invert):
        if args.json:
            print(json.dumps({"file": pred.file, "label": pred.label, "probabilities": pred.probabilities}))
        else:
            print(f"{pred.file}\t{pred.label}\t(p={max(pred.probabilities):.3f})")
