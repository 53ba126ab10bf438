"""The LightningModule the encoder-decoder kinds share: teacher forcing with label-smoothed cross-entropy
(optionally under bfloat16 autocast) in ``training_step``; loss and perplexity over every validation
token in ``validation_step`` / ``on_validation_epoch_end``, then the kind's score of greedy decodes of a
fixed validation subset. A kind supplies its network, its losses and that score."""

from __future__ import annotations

import math

import torch

from s2sflow.core.generation.config import Seq2SeqTrainConfig
from s2sflow.core.lightning import S2SModule
from s2sflow.core.params import from_dict
from s2sflow.core.train import bf16_autocast


class EncoderDecoderModule(S2SModule):
    def __init__(self, config: dict, spec: dict, steps_per_epoch: int):
        super().__init__()
        self.save_hyperparameters()
        self.cfg = from_dict(Seq2SeqTrainConfig, config, "train")
        self.spec, self.steps_per_epoch = spec, steps_per_epoch
        self.net = self.build_net(spec)
        self.loss_history: list[float] = []
        self._nll, self._tokens = 0.0, 0
        self._tokenizer = None

    def build_net(self, spec: dict) -> torch.nn.Module:
        raise NotImplementedError

    def losses(self, batch: dict, label_smoothing: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(training loss with label smoothing, summed plain NLL, number of target tokens)."""
        raise NotImplementedError

    def log_generation_score(self, n: int) -> None:
        """Decode the first ``n`` validation items greedily and log the kind's score of them."""
        raise NotImplementedError

    def validation_items(self) -> int:
        return len(self.trainer.datamodule.datasets["validation"])

    def training_step(self, batch, batch_idx):
        bf16 = bf16_autocast(self.cfg.precision, self.device.type)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bf16):
            loss, _, _ = self.losses(batch, self.cfg.label_smoothing)
        self.loss_history.append(loss.item())
        self.log("train_loss", loss, on_step=True, on_epoch=False, prog_bar=True, batch_size=len(batch["labels"]))
        return loss

    def validation_step(self, batch, batch_idx):
        _, nll, n = self.losses(batch, 0.0)
        self._nll += float(nll)
        self._tokens += int(n)

    def on_validation_epoch_end(self):
        """Loss and perplexity over every validation token, then the score of greedy decodes of the first
        ``val_generate`` validation items (a fixed subset: epochs compare)."""
        loss = self._nll / max(self._tokens, 1)
        self.log("val_loss", loss, prog_bar=True)
        self.log("val_ppl", math.exp(min(loss, 50.0)), prog_bar=True)
        self._nll, self._tokens = 0.0, 0
        n = min(self.cfg.val_generate, self.validation_items()) if self.trainer.datamodule is not None else 0
        if n and not self.trainer.sanity_checking:
            self.log_generation_score(n)

    def tokenizer(self):
        if self._tokenizer is None:
            from s2sflow.core.tokens import load_tokenizer

            self._tokenizer = load_tokenizer(self.trainer.datamodule.tokenized_dir / "tokenizer.json")
        return self._tokenizer
