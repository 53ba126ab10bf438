"""MNIST's typed training parameters (``mnist.train`` in params.yaml); each field documented once, here."""

from __future__ import annotations

from dataclasses import dataclass, field

from s2sflow.core.config import ResumableConfig, TrainerConfig
from s2sflow.core.optim import OptimizerConfig, SchedulerConfig
from s2sflow.core.params import param
from s2sflow.kinds.mnist.model import CNNConfig

ENGINES = ("lightning", "pytorch")


@dataclass
class TrainConfig(ResumableConfig):
    """``engine``: lightning (the pipeline's) or pytorch (the plain loop, for comparison).
    ``seed`` seeds init, dropout and the shuffling order."""

    engine: str = param("lightning", choices=ENGINES)
    seed: int = param(1, ge=0)
    epochs: int = param(4, ge=1)
    batch_size: int = param(64, ge=1)
    eval_batch_size: int = param(1000, ge=1)
    model: CNNConfig = field(default_factory=CNNConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)

