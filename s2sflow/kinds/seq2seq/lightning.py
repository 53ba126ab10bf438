"""Lightning components for the generation tasks: a DataModule over the tokenize stage's output and
one LightningModule shared by every text-to-text task (teacher forcing in ``training_step``; loss and
perplexity in ``validation_step``; greedy decoding of a fixed validation subset scored with sacreBLEU
at each epoch end)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import DataLoader

from s2sflow.core.batching import BucketBatchSampler, TokenizedDataModule, load_examples, pad
from s2sflow.core.errors import S2SFlowError
from s2sflow.core.generation.config import Seq2SeqTrainConfig
from s2sflow.core.generation.decoding import IGNORE, decode, shift_right, token_losses
from s2sflow.core.generation.lightning import EncoderDecoderModule
from s2sflow.core.generation.model import PAD, bart_config, build_network
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


def seq2seq_losses(net, batch: dict, label_smoothing: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(training loss with label smoothing, summed plain NLL, number of target tokens)."""
    logits = net(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                 decoder_input_ids=shift_right(batch["labels"])).logits
    return token_losses(logits, batch["labels"], label_smoothing)


class Seq2SeqModule(EncoderDecoderModule):
    """The text-to-text module: the mBART network; its validation score is sacreBLEU (``val_bleu``)."""

    def build_net(self, spec: dict):
        return build_network(spec["bart"])

    def losses(self, batch: dict, label_smoothing: float):
        return seq2seq_losses(self.net, batch, label_smoothing)

    def log_generation_score(self, n: int) -> None:
        import sacrebleu

        hyps, refs = generate_split(self.net, self.trainer.datamodule, "validation", self.tokenizer(),
                                    list(range(n)), {"num_beams": 1, "max_length": self.cfg.val_max_length})
        self.log("val_bleu", sacrebleu.corpus_bleu(hyps, [refs]).score, prog_bar=True)


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
