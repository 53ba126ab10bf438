"""Image captioning on the generation tasks' decoder: the frozen EfficientNet-Lite0 feature tokens
(computed once by the tokenize stage, see ``data.py``) are projected to ``d_model`` and read by
the same ``transformers`` mBART encoder-decoder the text-to-text kind uses (as ``inputs_embeds``: the
encoder's learned positions tell the grid cells apart), so ``generate()`` supplies greedy and beam
search. Here: the network, the Lightning DataModule and module (teacher forcing; validation loss,
perplexity and BLEU-4 of greedy captions of a fixed validation subset each epoch) and the COCO scores (BLEU-1..4
and CIDEr from pycocoevalcap against every reference). """

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from s2sflow.core.batching import BucketBatchSampler, TokenizedDataModule, load_examples, pad
from s2sflow.core.errors import S2SFlowError
from s2sflow.core.fsutil import read_json
from s2sflow.core.generation.config import Seq2SeqTrainConfig
from s2sflow.core.generation.decoding import IGNORE, decode, shift_right, token_losses
from s2sflow.core.generation.lightning import EncoderDecoderModule
from s2sflow.core.generation.model import bart_config, build_network
from s2sflow.kinds.captioning.data import SPLITS
from s2sflow.kinds.captioning.vision import FEATURE_DIM, IMAGE_SIZE


class CaptionNet(torch.nn.Module):
    """Feature tokens (B, T, 1280) -> dropout -> linear to ``d_model`` -> the mBART encoder-decoder."""

    def __init__(self, spec: dict):
        super().__init__()
        self.project = torch.nn.Sequential(torch.nn.Dropout(spec["bart"]["dropout"]),
                                           torch.nn.Linear(spec["feature_dim"], spec["bart"]["d_model"]))
        self.net = build_network(spec["bart"])

    def encode(self, features: torch.Tensor):
        return self.net.get_encoder()(inputs_embeds=self.project(features))

    def forward(self, features: torch.Tensor, decoder_input_ids: torch.Tensor) -> torch.Tensor:
        return self.net(encoder_outputs=self.encode(features), decoder_input_ids=decoder_input_ids).logits

    @torch.no_grad()
    def generate(self, features: torch.Tensor, **decoding) -> torch.Tensor:
        return generate_from_states(self.net, self.encode(features).last_hidden_state, **decoding)


def generate_from_states(net, states: torch.Tensor, **decoding) -> torch.Tensor:
    """``generate()`` from encoder states (torch's, or onnxruntime's image encoder output)."""
    from transformers.modeling_outputs import BaseModelOutput

    mask = torch.ones(states.shape[:2], dtype=torch.long)
    return net.generate(encoder_outputs=BaseModelOutput(last_hidden_state=states), attention_mask=mask, **decoding)


def caption_spec(tokenized_dir: Path, cfg: Seq2SeqTrainConfig) -> dict:
    """``shape: generation`` with ``modality: image``: the decoder's mBART config plus the image side."""
    meta = read_json(tokenized_dir / "meta.json")
    if cfg.model.max_positions < max(meta["feature_tokens"], meta["tokenize"]["max_target_length"]):
        raise S2SFlowError(f"params.yaml: train.model.max_positions ({cfg.model.max_positions}) must cover the "
                           f"{meta['feature_tokens']} feature tokens and tokenize.max_target_length")
    return {"shape": "generation", "modality": "image", "bart": bart_config(cfg.model, meta["vocab_size"]),
            "feature_dim": FEATURE_DIM, "feature_tokens": meta["feature_tokens"], "grid": meta["tokenize"]["grid"],
            "image_size": IMAGE_SIZE, "backbone": meta["backbone"],
            "max_target_length": meta["tokenize"]["max_target_length"]}


def load_features(path: Path) -> torch.Tensor:
    from safetensors.torch import load_file

    return load_file(str(path))["features"].float()


