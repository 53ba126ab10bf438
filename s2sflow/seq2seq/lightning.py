"""Lightning components for the generation tasks: a DataModule over the tokenize stage's output and
one LightningModule shared by every text-to-text task (teacher forcing in ``training_step``; loss and
perplexity in ``validation_step``; greedy decoding of a fixed validation subset scored with sacreBLEU
at each epoch end)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader

from s2sflow.errors import S2SFlowError
from s2sflow.params import from_dict
from s2sflow.seq2seq.data import SPLITS
from s2sflow.seq2seq.model import EOS, PAD, Seq2SeqModelConfig, bart_config, build_network
from s2sflow.text.lightning import BucketBatchSampler, TextDataModule, load_examples
from s2sflow.training.config import ResumableConfig, TrainerConfig
from s2sflow.training.lightning import S2SModule
from s2sflow.training.optim import OptimizerConfig, SchedulerConfig

IGNORE = -100


@dataclass
class Seq2SeqTrainConfig(ResumableConfig):
    """``<task>.train`` for generation tasks. ``model``: sizes (see Seq2SeqModelConfig);
    ``label_smoothing``: of the token cross-entropy; ``optimizer`` / ``scheduler`` as elsewhere
    (``linear``: warm up over ``pct_start`` of the optimizer steps, then decay to 0); ``trainer``:
    gradient clipping and accumulation among them. ``val_generate``: validation examples decoded
    greedily at each epoch end for ``val_bleu`` (0: none), up to ``val_max_length`` sub-tokens.
    ``precision``: ``32`` (float32 throughout) or ``bf16``: the training forward pass under bfloat16
    autocast (weights, gradients and optimizer state stay float32; validation, generation and the saved
    model are float32). On a CPU with AVX-512 BF16 a step takes about half the time; still bit-exact
    from run to run on the same machine."""

    engine: str = "lightning"
    seed: int = 1
    epochs: int = 10
    batch_size: int = 64
    eval_batch_size: int = 128
    model: Seq2SeqModelConfig = field(default_factory=Seq2SeqModelConfig)
    optimizer: OptimizerConfig = field(default_factory=lambda: OptimizerConfig(name="adamw", lr=1e-3,
                                                                              weight_decay=0.01))
    scheduler: SchedulerConfig = field(default_factory=lambda: SchedulerConfig(name="linear", pct_start=0.05))
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    label_smoothing: float = 0.1
    val_generate: int = 200
    val_max_length: int = 64
    precision: str = "32"

    def to_dict(self) -> dict:
        """``precision`` came later: it is saved only when not ``32``, so the models (and checkpoint
        keys) of float32 tasks have the same bytes as before."""
        out = super().to_dict()
        if out["precision"] == "32":
            del out["precision"]
        return out


def parse_train_config(params: dict, task: str) -> Seq2SeqTrainConfig:
    cfg = from_dict(Seq2SeqTrainConfig, params, f"{task}.train")
    if cfg.engine != "lightning":
        raise S2SFlowError(f"params.yaml: {task}.train.engine '{cfg.engine}': generation tasks train with lightning",
                           task)
    if cfg.precision not in ("32", "bf16"):
        raise S2SFlowError(f"params.yaml: {task}.train.precision '{cfg.precision}' is unknown; use 32 or bf16", task)
    if not 0.0 <= cfg.label_smoothing < 1.0:
        raise S2SFlowError(f"params.yaml: {task}.train.label_smoothing must be in [0, 1)", task)
    return cfg


def _pad(rows: list[list[int]], value: int) -> torch.Tensor:
    width = max((len(r) for r in rows), default=0) or 1
    return torch.tensor([r + [value] * (width - len(r)) for r in rows], dtype=torch.long)


def collate(examples: list[dict]) -> dict[str, torch.Tensor]:
    batch = {"input_ids": _pad([e["input_ids"] for e in examples], PAD),
             "attention_mask": _pad([[1] * len(e["input_ids"]) for e in examples], 0)}
    if "labels" in examples[0]:
        batch["labels"] = _pad([e["labels"] for e in examples], IGNORE)
    return batch


def shift_right(labels: torch.Tensor) -> torch.Tensor:
    """Decoder inputs for teacher forcing: the start token, then the target shifted one step."""
    out = labels.new_full(labels.shape, PAD)
    out[:, 1:] = labels[:, :-1].masked_fill(labels[:, :-1] == IGNORE, PAD)
    out[:, 0] = EOS  # BART starts decoding from </s>
    return out


class Seq2SeqDataModule(TextDataModule):
    """The text tasks' DataModule (seeded length-bucketed batches, resumable shuffling) over
    source/target pairs."""

    def prepare_data(self) -> None:
        missing = [s for s in SPLITS if not (self.tokenized_dir / s).is_dir()]
        if missing or not (self.tokenized_dir / "tokenizer.json").is_file():
            raise S2SFlowError(f"{self.tokenized_dir}: tokenized data incomplete; run `dvc repro gen_tokenize@<task>`")

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
            from s2sflow.text.encode import load_tokenizer

            self._tokenizer = load_tokenizer(self.trainer.datamodule.tokenized_dir / "tokenizer.json")
        return self._tokenizer


def decode(tokenizer, rows) -> list[str]:
    return [tokenizer.decode([int(t) for t in row], skip_special_tokens=True).strip() for row in rows]


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
    from s2sflow.fsutil import read_json

    meta = read_json(tokenized_dir / "meta.json")
    speakers = meta["tokenize"].get("speakers", "keep")  # anonymize: evaluate/predict restore the names
    return {"shape": "generation", "bart": bart_config(cfg.model, meta["vocab_size"]),
            "max_source_length": meta["tokenize"]["max_source_length"],
            "max_target_length": meta["tokenize"]["max_target_length"],
            **({"speakers": speakers} if speakers != "keep" else {})}
