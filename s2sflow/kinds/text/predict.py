"""``s2sflow predict`` for text tasks: the exported ONNX encoder with its tokenizer and label sets:
a class, a pair's class or score, or each word's tags and the entities."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from s2sflow.core.errors import S2SFlowError
from s2sflow.core.predict import ExportedOnnxModel, stdin_lines


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _pad(rows: list[list]) -> np.ndarray:
    """Right-pad with 0 (with all-zero rows for per-token feature lists such as affix ids)."""
    width = max((len(r) for r in rows), default=0) or 1
    fill = [0] * len(rows[0][0]) if rows and rows[0] and isinstance(rows[0][0], list) else 0
    return np.array([r + [fill] * (width - len(r)) for r in rows], dtype=np.int64)


def entities(words: list[str], tags: list[str]) -> list[dict]:
    """IOB2 tags -> entity spans (an I- tag after O or another type starts a new entity, as seqeval's
    default mode reads it)."""
    spans, current = [], None
    for i, (word, tag) in enumerate(zip(words, tags)):
        prefix, _, kind = tag.partition("-")
        if prefix == "B" or (prefix == "I" and (current is None or current["type"] != kind)):
            current = {"type": kind, "text": word, "start": i, "end": i + 1}
            spans.append(current)
        elif prefix == "I":
            current["text"] += f" {word}"
            current["end"] = i + 1
        else:
            current = None
    return spans


class ExportedTextModel(ExportedOnnxModel):
    """A text task's exported ONNX model with its tokenizer and label sets (``exports/<task>/``)."""

    def __init__(self, export_dir: Path, task: str):
        from s2sflow.core.tokens import load_tokenizer
        from s2sflow.kinds.text.encode import Encoder

        super().__init__(export_dir, task)
        self.shape, self.labels = self.prep["shape"], self.prep["labels"]
        self.encoder = Encoder(load_tokenizer(export_dir / "tokenizer.json"), int(self.prep["max_length"]),
                               bool(self.prep["case_features"]), self.prep.get("affixes"), self.prep.get("lexicon"))

    def _run(self, encoded: dict) -> list[np.ndarray]:
        feed = {"input_ids": _pad(encoded["input_ids"]), "token_type_ids": _pad(encoded["token_type_ids"])}
        feed["attention_mask"] = _pad([[1] * len(ids) for ids in encoded["input_ids"]])
        for key in ("case_ids", "affix_ids", "word_first", "word_last"):
            if key in encoded:
                feed[key] = _pad(encoded[key])
        return self.session.run(None, {k: feed[k] for k in self.prep["inputs"]})

    def predict(self, texts: list[str], pairs: list[str] | None = None) -> list[dict]:
        from s2sflow.kinds.text.encode import compose_layers, split_words

        if self.shape == "tagging":
            sentences = [split_words(t) for t in texts]
            empty = [t for t, words in zip(texts, sentences) if not words]
            if empty:
                raise S2SFlowError(f"input {empty[0]!r} has no words to tag")
            outputs = self._run(self.encoder.encode_words(sentences))
            results = []
            for i, words in enumerate(sentences):
                head_tags = {head: [values[j] for j in out[i, :len(words)].argmax(-1)]
                             for (head, values), out in zip(self.labels["layers"].items(), outputs)}
                tags = compose_layers(head_tags, self.labels)
                result = {"text": texts[i], "words": words, "tags": tags}
                first = next(iter(tags.values()))
                if any(t.startswith(("B-", "I-")) for t in next(iter(self.labels["layers"].values()))):
                    result["entities"] = entities(words, first)
                results.append(result)
            return results
        if self.labels.get("pairs") and (pairs is None or any(not p.strip() for p in pairs)):
            raise S2SFlowError("this task reads sentence pairs: give two texts (`predict --task sts \"a\" \"b\"`), "
                               "or tab-separated pairs on stdin")
        if any(not t.strip() for t in texts):
            raise S2SFlowError("empty input text; give a non-empty sentence")
        (out,) = self._run(self.encoder.encode_pairs(texts, pairs or [""] * len(texts)))
        if self.shape == "regression":
            lo, hi = self.labels["score_range"]
            return [{"text_a": a, "text_b": b, "score": round(float(np.clip(lo + o[0] * (hi - lo), lo, hi)), 4)}
                    for a, b, o in zip(texts, pairs, out)]
        values, names = self.labels["labels"], self.labels.get("label_names") or {}
        probs = _softmax(out.astype(np.float64))
        return [{"text": t, **({"text_b": pairs[i]} if pairs and pairs[i] else {}),
                 "label": str(names.get(values[int(p.argmax())], values[int(p.argmax())])),
                 "probability": round(float(p.max()), 4),
                 "probabilities": {str(names.get(v, v)): round(float(x), 4) for v, x in zip(values, p)}}
                for i, (t, p) in enumerate(zip(texts, probs))]


def _format_text(pred: dict) -> str:
    if "score" in pred:
        return f"{pred['score']:.3f}\t{pred['text_a']}\t{pred['text_b']}"
    if "tags" in pred:
        layers = list(pred["tags"])
        words = " ".join(w + "/" + "|".join(pred["tags"][layer][i] for layer in layers)
                         for i, w in enumerate(pred["words"]))
        if "entities" in pred:
            found = "; ".join(f"{e['text']} ({e['type']})" for e in pred["entities"]) or "no entities"
            return f"{found}\t{words}"
        return words
    return f"{pred['label']}\t(p={pred['probability']:.3f})\t{pred['text']}"


def predict(args: argparse.Namespace, export_dir: Path) -> None:
    """Texts as arguments (pairs: two per pair) or one per stdin line (pairs tab-separated)."""

    model = ExportedTextModel(export_dir, args.task)
    pairs_task = bool(model.labels.get("pairs"))
    if args.inputs:
        if pairs_task:
            if len(args.inputs) % 2:
                raise S2SFlowError(f"task {args.task} scores sentence pairs: give an even number of texts "
                                   f"(\"a\" \"b\" ...)", args.task)
            texts, pairs = args.inputs[0::2], args.inputs[1::2]
        else:
            texts, pairs = list(args.inputs), None
    else:
        lines = stdin_lines(args.task)
        if pairs_task:
            bad = next((n for n, line in enumerate(lines, 1) if line.count("\t") != 1), None)
            if bad:
                raise S2SFlowError(f"stdin line {bad}: expected two tab-separated texts", args.task)
            texts, pairs = [line.split("\t")[0] for line in lines], [line.split("\t")[1] for line in lines]
        else:
            texts, pairs = lines, None
    for pred in model.predict(texts, pairs):
        print(json.dumps(pred, ensure_ascii=False) if args.json else _format_text(pred))
