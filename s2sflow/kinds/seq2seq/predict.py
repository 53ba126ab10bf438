"""``s2sflow predict`` for text-to-text tasks: the exported weights rebuilt into the ``transformers``
model, decoded with the exported decoding params: translate texts, summarize files, or chat."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from s2sflow.core.errors import S2SFlowError
from s2sflow.core.fsutil import read_json
from s2sflow.core.predict import stdin_lines


class ExportedGenerator:
    """An exported generation model (``exports/<task>/``): the safetensors weights rebuilt into the
    ``transformers`` model, decoded with ``generate()`` and the decoding params the export recorded
    (beam search, sampling). The ONNX encoder/decoder pair in the same folder serves onnxruntime users."""

    def __init__(self, export_dir: Path, task: str):
        import torch
        from safetensors.torch import load_model

        from s2sflow.core.generation.model import build_network
        from s2sflow.core.tokens import load_tokenizer

        weights = export_dir / "model.safetensors"
        if not weights.is_file():
            raise S2SFlowError(f"{weights} not found; run `dvc repro export@{task}` (or `make run`) first", task)
        self.prep = read_json(export_dir / "preprocessing.json")
        config = read_json(export_dir / "config.json")
        self.net = build_network(config["spec"]["bart"])
        load_model(self.net, str(weights))
        self.net.eval()
        self.tokenizer = load_tokenizer(export_dir / "tokenizer.json")
        self.torch = torch

    def predict(self, sources: list[str], **overrides) -> list[dict]:
        from s2sflow.core.generation.decoding import decode
        from s2sflow.kinds.seq2seq.lightning import collate
        from s2sflow.kinds.seq2seq.prepare import Seq2SeqTokenizeConfig, encode_pairs

        empty = next((n for n, s in enumerate(sources, 1) if not s.strip()), None)
        if empty:
            raise S2SFlowError(f"input {empty} is empty; give a non-empty text")
        cfg = Seq2SeqTokenizeConfig(max_source_length=int(self.prep["max_source_length"]),
                                    truncation_side=self.prep.get("truncation_side", "right"))
        texts = [s.strip() for s in sources]
        cast = [[] for _ in texts]
        if self.prep.get("speakers") == "anonymize":  # as in training: speakers' names -> #PersonN#, and back
            from s2sflow.kinds.seq2seq.speakers import anonymize, dialogue_speakers

            cast = [dialogue_speakers(t) for t in texts]
            texts = [anonymize(t, c) for t, c in zip(texts, cast)]
        encoded = encode_pairs(self.tokenizer, texts, None, cfg)
        batch = collate([{"input_ids": ids} for ids in encoded["input_ids"]])
        self.torch.manual_seed(int(self.prep.get("decoding_seed", 1)))
        with self.torch.no_grad():
            out = self.net.generate(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                    **{**self.prep["decoding"], **overrides})
        from s2sflow.kinds.seq2seq.speakers import restore

        return [{"source": s, "output": restore(text, c) if c else text}
                for s, c, text in zip(sources, cast, decode(self.tokenizer, out))]

    @property
    def input_mode(self) -> dict:
        return self.prep.get("input") or {"mode": "text"}

    def context(self, turns: list[str]) -> str:
        """A dialogue model's source: the last ``context_turns`` turns, joined as in training."""
        mode = self.input_mode
        return mode.get("turn_separator", " | ").join(turns[-int(mode.get("context_turns", 3)):])


def _read_documents(args: argparse.Namespace) -> list[str]:
    """``document`` input (summarization): each argument is a file holding one text; none: all of stdin."""
    if not args.inputs:
        return [sys.stdin.read()]
    docs = []
    for name in args.inputs:
        path = Path(name)
        if not path.is_file():
            raise S2SFlowError(f"{path}: file not found; `predict --task {args.task}` takes files to summarize "
                               f"(or the text on stdin)", args.task)
        try:
            docs.append(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError as err:
            raise S2SFlowError(f"{path}: not UTF-8 text (byte {err.start}); re-save it as UTF-8", args.task) from None
    return docs


def _chat(model, args: argparse.Namespace) -> None:
    """``dialogue`` input: given turns, print the next reply; none, an interactive loop on stdin
    (each line a turn; the model's replies join the context; an empty line or EOF ends it)."""
    if args.inputs:
        pred = model.predict([model.context(list(args.inputs))])[0]
        print(json.dumps(pred, ensure_ascii=False) if args.json else pred["output"])
        return
    interactive = sys.stdin.isatty()
    turns: list[str] = []
    while True:
        if interactive:
            print("you> ", end="", flush=True)
        line = sys.stdin.readline()
        if not line.strip():
            break
        turns.append(line.strip())
        pred = model.predict([model.context(turns)])[0]
        turns.append(pred["output"])
        print(json.dumps(pred, ensure_ascii=False) if args.json else
              (f"bot> {pred['output']}" if interactive else pred["output"]), flush=True)


def predict(args: argparse.Namespace, export_dir: Path) -> None:

    model = ExportedGenerator(export_dir, args.task)
    mode = model.input_mode["mode"]
    if mode == "dialogue":
        _chat(model, args)
        return
    sources = _read_documents(args) if mode == "document" else list(args.inputs) or stdin_lines(args.task)
    for pred in model.predict(sources):
        print(json.dumps(pred, ensure_ascii=False) if args.json else pred["output"])
