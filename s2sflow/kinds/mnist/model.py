"""The pytorch/examples MNIST CNN: two conv layers, max-pool, dropout, two linear layers, log-softmax."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from s2sflow.core.params import param


@dataclass
class CNNConfig:
    """Layer sizes; the defaults are pytorch/examples' (1.2M parameters)."""

    conv1_channels: int = param(32, ge=1)
    conv2_channels: int = param(64, ge=1)
    hidden: int = param(128, ge=1)
    dropout1: float = param(0.25, ge=0, lt=1)
    dropout2: float = param(0.5, ge=0, lt=1)
    num_classes: int = param(10, ge=2)


class MnistCNN(nn.Module):
    def __init__(self, config: CNNConfig):
        super().__init__()
        self.config = config
        self.conv1 = nn.Conv2d(1, config.conv1_channels, 3, 1)
        self.conv2 = nn.Conv2d(config.conv1_channels, config.conv2_channels, 3, 1)
        self.dropout1 = nn.Dropout(config.dropout1)
        self.dropout2 = nn.Dropout(config.dropout2)
        self.fc1 = nn.Linear(config.conv2_channels * 12 * 12, config.hidden)
        self.fc2 = nn.Linear(config.hidden, config.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, 28, 28) normalised images -> (N, classes) log-probabilities."""
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = self.dropout1(F.max_pool2d(x, 2))
        x = self.dropout2(F.relu(self.fc1(torch.flatten(x, 1))))
        return F.log_softmax(self.fc2(x), dim=1)
