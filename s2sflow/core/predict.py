"""Predictions from an exported model (``exports/<task>/``) with onnxruntime: no training code needed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from s2sflow.core.errors import S2SFlowError
from s2sflow.core.fsutil import read_json


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


def onnx_session(path: Path):
    """An onnxruntime session on the CPU, with its warnings off."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class _ExportedModel:
    """An exported ``model.onnx`` with its ``preprocessing.json``, served by onnxruntime on the CPU."""

    def __init__(self, export_dir: Path, task: str):
        onnx_path = export_dir / "model.onnx"
        if not onnx_path.is_file():
            raise S2SFlowError(f"{onnx_path} not found; run `dvc repro export@{task}` (or `make run`) first", task)
        self.prep = read_json(export_dir / "preprocessing.json")
        self.session = onnx_session(onnx_path)


class ExportedImageClassifier(_ExportedModel):

    def predict(self, paths: list[Path], invert: str = "auto") -> list[ImagePrediction]:
        pixels = np.stack([load_image(p, invert) for p in paths])
        x = ((pixels - self.prep["mean"]) / self.prep["std"]).astype(np.float32)[:, None]
        (log_probs,) = self.session.run(None, {"images": x})
        probs = np.exp(log_probs.astype(np.float64))
        return [ImagePrediction(str(p), int(pr.argmax()), [round(float(v), 6) for v in pr])
                for p, pr in zip(paths, probs)]


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


class ExportedTextModel(_ExportedModel):
    """A text task's exported ONNX model with its tokenizer and label sets (``exports/<task>/``)."""

    def __init__(self, export_dir: Path, task: str):
        from s2sflow.kinds.text.encode import Encoder, load_tokenizer

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
            raise S2SFlowError(f"{weights} not found; run `dvc repro gen_export@{task}` (or `make run`) first", task)
        self.prep = read_json(export_dir / "preprocessing.json")
        config = read_json(export_dir / "config.json")
        self.net = build_network(config["spec"]["bart"])
        load_model(self.net, str(weights))
        self.net.eval()
        self.tokenizer = load_tokenizer(export_dir / "tokenizer.json")
        self.torch = torch

    def predict(self, sources: list[str], **overrides) -> list[dict]:
        from s2sflow.kinds.seq2seq.lightning import collate, decode
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


class ExportedCaptioner:
    """An exported captioning model (``exports/<task>/``): onnxruntime's ``image_encoder.onnx`` (the
    EfficientNet-Lite0 backbone, projection and encoder) gives the encoder states; the safetensors
    decoder, rebuilt into the ``transformers`` model, decodes them with ``generate()`` and the
    decoding params the export recorded."""

    def __init__(self, export_dir: Path, task: str):
        from safetensors.torch import load_model

        from s2sflow.kinds.captioning.lightning import CaptionNet
        from s2sflow.core.tokens import load_tokenizer

        graph, weights = export_dir / "image_encoder.onnx", export_dir / "model.safetensors"
        missing = next((p for p in (graph, weights) if not p.is_file()), None)
        if missing is not None:
            raise S2SFlowError(f"{missing} not found; run `dvc repro cap_export@{task}` (or `make run`) first", task)
        self.prep = read_json(export_dir / "preprocessing.json")
        self.net = CaptionNet(read_json(export_dir / "config.json")["spec"])
        load_model(self.net, str(weights))
        self.net.eval()
        self.encoder = onnx_session(graph)
        self.tokenizer = load_tokenizer(export_dir / "tokenizer.json")

    def predict(self, paths: list[Path], batch_size: int = 16, **overrides) -> list[dict]:
        """One caption per image; every image is read first, so a bad one stops before any output."""
        import torch

        from s2sflow.kinds.captioning.lightning import generate_from_states
        from s2sflow.kinds.seq2seq.lightning import decode
        from s2sflow.kinds.captioning.vision import load_pixels

        pixels = np.stack([load_pixels(p) for p in paths])
        torch.manual_seed(int(self.prep.get("decoding_seed", 1)))
        captions = []
        for start in range(0, len(paths), batch_size):
            (states,) = self.encoder.run(None, {"pixel_values": pixels[start:start + batch_size]})
            out = generate_from_states(self.net.net, torch.from_numpy(states), **{**self.prep["decoding"], **overrides})
            captions += decode(self.tokenizer, out)
        return [{"file": str(p), "caption": c} for p, c in zip(paths, captions)]
