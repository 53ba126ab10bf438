"""The captioning export stage: ``image_encoder.onnx`` (pixels -> encoder states, backbone included)
and ``decoder.onnx``, both checked against torch on real test images, the weights, tokenizer,
preprocessing and the model card."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from s2sflow.core.config import ExportConfig, parse_export_config
from s2sflow.core.errors import S2SFlowError
from s2sflow.core.fsutil import atomic_dir, read_json
from s2sflow.core.lineage import training_summary
from s2sflow.core.onnx import drop_local_paths
from s2sflow.core.params import param
from s2sflow.kinds.captioning.lightning import CaptionNet, generate_from_states, load_caption_model
from s2sflow.kinds.captioning.vision import IMAGE_SIZE


class ImageEncoderGraph(torch.nn.Module):
    """Pixels (B, 3, 224, 224) in [-1, 1] -> the mBART encoder's states: backbone, pooling, projection
    and encoder in one graph."""

    def __init__(self, net: CaptionNet, grid: int):
        super().__init__()
        from s2sflow.kinds.captioning.vision import ImageFeatures, load_backbone

        self.features, self.net = ImageFeatures(load_backbone(), grid).eval(), net

    def forward(self, pixel_values):
        return self.net.encode(self.features(pixel_values)).last_hidden_state


def export(task: str, params: dict, layout) -> dict:
    """``exports/<task>/``: model.safetensors (projection + encoder-decoder), image_encoder.onnx,
    decoder.onnx (both checked against torch on ``check_examples`` real test images), tokenizer,
    preprocessing (image size and scaling, decoding params) and the model card."""
    import logging
    import warnings

    import datasets
    import numpy as np
    import onnxruntime as ort

    from s2sflow.core.generation.config import parse_evaluate_config
    from s2sflow.core.generation.decoding import DECODER_INPUTS, DecoderGraph, save_weights
    from s2sflow.core.lineage import collect_lineage, finish_export
    from s2sflow.core.params import stage_params
    from s2sflow.kinds.captioning.vision import load_pixels

    cfg = parse_export_config(CaptionExportConfig, params, task)
    net, config = load_caption_model(layout.model, task)
    torch.set_num_threads(int(config["train"]["trainer"]["num_threads"]))
    decoding = parse_evaluate_config(stage_params(task, "evaluate", layout.params), task).decoding
    n_check, tolerance = cfg.check_examples, float(cfg.tolerance)
    split = read_json(layout.split / "split.json")
    datasets.disable_progress_bars()
    test = datasets.load_from_disk(str(layout.split / "test")).to_dict()
    images = [layout.raw / split["images"] / im for im in test["image"][:n_check]]
    if not images:
        raise S2SFlowError(f"{layout.split}/test is empty: nothing to check the ONNX graphs on", task)
    pixels = torch.from_numpy(np.stack([load_pixels(p) for p in images]))
    encoder, decoder = ImageEncoderGraph(net, config["spec"]["grid"]).eval(), DecoderGraph(net.net).eval()
    with torch.no_grad():
        states = encoder(pixels)
        # real caption prefixes to check the decoder on: the model's own greedy captions
        targets = generate_from_states(net.net, states, num_beams=1, max_length=12)
    card = collect_lineage(task, layout, "captioning", describe)
    card["data"] = fold_image_files(card["data"], split["images"])
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with atomic_dir(layout.export) as tmp:
        save_weights(net, tmp / "model.safetensors")
        mask = torch.ones(states.shape[:2], dtype=torch.long)
        batch, source, target = torch.export.Dim("batch"), torch.export.Dim("source"), torch.export.Dim("target")
        opset = cfg.opset
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(encoder, (pixels[:2],), str(tmp / "image_encoder.onnx"), input_names=["pixel_values"],
                              output_names=["encoder_hidden_states"], dynamic_shapes=({0: batch},),
                              opset_version=opset, dynamo=True, external_data=False, verbose=False)
            torch.onnx.export(decoder, (targets[:2], states[:2], mask[:2]), str(tmp / "decoder.onnx"),
                              input_names=DECODER_INPUTS, output_names=["logits"],
                              dynamic_shapes=({0: batch, 1: target}, {0: batch, 1: source}, {0: batch, 1: source}),
                              opset_version=opset, dynamo=True, external_data=False, verbose=False)
        for name in ("image_encoder.onnx", "decoder.onnx"):
            drop_local_paths(tmp / name)
        options = ort.SessionOptions()
        options.log_severity_level = 3
        enc = ort.InferenceSession(str(tmp / "image_encoder.onnx"), options, providers=["CPUExecutionProvider"])
        dec = ort.InferenceSession(str(tmp / "decoder.onnx"), options, providers=["CPUExecutionProvider"])
        (onnx_states,) = enc.run(None, {"pixel_values": pixels.numpy()})
        with torch.no_grad():
            logits = decoder(targets, states, mask)
        (onnx_logits,) = dec.run(None, {"decoder_input_ids": targets.numpy(), "encoder_hidden_states": onnx_states,
                                        "encoder_attention_mask": mask.numpy()})
        max_diff = max(float(np.abs(states.numpy() - onnx_states).max()),
                       float(np.abs(logits.numpy() - onnx_logits).max()))
        preprocessing = {
            "tokenizer": "tokenizer.json (HF tokenizers, byte-pair, Metaspace)", "shape": "generation",
            "input": {"mode": "image", "image_size": IMAGE_SIZE, "resize": "bicubic, to 224x224 (aspect not kept)",
                      "color": "RGB", "scale": "pixel / 127.5 - 1 (to [-1, 1])", "layout": "NCHW float32"},
            "decoding": decoding.generate_kwargs(), "decoding_seed": decoding.seed,
            "special_ids": {"pad": 0, "start": 1, "end": 2, "unknown": 3},
            "onnx": {"image_encoder.onnx": {"inputs": ["pixel_values"], "outputs": ["encoder_hidden_states"]},
                     "decoder.onnx": {"inputs": DECODER_INPUTS, "outputs": ["logits"],
                                      "note": "no key/value cache: feed the whole caption prefix each step, starting "
                                              "from the end token (id 2); encoder_attention_mask is all ones"}}}
        return finish_export(tmp, task, layout, card, ["model.safetensors", "image_encoder.onnx", "decoder.onnx"],
                             config, preprocessing, max_diff, tolerance,
                             f"{len(images)} test images (encoder states and teacher-forced decoder logits)")


def fold_image_files(data: dict, folder: str) -> dict:
    """The model card's data section with the image folder's thousands of file entries (hashes in
    ``data/raw/<task>/source.json``) folded into one count."""
    def image(name: str) -> bool:
        return name.startswith(folder.rstrip("/") + "/")

    files, origins = data["files"], data["origin"]["files"]
    where = sorted({str(Path(v).parent) for k, v in origins.items() if image(k)})
    return {**data, "files": {k: v for k, v in files.items() if not image(k)},
            "origin": {**data["origin"], "files": {**{k: v for k, v in origins.items() if not image(k)},
                                                   **({f"{folder}/*": where[0]} if len(where) == 1 else {})}},
            "images": {"folder": folder, "files": sum(map(image, files)),
                       "bytes": sum(v["bytes"] for k, v in files.items() if image(k))}}


@dataclass
class CaptionExportConfig(ExportConfig):
    check_examples: int = param(8, ge=1)


def describe(config: dict, train: dict) -> str:
    b, spec = config["spec"]["bart"], config["spec"]
    return (f"An image captioner: the frozen ImageNet-pretrained EfficientNet-Lite0 ({spec['backbone']}) gives "
            f"{spec['feature_tokens']} feature tokens per image (the whole-image mean and a {spec['grid']}x"
            f"{spec['grid']} grid of its last 1280-channel map), projected into an mBART encoder-decoder built from a "
            f"config and trained from scratch ({b['encoder_layers']}+{b['decoder_layers']} layers, d_model "
            f"{b['d_model']}, {b['decoder_attention_heads']} heads, a byte-pair caption vocabulary of "
            f"{b['vocab_size']:,} learnt on the train captions). {train['parameters']:,} trained parameters, "
            f"{training_summary(train)}.")
