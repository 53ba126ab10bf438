"""The export stage: safetensors weights, an ONNX graph checked against torch with onnxruntime,
the preprocessing recipe, and a model card with lineage."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from s2sflow.core.config import parse_export_config
from s2sflow.core.fsutil import atomic_dir, read_json
from s2sflow.core.lineage import collect_lineage, finish_export, training_summary
from s2sflow.core.onnx import drop_local_paths
from s2sflow.core.params import param


def export_onnx(net: torch.nn.Module, path: Path, opset: int) -> None:
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    example = torch.zeros(2, 1, 28, 28)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net.eval(), (example,), str(path), input_names=["images"], output_names=["log_probs"],
                          dynamic_shapes=({0: torch.export.Dim("batch")},), opset_version=opset, dynamo=True,
                          external_data=False, verbose=False)
    drop_local_paths(path)


def check_onnx(net: torch.nn.Module, path: Path, images: torch.Tensor) -> float:
    """Max |torch - onnxruntime| of the log-probabilities on ``images``."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (onnx_out,) = session.run(None, {"images": images.numpy()})
    with torch.no_grad():
        torch_out = net.eval()(images).numpy()
    return float(np.abs(torch_out - onnx_out).max())


@dataclass
class MnistExportConfig:
    """``<task>.export``: ``opset``; ``tolerance`` of the onnxruntime check on ``check_images`` test images."""

    opset: int = param(18, ge=7, le=23)
    tolerance: float = param(1e-4, gt=0)
    check_images: int = param(100, ge=1)


def describe(config: dict, train: dict) -> str:
    return f"The pytorch/examples MNIST CNN ({train['parameters']:,} parameters), {training_summary(train)}."


def export(task: str, params: dict, layout) -> dict:
    from safetensors.torch import save_file

    from s2sflow.kinds.mnist.data import load_tensors
    from s2sflow.kinds.mnist.evaluate import load_classifier

    cfg = parse_export_config(MnistExportConfig, params, task)
    module, config = load_classifier(layout.model, task)
    net = module.net.eval()
    tokenize = read_json(layout.tokenized / "meta.json")
    test_images = load_tensors(layout.tokenized / "test.safetensors").tensors[0][: cfg.check_images]
    tolerance = float(cfg.tolerance)
    card = collect_lineage(task, layout, "mnist", describe)
    with atomic_dir(layout.export) as tmp:
        save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp / "model.safetensors"))
        export_onnx(net, tmp / "model.onnx", cfg.opset)
        max_diff = check_onnx(net, tmp / "model.onnx", test_images)
        preprocessing = {
            "input": "grayscale image, resized to 28x28, white digit on black (inverted when the background is light)",
            "scale": 1 / 255, "mean": tokenize["mean"], "std": tokenize["std"], "layout": "N,1,28,28 float32",
            "output": "log_probs (N,10): log-softmax over digits 0-9"}
        return finish_export(tmp, task, layout, card, ["model.safetensors", "model.onnx"], config, preprocessing,
                             max_diff, tolerance, f"{len(test_images)} test images")
