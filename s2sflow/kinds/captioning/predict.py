"""``s2sflow predict --task captioning photo.jpg``: the exported image encoder in onnxruntime, decoded
with ``generate()`` and the exported decoding params."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from s2sflow.core.errors import S2SFlowError
from s2sflow.core.fsutil import read_json
from s2sflow.core.predict import onnx_session


class ExportedCaptioner:
    """An exported captioning model (``exports/<task>/``): onnxruntime's ``image_encoder.onnx`` (the
    EfficientNet-Lite0 backbone, projection and encoder) gives the encoder states; the safetensors
    decoder, rebuilt into the ``transformers`` model, decodes them with ``generate()`` and the
    decoding params the export recorded."""

    def __init__(self, export_dir: Path, task: str):
        from safetensors.torch import load_model

        from s2sflow.core.tokens import load_tokenizer
        from s2sflow.kinds.captioning.lightning import CaptionNet

        graph, weights = export_dir / "image_encoder.onnx", export_dir / "model.safetensors"
        missing = next((p for p in (graph, weights) if not p.is_file()), None)
        if missing is not None:
            raise S2SFlowError(f"{missing} not found; run `dvc repro export@{task}` (or `make run`) first", task)
        self.prep = read_json(export_dir / "preprocessing.json")
        self.net = CaptionNet(read_json(export_dir / "config.json")["spec"])
        load_model(self.net, str(weights))
        self.net.eval()
        self.encoder = onnx_session(graph)
        self.tokenizer = load_tokenizer(export_dir / "tokenizer.json")

    def predict(self, paths: list[Path], batch_size: int = 16, **overrides) -> list[dict]:
        """One caption per image; every image is read first, so a bad one stops before any output."""
        import torch

        from s2sflow.core.generation.decoding import decode
        from s2sflow.kinds.captioning.lightning import generate_from_states
        from s2sflow.kinds.captioning.vision import load_pixels

        pixels = np.stack([load_pixels(p) for p in paths])
        torch.manual_seed(int(self.prep.get("decoding_seed", 1)))
        captions = []
        for start in range(0, len(paths), batch_size):
            (states,) = self.encoder.run(None, {"pixel_values": pixels[start:start + batch_size]})
            out = generate_from_states(self.net.net, torch.from_numpy(states), **{**self.prep["decoding"], **overrides})
            captions += decode(self.tokenizer, out)
        return [{"file": str(p), "caption": c} for p, c in zip(paths, captions)]


def predict(args: argparse.Namespace, export_dir: Path) -> None:

    if not args.inputs:
        raise S2SFlowError(f"give one or more image files, e.g. `s2sflow predict --task {args.task} photo.jpg`",
                           args.task)
    for pred in ExportedCaptioner(export_dir, args.task).predict([Path(p) for p in args.inputs]):
        print(json.dumps(pred, ensure_ascii=False) if args.json else
              (f"{pred['file']}\t{pred['caption']}" if len(args.inputs) > 1 else pred["caption"]))
