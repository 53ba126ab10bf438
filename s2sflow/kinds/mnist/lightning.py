"""MNIST's LightningModule: the pytorch/examples CNN with torchmetrics accuracy, validation aggregated
once per epoch, and a test step whose outputs the evaluate stage reads."""

from __future__ import annotations

import torch
from torch.nn import functional as F
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from s2sflow.core.lightning import S2SModule
from s2sflow.core.params import from_dict
from s2sflow.kinds.mnist.config import TrainConfig
from s2sflow.kinds.mnist.model import MnistCNN


class MNISTClassifier(S2SModule):
    def __init__(self, config: dict, steps_per_epoch: int):
        super().__init__()
        self.save_hyperparameters()
        self.cfg = from_dict(TrainConfig, config, "train")
        self.steps_per_epoch = steps_per_epoch
        self.net = MnistCNN(self.cfg.model)
        n = self.cfg.model.num_classes
        self.val_acc = MulticlassAccuracy(num_classes=n, average="micro")
        self.val_loss = MeanMetric()
        self.test_acc = MulticlassAccuracy(num_classes=n, average="micro")
        self.test_class_acc = MulticlassAccuracy(num_classes=n, average=None)
        self.test_loss = MeanMetric()
        self.loss_history: list[float] = []
        self.test_outputs: list[tuple[torch.Tensor, torch.Tensor]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        logp = self.net(x)
        loss = F.nll_loss(logp, y)
        self.loss_history.append(loss.item())
        # the same per-step work as the plain loop (no train accuracy), so their wall times compare
        self.log("train_loss", loss, on_step=True, on_epoch=False, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logp = self.net(x)
        self.val_loss.update(F.nll_loss(logp, y, reduction="none"))
        self.val_acc.update(logp, y)

    def on_validation_epoch_end(self):
        """Aggregate the whole validation set once per epoch (not a mean of batch means)."""
        self.log("val_loss", self.val_loss.compute(), prog_bar=True)
        self.log("val_acc", self.val_acc.compute(), prog_bar=True)
        self.val_loss.reset()
        self.val_acc.reset()

    def test_step(self, batch, batch_idx):
        x, y = batch
        logp = self.net(x)
        self.test_loss.update(F.nll_loss(logp, y, reduction="none"))
        self.test_acc.update(logp, y)
        self.test_class_acc.update(logp, y)
        self.test_outputs.append((logp.detach(), y))

    def on_test_epoch_end(self):
        self.log("test_loss", self.test_loss.compute())
        self.log("test_acc", self.test_acc.compute())
