"""MNIST's typed training parameters (``mnist.train`` in params.yaml); each field documented once, here."""

from __future__ import annotations

from dataclasses import dataclass, field

from s2sflow.core.config import ResumableConfig, TrainerConfig
from s2sflow.core.optim import OptimizerConfig, SchedulerConfig
from s2sflow.kinds.mnist.model import CNNConfig

ENGINES = ("lightning", "pytorch")


@dataclass
class TrainConfig(ResumableConfig):
    """``engine``: lightning (the pipeline's) or pytorch (the plain loop, for comparison).
    ``seed`` seeds init, dropout and the shuffling order."""

    engine: str = "lightning"
    seed: int = 1
    epochs: int = 4
    batch_size: int = 64
    eval_batch_size: int = 1000
    model: CNNConfig = field(default_factory=CNNConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)

