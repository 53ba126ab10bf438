"""The export stage for generation tasks: safetensors weights (with the config to rebuild the
``transformers`` model), two ONNX graphs for onnxruntime (``encoder.onnx``: source -> hidden states;
``decoder.onnx``: target prefix + hidden states -> next-token logits, no cache) each checked against
torch on real test inputs, the tokenizer, the decoding params and a model card with lineage.
``s2sflow predict`` needs only this folder."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from s2sflow.core.config import ExportConfig, parse_export_config
from s2sflow.core.errors import S2SFlowError
from s2sflow.core.fsutil import atomic_dir, read_json
from s2sflow.core.generation.decoding import DECODER_INPUTS, ENCODER_INPUTS, DecoderGraph, EncoderGraph, shift_right
from s2sflow.core.lineage import collect_lineage, finish_export, training_summary
from s2sflow.core.onnx import drop_local_paths
from s2sflow.core.params import param

INPUT_MODES = ("text", "document", "dialogue")  # how `s2sflow predict` reads its inputs (export.input)
def export_graphs(net, batch: dict, folder, opset: int) -> None:
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    batch_dim, source, target = torch.export.Dim("batch"), torch.export.Dim("source"), torch.export.Dim("target")
    encoder, decoder = EncoderGraph(net).eval(), DecoderGraph(net).eval()
    with torch.no_grad():
        hidden = encoder(batch["input_ids"], batch["attention_mask"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(encoder, (batch["input_ids"], batch["attention_mask"]), str(folder / "encoder.onnx"),
                          input_names=ENCODER_INPUTS, output_names=["encoder_hidden_states"],
                          dynamic_shapes=({0: batch_dim, 1: source}, {0: batch_dim, 1: source}),
                          opset_version=opset, dynamo=True, external_data=False, verbose=False)
        torch.onnx.export(decoder, (shift_right(batch["labels"]), hidden, batch["attention_mask"]),
                          str(folder / "decoder.onnx"), input_names=DECODER_INPUTS, output_names=["logits"],
                          dynamic_shapes=({0: batch_dim, 1: target}, {0: batch_dim, 1: source},
                                          {0: batch_dim, 1: source}),
                          opset_version=opset, dynamo=True, external_data=False, verbose=False)
    for name in ("encoder.onnx", "decoder.onnx"):
        drop_local_paths(folder / name)


def check_graphs(net, folder, batch: dict) -> float:
    """Max |torch - onnxruntime| of the encoder states and of the teacher-forced decoder logits."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    enc = ort.InferenceSession(str(folder / "encoder.onnx"), options, providers=["CPUExecutionProvider"])
    dec = ort.InferenceSession(str(folder / "decoder.onnx"), options, providers=["CPUExecutionProvider"])
    decoder_ids = shift_right(batch["labels"])
    with torch.no_grad():
        hidden = EncoderGraph(net).eval()(batch["input_ids"], batch["attention_mask"])
        logits = DecoderGraph(net).eval()(decoder_ids, hidden, batch["attention_mask"])
    (onnx_hidden,) = enc.run(None, {"input_ids": batch["input_ids"].numpy(),
                                    "attention_mask": batch["attention_mask"].numpy()})
    (onnx_logits,) = dec.run(None, {"decoder_input_ids": decoder_ids.numpy(), "encoder_hidden_states": onnx_hidden,
                                    "encoder_attention_mask": batch["attention_mask"].numpy()})
    return max(float(np.abs(hidden.numpy() - onnx_hidden).max()), float(np.abs(logits.numpy() - onnx_logits).max()))


@dataclass
class Seq2SeqExportConfig(ExportConfig):
    """``input``: how ``s2sflow predict`` reads its inputs (``text``, ``document`` or ``dialogue``; null:
    ``dialogue`` for turn-format data, else ``text``)."""

    check_examples: int = param(32, ge=1)
    input: str | None = None


def describe(config: dict, train: dict) -> str:
    b = config["spec"]["bart"]
    return (f"An encoder-decoder Transformer (transformers' mBART classes: pre-layer-norm, built from a config, "
            f"trained from scratch with a byte-pair vocabulary of {b['vocab_size']:,} learnt on the train split): "
            f"{b['encoder_layers']}+{b['decoder_layers']} layers, d_model {b['d_model']}, "
            f"{b['encoder_attention_heads']} heads, tied embeddings. {train['parameters']:,} parameters, "
            f"{training_summary(train)}.")


def export(task: str, params: dict, layout) -> dict:

    from s2sflow.core.batching import load_examples
    from s2sflow.core.generation.config import parse_evaluate_config
    from s2sflow.core.generation.decoding import save_weights
    from s2sflow.core.params import stage_params
    from s2sflow.kinds.seq2seq.evaluate import load_seq2seq_model
    from s2sflow.kinds.seq2seq.lightning import collate

    cfg = parse_export_config(Seq2SeqExportConfig, params, task)
    net, config = load_seq2seq_model(layout.model, task)
    torch.set_num_threads(int(config["train"]["trainer"]["num_threads"]))
    decoding = parse_evaluate_config(stage_params(task, "evaluate", layout.params), task).decoding
    n_check, tolerance = cfg.check_examples, float(cfg.tolerance)
    test = load_examples(layout.tokenized / "test")[:n_check]
    if not test:
        raise S2SFlowError(f"{layout.tokenized}/test is empty: nothing to check the ONNX graphs on", task)
    split = stage_params(task, "split", layout.params)
    mode = cfg.input or ("dialogue" if split.get("format") == "turns" else "text")
    if mode not in INPUT_MODES:
        raise S2SFlowError(f"params.yaml: {task}.export.input '{mode}' is unknown; use {', '.join(INPUT_MODES)}", task)
    tokenize = read_json(layout.tokenized / "meta.json")["tokenize"]
    card = collect_lineage(task, layout, "seq2seq", describe)
    with atomic_dir(layout.export) as tmp:
        save_weights(net, tmp / "model.safetensors")
        export_graphs(net, collate(test[:2]), tmp, cfg.opset)
        max_diff = check_graphs(net, tmp, collate(test))
        preprocessing = {
            "tokenizer": "tokenizer.json (HF tokenizers, byte-pair, Metaspace)", "shape": "generation",
            "max_source_length": config["spec"]["max_source_length"],
            "truncation_side": tokenize.get("truncation_side", "right"),
            **({"speakers": tokenize["speakers"]} if tokenize.get("speakers", "keep") != "keep" else {}),
            "input": {"mode": mode, "context_turns": int(split.get("context_turns", 3)),
                      "turn_separator": split.get("turn_separator", " | ")},
            "decoding": decoding.generate_kwargs(),
            "decoding_seed": decoding.seed, "special_ids": {"pad": 0, "start": 1, "end": 2, "unknown": 3},
            "onnx": {"encoder.onnx": {"inputs": ENCODER_INPUTS, "outputs": ["encoder_hidden_states"]},
                     "decoder.onnx": {"inputs": DECODER_INPUTS, "outputs": ["logits"],
                                      "note": "no key/value cache: feed the whole target prefix each step, "
                                              "starting from the end token (id 2), BART's decoder start"}}}
        return finish_export(tmp, task, layout, card, ["model.safetensors", "encoder.onnx", "decoder.onnx"], config,
                             preprocessing, max_diff, tolerance,
                             f"{len(test)} test examples (encoder states and teacher-forced decoder logits)")