class CaptionDataModule(TokenizedDataModule):
    """One training example per caption (its image's feature tokens, its sub-tokens), in seeded
    length-bucketed batches; ``image_loader`` batches a split's images for decoding."""

    def prepare_data(self) -> None:
        missing = [s for s in SPLITS if not (self.tokenized_dir / "features" / f"{s}.safetensors").is_file()]
        if missing or not (self.tokenized_dir / "tokenizer.json").is_file():
            raise S2SFlowError(f"{self.tokenized_dir}: tokenized data incomplete; run `dvc repro tokenize@<task>`")

    def setup(self, stage: str | None = None) -> None:
        if not self.datasets:
            self.datasets = {s: load_examples(self.tokenized_dir / s) for s in SPLITS}
            self.features = {s: load_features(self.tokenized_dir / "features" / f"{s}.safetensors") for s in SPLITS}

    def collate(self, split: str):
        features = self.features[split]

        def collate(examples: list[dict]) -> dict:
            return {"features": features[[e["image"] for e in examples]],
                    "labels": pad([e["labels"] for e in examples], IGNORE)}
        return collate

    def train_dataloader(self) -> DataLoader:
        train = self.datasets["train"]
        sampler = BucketBatchSampler([len(e["labels"]) for e in train], self.batch_size, self.train_generator)
        return DataLoader(train, batch_sampler=sampler, collate_fn=self.collate("train"))

    def eval_loader(self, split: str) -> DataLoader:
        data = self.datasets[split]
        batches = [list(range(i, min(i + self.eval_batch_size, len(data))))
                   for i in range(0, len(data), self.eval_batch_size)]
        return DataLoader(data, batch_sampler=batches, collate_fn=self.collate(split))



def caption_losses(net: CaptionNet, batch: dict, label_smoothing: float):
    """(training loss with label smoothing, summed plain NLL, number of target tokens)."""
    return token_losses(net(batch["features"], shift_right(batch["labels"])), batch["labels"], label_smoothing)


@torch.no_grad()
def caption_images(net: CaptionNet, features: torch.Tensor, tokenizer, decoding: dict, batch_size: int,
                   progress: bool = False, desc: str = "caption") -> list[str]:
    """Captions of every image whose feature tokens are ``features``, in order."""
    was_training = net.training
    net.eval()
    starts = range(0, len(features), batch_size)
    if progress:
        from tqdm import tqdm

        starts = tqdm(starts, desc=desc, unit="batch")
    out = []
    for start in starts:
        out += decode(tokenizer, net.generate(features[start:start + batch_size], **decoding))
    net.train(was_training)
    return out


def coco_tokens(text: str) -> str:
    """The COCO caption evaluation's normalisation, in Python (no Java PTB tokenizer): lower case,
    punctuation dropped, words split at spaces; a trailing clitic ('s, n't) is its own token."""
    text = re.sub(r"([a-z])('s|n't|'re|'ve|'ll|'d|'m)\b", r"\1 \2", text.lower())
    return " ".join(re.findall(r"[a-z0-9]+|'[a-z]+|n't", text))


def coco_scores(hyps: list[str], refs: list[list[str]]) -> dict:
    """BLEU-1..4 (pycocoevalcap, closest reference length) and CIDEr (IDF from these references),
    0-1 and ~0-10 as in their papers."""
    import contextlib
    import io

    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider

    gts = {i: [coco_tokens(r) for r in rs] for i, rs in enumerate(refs)}
    res = {i: [coco_tokens(h) or "."] for i, h in enumerate(hyps)}
    with contextlib.redirect_stdout(io.StringIO()):  # pycocoevalcap prints its length statistics
        bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
        cider, _ = Cider().compute_score(gts, res)
    return {**{f"bleu{n}": round(float(b), 4) for n, b in enumerate(bleu, start=1)}, "cider": round(float(cider), 4)}


class CaptionModule(EncoderDecoderModule):
    """The captioning module: ``CaptionNet``; its validation score is the BLEU-4 of greedy captions of the
    first validation images against all their captions (``val_bleu4``)."""

    def build_net(self, spec: dict):
        return CaptionNet(spec)

    def losses(self, batch: dict, label_smoothing: float):
        return caption_losses(self.net, batch, label_smoothing)

    def validation_items(self) -> int:
        return len(self.trainer.datamodule.features["validation"])

    def log_generation_score(self, n: int) -> None:
        dm = self.trainer.datamodule
        refs: list[list[str]] = [[] for _ in range(n)]
        for e in dm.datasets["validation"]:
            if e["image"] < n:
                refs[e["image"]] += decode(self.tokenizer(), [[t for t in e["labels"] if t != IGNORE]])
        hyps = caption_images(self.net, dm.features["validation"][:n], self.tokenizer(),
                              {"num_beams": 1, "max_length": self.cfg.val_max_length}, dm.eval_batch_size)
        self.log("val_bleu4", coco_scores(hyps, refs)["bleu4"], prog_bar=True)


def load_caption_model(model_dir: Path, task: str) -> tuple[CaptionNet, dict]:
    from safetensors.torch import load_model

    if not (model_dir / "model.safetensors").is_file():
        raise S2SFlowError(f"{model_dir}/model.safetensors not found; run `dvc repro train@{task}` first", task)
    config = read_json(model_dir / "config.json")
    net = CaptionNet(config["spec"])
    load_model(net, str(model_dir / "model.safetensors"))
    return net.eval(), config
