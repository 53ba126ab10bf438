"""Lightning components for the generation tasks: a DataModule over the tokenize stage's output and
one LightningModule shared by every text-to-text task (teacher forcing in ``training_step``; loss and
perplexity in ``validation_step``; greedy decoding of a fixed validation subset scored with sacreBLEU
at each epoch end)."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader

from s2sflow.core.batching import BucketBatchSampler, TokenizedDataModule, load_examples, pad
from s2sflow.core.errors import S2SFlowError
from s2sflow.core.generation.config import Seq2SeqTrainConfig
from s2sflow.core.generation.decoding import IGNORE, decode, shift_right
from s2sflow.core.generation.model import PAD, bart_config, build_network
from s2sflow.core.lightning import S2SModule
from s2sflow.core.params import from_dict
from s2sflow.kinds.seq2seq.data import SPLITS


def collate(examples: list[dict]) -> dict[str, torch.Tensor]:
    batch = {"input_ids": pad([e["input_ids"] for e in examples], PAD),
             "attention_mask": pad([[1] * len(e["input_ids"]) for e in examples], 0)}
    if "labels" in examples[0]:
        batch["labels"] = pad([e["labels"] for e in examples], IGNORE)
    return batch


class Seq2SeqDataModule(TokenizedDataModule):
    """Seeded length-bucketed batches (resumable shuffling) over source/target pairs."""

    def prepare_data(self) -> None:
        missing = [s for s in SPLITS if not (self.tokenized_dir / s).is_dir()]
        if missing or not (self.tokenized_dir / "tokenizer.json").is_file():
            raise S2SFlowError(f"{self.tokenized_dir}: tokenized data incomplete; run `dvc repro tokenize@<task>`")

    def setup(self, stage: str | None = None) -> None:
        if not self.datasets:
            self.datasets = {s: load_examples(self.tokenized_dir / s) for s in SPLITS}

    def train_dataloader(self) -> DataLoader:
        train = self.datasets["train"]
        lengths = [len(e["input_ids"]) + len(e["labels"]) for e in train]
        return DataLoader(train, batch_sampler=BucketBatchSampler(lengths, self.batch_size, self.train_generator),
                          collate_fn=collate)

    def eval_loader(self, split: str, indices: list[int] | None = None) -> DataLoader:
        """Batches in length order (fast); ``batch_sampler`` gives each batch's dataset indices."""
        data = self.datasets[split]
        order = sorted(indices if indices is not None else range(len(data)), key=lambda i: len(data[i]["input_ids"]))
        batches = [order[i:i + self.eval_batch_size] for i in range(0, len(order), self.eval_batch_size)]
        return DataLoader(data, batch_sampler=batches, collate_fn=collate)


def token_losses(net, batch: dict, label_smoothing: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(training loss with label smoothing, summed plain NLL, number of target tokens)."""
    logits = net(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                 decoder_input_ids=shift_right(batch["labels"])).logits.float()  # float32 losses under autocast
    flat, target = logits.flatten(0, 1), batch["labels"].flatten()
    loss = F.cross_entropy(flat, target, ignore_index=IGNORE, label_smoothing=label_smoothing)
    nll = F.cross_entropy(flat, target, ignore_index=IGNORE, reduction="sum")
    return loss, nll, (target != IGNORE).sum()


class Seq2SeqModule(S2SModule):
    def __init__(self, config: dict, spec: dict, steps_per_epoch: int):
        super().__init__()
        self.save_hyperparameters()
        self.cfg = from_dict(Seq2SeqTrainConfig, config, "train")
        self.spec, self.steps_per_epoch = spec, steps_per_epoch
        self.net = build_network(spec["bart"])
        self.loss_history: list[float] = []
        self._nll, self._tokens = 0.0, 0
        self._tokenizer = None

    def training_step(self, batch, batch_idx):
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cfg.precision == "bf16"):
            loss, _, _ = token_losses(self.net, batch, self.cfg.label_smoothing)
        self.loss_history.append(loss.item())
        self.log("train_loss", loss, on_step=True, on_epoch=False, prog_bar=True, batch_size=len(batch["input_ids"]))
        return loss

    def validation_step(self, batch, batch_idx):
        _, nll, n = token_losses(self.net, batch, 0.0)
        self._nll += float(nll)
        self._tokens += int(n)

    def on_validation_epoch_end(self):
        """Loss and perplexity over every validation token, then sacreBLEU of greedy decodes of the first
        ``val_generate`` validation examples (a fixed subset: epochs compare)."""
        loss = self._nll / max(self._tokens, 1)
        self.log("val_loss", loss, prog_bar=True)
        self.log("val_ppl", math.exp(min(loss, 50.0)), prog_bar=True)
        self._nll, self._tokens = 0.0, 0
        dm = self.trainer.datamodule
        n = min(self.cfg.val_generate, len(dm.datasets["validation"])) if dm is not None else 0
        if n and not self.trainer.sanity_checking:
            import sacrebleu

            hyps, refs = generate_split(self.net, dm, "validation", self.tokenizer(), list(range(n)),
                                        {"num_beams": 1, "max_length": self.cfg.val_max_length})
            self.log("val_bleu", sacrebleu.corpus_bleu(hyps, [refs]).score, prog_bar=True)

    def tokenizer(self):
        if self._tokenizer is None:
            from s2sflow.core.tokens import load_tokenizer

            self._tokenizer = load_tokenizer(self.trainer.datamodule.tokenized_dir / "tokenizer.json")
        return self._tokenizer


@torch.no_grad()
def generate_split(net, datamodule: Seq2SeqDataModule, split: str, tokenizer, indices: list[int] | None,
                   decoding: dict, progress: bool = False) -> tuple[list[str], list[str]]:
    """Decoded outputs and decoded references of ``split`` (its ``indices``, in that order)."""
    was_training = net.training
    net.eval()
    data = datamodule.datasets[split]
    indices = list(range(len(data))) if indices is None else indices
    loader = datamodule.eval_loader(split, indices)
    out: dict[int, str] = {}
    batches = zip(loader.batch_sampler, loader)
    if progress:
        from tqdm import tqdm

        batches = tqdm(batches, total=len(loader.batch_sampler), desc=f"generate {split}", unit="batch")
    for ids, batch in batches:
        generated = net.generate(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], **decoding)
        for i, text in zip(ids, decode(tokenizer, generated)):
            out[i] = text
    net.train(was_training)
    refs = decode(tokenizer, [[t for t in data[i]["labels"] if t != IGNORE] for i in indices])
    return [out[i] for i in indices], refs


def model_spec(tokenized_dir: Path, cfg: Seq2SeqTrainConfig) -> dict:
    from s2sflow.core.fsutil import read_json

    meta = read_json(tokenized_dir / "meta.json")
    speakers = meta["tokenize"].get("speakers", "keep")  # anonymize: evaluate/predict restore the names
    return {"shape": "generation", "bart": bart_config(cfg.model, meta["vocab_size"]),
            "max_source_length": meta["tokenize"]["max_source_length"],
            "max_target_length": meta["tokenize"]["max_target_length"],
            **({"speakers": speakers} if speakers != "keep" else {})}
