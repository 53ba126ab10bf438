"""The pytorch/examples MNIST CNN: two conv layers, max-pool, dropout, two linear layers, log-softmax."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass
class CNNConfig:
    """Layer sizes; the defaults are pytorch/examples' (1.2M parameters)."""

    conv1_channels: int = 32
    conv2_channels: int = 64
    hidden: int = 128
    dropout1: float = 0.25
    dropout2: float = 0.5
    num_classes: int = 10


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
