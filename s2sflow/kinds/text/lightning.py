"""Lightning components for the text tasks: a DataModule over the tokenize stage's output (length-
bucketed, seeded batches) and one LightningModule per shape family, shared by every task of it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader

from s2sflow.core.batching import BucketBatchSampler, TokenizedDataModule, load_examples, pad
from s2sflow.core.config import PRECISIONS, ResumableConfig, TrainerConfig
from s2sflow.core.errors import S2SFlowError
from s2sflow.core.fsutil import read_json
from s2sflow.core.lightning import S2SModule
from s2sflow.core.optim import OptimizerConfig, SchedulerConfig
from s2sflow.core.params import from_dict, param
from s2sflow.core.train import bf16_autocast
from s2sflow.kinds.text.data import SPLITS
from s2sflow.kinds.text.model import EncoderConfig, HeadConfig, TextEncoderModel
from s2sflow.kinds.text.prepare import IGNORE


@dataclass
class TextTrainConfig(ResumableConfig):
    """``<task>.train`` for text tasks. ``epochs``, ``batch_size`` (train), ``eval_batch_size``;
    ``encoder``: scratch sizes (see EncoderConfig); ``head``: pooling (see HeadConfig);
    ``optimizer``/``scheduler``: as for MNIST (``linear``: warm up for ``pct_start`` of the steps, then
    decay linearly to 0); ``trainer``: as for MNIST, plus gradient clipping and accumulation.
    ``word_dropout`` (tagging): in training, each word is hidden with this probability (its sub-tokens
    become [UNK], its whole-word affix id 0), so the model learns to tag words it has never seen from
    their context and endings (0 = off). ``label_smoothing``: cross-entropy label smoothing for the
    classification and tagging heads (0 = off). ``precision``: ``32``, ``bf16`` (the training
    forward pass under bfloat16 autocast; weights, optimizer state, validation and the saved model
    stay float32) or ``auto`` (bf16 where the device has it natively), as for the generation tasks."""

    engine: str = "lightning"
    seed: int = param(1, ge=0)
    epochs: int = param(3, ge=1)
    batch_size: int = param(32, ge=1)
    eval_batch_size: int = param(128, ge=1)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    head: HeadConfig = field(default_factory=HeadConfig)
    optimizer: OptimizerConfig = field(default_factory=lambda: OptimizerConfig(name="adamw", lr=5e-5,
                                                                              weight_decay=0.01))
    scheduler: SchedulerConfig = field(default_factory=lambda: SchedulerConfig(name="linear", pct_start=0.1))
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    word_dropout: float = param(0.0, ge=0, lt=1)
    label_smoothing: float = param(0.0, ge=0, lt=1)
    precision: str = param("32", choices=PRECISIONS)


def parse_text_train_config(params: dict, task: str) -> TextTrainConfig:
    cfg = from_dict(TextTrainConfig, params, f"{task}.train")
    if cfg.engine != "lightning":
        raise S2SFlowError(f"params.yaml: {task}.train.engine '{cfg.engine}': text tasks train with lightning", task)
    return cfg


def collate(examples: list[dict]) -> dict[str, torch.Tensor]:
    batch = {"input_ids": pad([e["input_ids"] for e in examples], 0),
             "token_type_ids": pad([e["token_type_ids"] for e in examples], 0)}
    batch["attention_mask"] = (pad([[1] * len(e["input_ids"]) for e in examples], 0))
    if "case_ids" in examples[0]:
        batch["case_ids"] = pad([e["case_ids"] for e in examples], 0)
    if "affix_ids" in examples[0]:  # [sub-token][feature]: pad with all-zero rows
        none = [0] * len(examples[0]["affix_ids"][0])
        batch["affix_ids"] = pad([e["affix_ids"] for e in examples], none)
    if "word_first" in examples[0]:
        batch["word_first"] = pad([e["word_first"] for e in examples], 0)
        batch["word_last"] = pad([e["word_last"] for e in examples], 0)
    for key in examples[0]:
        if key.startswith("labels_"):
            batch[key] = pad([e[key] for e in examples], IGNORE)
    if "label" in examples[0]:
        value = examples[0]["label"]
        batch["label"] = torch.tensor([e["label"] for e in examples],
                                      dtype=torch.float32 if isinstance(value, float) else torch.long)
    return batch


class TextDataModule(TokenizedDataModule):
    def prepare_data(self) -> None:
        missing = [s for s in SPLITS if not (self.tokenized_dir / s).is_dir()]
        if missing or not (self.tokenized_dir / "labels.json").is_file():
            raise S2SFlowError(f"{self.tokenized_dir}: tokenized data incomplete; "
                               f"run `dvc repro tokenize@<task>` first")

    def setup(self, stage: str | None = None) -> None:
        if not self.datasets:
            self.datasets = {s: load_examples(self.tokenized_dir / s) for s in SPLITS}
            self.labels = read_json(self.tokenized_dir / "labels.json")

    def train_dataloader(self) -> DataLoader:
        train = self.datasets["train"]
        sampler = BucketBatchSampler([len(e["input_ids"]) for e in train], self.batch_size, self.train_generator)
        return DataLoader(train, batch_sampler=sampler, collate_fn=collate)

    def eval_loader(self, split: str) -> DataLoader:
        """In length order (fast; predictions are put back in dataset order by ``predict_split``)."""
        data = self.datasets[split]
        order = sorted(range(len(data)), key=lambda i: len(data[i]["input_ids"]))
        batches = [order[i:i + self.eval_batch_size] for i in range(0, len(order), self.eval_batch_size)]
        return DataLoader(data, batch_sampler=batches, collate_fn=collate)


def model_spec(tokenized_dir: Path, cfg: TextTrainConfig) -> dict:
    """Everything needed to rebuild the network (saved as models/<task>/config.json): the tokenize
    stage's choices (family, casing and affix features, label sets) and the train params' sizes."""
    from s2sflow.core.tokens import load_tokenizer
    from s2sflow.kinds.text.model import bert_config

    labels = read_json(tokenized_dir / "labels.json")
    meta = read_json(tokenized_dir / "meta.json")
    family = meta["tokenize"]["family"]
    shape = labels["shape"]
    if shape == "tagging":
        heads = {layer: len(values) for layer, values in labels["layers"].items()}
    elif shape == "classification":
        heads = {"label": len(labels["labels"])}
    else:
        heads = {"score": 1}
    tokenizer = load_tokenizer(tokenized_dir / "tokenizer.json")
    unk_id = tokenizer.token_to_id(getattr(tokenizer.model, "unk_token", None) or "[UNK]")
    return {"shape": shape, "family": family, "heads": heads, "unk_id": unk_id,
            "case_features": bool(meta["tokenize"]["case_features"]),
            "affixes": meta["tokenize"].get("affixes") or None,
            "lexicon": (read_json(tokenized_dir / "lexicon.json") if (tokenized_dir / "lexicon.json").is_file()
                        else None),
            "encoder": bert_config(family, meta["vocab_size"], cfg.encoder), "head": asdict(cfg.head),
            "labels": labels, "max_length": meta["tokenize"]["max_length"]}


def build_network(spec: dict) -> TextEncoderModel:
    return TextEncoderModel(spec["encoder"], spec["shape"], spec["heads"], from_dict(HeadConfig, spec["head"], "head"),
                            spec["case_features"], affixes=spec.get("affixes"))


def model_inputs(batch: dict) -> dict:
    keys = ("input_ids", "attention_mask", "token_type_ids", "case_ids", "affix_ids", "word_first", "word_last")
    return {k: batch[k] for k in keys if k in batch}


def hide_words(batch: dict, p: float, unk_id: int) -> dict:
    """``word_dropout``: a copy of a tagging batch with each word hidden with probability ``p`` (all its
    sub-tokens -> ``unk_id``, its whole-word affix id -> 0); special tokens and padding stay."""
    first, last = batch["word_first"], batch["word_last"]
    hidden = (torch.rand(first.shape) < p) & (first > 0)  # [batch, words]; first == 0: no sub-token
    positions = torch.arange(batch["input_ids"].size(1)).view(1, -1, 1)  # [1, tokens, 1]
    inside = (positions >= first.unsqueeze(1)) & (positions <= last.unsqueeze(1))  # [batch, tokens, words]
    tokens = (inside & hidden.unsqueeze(1)).any(-1)  # [batch, tokens]
    batch = dict(batch, input_ids=batch["input_ids"].masked_fill(tokens, unk_id))
    if "affix_ids" in batch:
        affix_ids = batch["affix_ids"].clone()
        affix_ids[..., 0] = affix_ids[..., 0].masked_fill(tokens, 0)
        batch["affix_ids"] = affix_ids
    return batch


class TextModule(S2SModule):
    """Sequence classification / regression, or token classification with one head per tag layer."""

    def __init__(self, config: dict, spec: dict, steps_per_epoch: int, load_pretrained: bool = False):
        super().__init__()
        self.save_hyperparameters(ignore=["load_pretrained"])
        self.cfg = from_dict(TextTrainConfig, config, "train")
        self.spec, self.shape, self.steps_per_epoch = spec, spec["shape"], steps_per_epoch
        self.net = build_network(spec)
        if load_pretrained:
            self.net.load_pretrained()
        lo, hi = (spec["labels"].get("score_range") or [0.0, 1.0])
        self.score_lo, self.score_span = float(lo), float(hi) - float(lo)
        self.loss_history: list[float] = []
        self._val: dict[str, list] = {}

    def forward(self, batch: dict) -> tuple[torch.Tensor, ...]:
        return self.net(**model_inputs(batch))

    def score(self, raw: torch.Tensor) -> torch.Tensor:
        """Regression output -> the score's own scale (targets are scaled to 0-1 for the loss)."""
        return self.score_lo + raw.squeeze(-1) * self.score_span

    def loss(self, outputs: tuple[torch.Tensor, ...], batch: dict) -> torch.Tensor:
        if self.shape == "tagging":
            losses = [F.cross_entropy(logits.flatten(0, 1), batch[f"labels_{name}"].flatten(), ignore_index=IGNORE,
                                      label_smoothing=self.cfg.label_smoothing)
                      for name, logits in zip(self.net.head_names, outputs)]
            return torch.stack(losses).sum()
        if self.shape == "regression":
            return F.mse_loss(outputs[0].squeeze(-1), (batch["label"] - self.score_lo) / self.score_span)
        return F.cross_entropy(outputs[0], batch["label"], label_smoothing=self.cfg.label_smoothing)

    def training_step(self, batch, batch_idx):
        if self.cfg.word_dropout and self.shape == "tagging" and self.spec.get("unk_id") is not None:
            batch = hide_words(batch, self.cfg.word_dropout, self.spec["unk_id"])
        bf16 = bf16_autocast(self.cfg.precision, self.device.type)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = self.loss(self(batch), batch)
        self.loss_history.append(loss.item())
        self.log("train_loss", loss, on_step=True, on_epoch=False, prog_bar=True, batch_size=len(batch["input_ids"]))
        return loss

    def validation_step(self, batch, batch_idx):
        from torchmetrics import MeanMetric
        from torchmetrics.classification import MulticlassAccuracy
        from torchmetrics.regression import PearsonCorrCoef

        if not self._val:  # metric objects per run, built lazily (they hold no parameters)
            self._val = {"loss": MeanMetric()}
            if self.shape == "regression":
                self._val["pearson"] = PearsonCorrCoef()
            else:
                for name, n in self.spec["heads"].items():
                    self._val[f"acc_{name}"] = MulticlassAccuracy(num_classes=n, average="micro", ignore_index=IGNORE)
        outputs = self(batch)
        self._val["loss"].update(self.loss(outputs, batch), weight=len(batch["input_ids"]))
        if self.shape == "regression":
            self._val["pearson"].update(self.score(outputs[0]), batch["label"])
        elif self.shape == "classification":
            self._val["acc_label"].update(outputs[0], batch["label"])
        else:
            for name, logits in zip(self.net.head_names, outputs):
                self._val[f"acc_{name}"].update(logits.flatten(0, 1), batch[f"labels_{name}"].flatten())

    def on_validation_epoch_end(self):
        """Whole-validation-set values, once per epoch."""
        for name, metric in self._val.items():
            key = "val_loss" if name == "loss" else f"val_{name}"
            self.log(key, metric.compute(), prog_bar=True)
            metric.reset()


@torch.no_grad()
def predict_split(net: TextEncoderModel, datamodule: TextDataModule, split: str) -> list[tuple[torch.Tensor, ...]]:
    """Per-example outputs of ``net`` on a split, in dataset order (each a tuple over heads)."""
    net.eval()
    out: dict[int, tuple] = {}
    loader = datamodule.eval_loader(split)
    for indices, batch in zip(loader.batch_sampler, loader):
        outputs = net(**model_inputs(batch))
        for row, i in enumerate(indices):
            out[i] = tuple(o[row] for o in outputs)
    return [out[i] for i in range(len(out))]
