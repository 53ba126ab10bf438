"""Typed params of the encoder-decoder kinds (text-to-text and captioning): training and decoding,
each field documented once, here."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from s2sflow.core.config import PRECISIONS, ResumableConfig, TrainerConfig
from s2sflow.core.errors import S2SFlowError
from s2sflow.core.generation.model import Seq2SeqModelConfig
from s2sflow.core.optim import OptimizerConfig, SchedulerConfig
from s2sflow.core.params import from_dict, param


@dataclass
class Seq2SeqTrainConfig(ResumableConfig):
    """``<task>.train`` for generation tasks. ``model``: sizes (see Seq2SeqModelConfig);
    ``label_smoothing``: of the token cross-entropy; ``optimizer`` / ``scheduler`` as elsewhere
    (``linear``: warm up over ``pct_start`` of the optimizer steps, then decay to 0); ``trainer``:
    gradient clipping and accumulation among them. ``val_generate``: validation examples decoded
    greedily at each epoch end for ``val_bleu`` (0: none), up to ``val_max_length`` sub-tokens.
    ``precision``: ``32`` (float32 throughout), ``bf16``: the training forward pass under bfloat16
    autocast (weights, gradients and optimizer state stay float32; validation, generation and the saved
    model are float32), or ``auto``: bf16 where the device computes it natively, else 32. On a CPU with
    AVX-512 BF16 a step takes about half the time; on one without (AVX2 only) torch emulates bfloat16
    and a step takes ~25x longer, so ``bf16`` is refused there (s2sflow.core.train.resolved_precision).
    Bit-exact from run to run on one machine type; train_summary.json records the precision used."""

    engine: str = "lightning"
    seed: int = param(1, ge=0)
    epochs: int = param(10, ge=1)
    batch_size: int = param(64, ge=1)
    eval_batch_size: int = param(128, ge=1)
    model: Seq2SeqModelConfig = field(default_factory=Seq2SeqModelConfig)
    optimizer: OptimizerConfig = field(default_factory=lambda: OptimizerConfig(name="adamw", lr=1e-3,
                                                                              weight_decay=0.01))
    scheduler: SchedulerConfig = field(default_factory=lambda: SchedulerConfig(name="linear", pct_start=0.05))
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    label_smoothing: float = param(0.1, ge=0, lt=1)
    val_generate: int = param(200, ge=0)
    val_max_length: int = param(64, ge=1)
    precision: str = param("32", choices=PRECISIONS)


def parse_train_config(params: dict, task: str) -> Seq2SeqTrainConfig:
    cfg = from_dict(Seq2SeqTrainConfig, params, f"{task}.train")
    if cfg.engine != "lightning":
        raise S2SFlowError(f"params.yaml: {task}.train.engine '{cfg.engine}': generation tasks train with lightning",
                           task)
    return cfg


@dataclass
class DecodingConfig:
    """``generate()`` settings: ``num_beams`` (1 = greedy), ``max_length`` (sub-tokens),
    ``length_penalty`` (beam scores divided by length ** penalty), ``no_repeat_ngram_size`` (0 = off),
    ``do_sample`` with ``top_k`` / ``top_p`` / ``temperature`` (``seed`` fixes the draw)."""

    num_beams: int = param(4, ge=1)
    max_length: int = param(64, ge=1)
    length_penalty: float = 1.0
    no_repeat_ngram_size: int = param(0, ge=0)
    do_sample: bool = False
    top_k: int = param(50, ge=0)
    top_p: float = param(1.0, gt=0, le=1)
    temperature: float = param(1.0, gt=0)
    seed: int = param(1, ge=0)

    def generate_kwargs(self) -> dict:
        out = {"num_beams": self.num_beams, "max_length": self.max_length, "length_penalty": self.length_penalty,
               "no_repeat_ngram_size": self.no_repeat_ngram_size, "do_sample": self.do_sample,
               "early_stopping": self.num_beams > 1}
        if self.do_sample:
            out.update(top_k=self.top_k, top_p=self.top_p, temperature=self.temperature)
        return out


@dataclass
class Seq2SeqEvaluateConfig:
    """``decoding``: see DecodingConfig. ``n_samples``: test items in samples.md. ``batch_size``:
    examples decoded at once. ``limit``: decode only the first N test items (null: all).
    ``also_decode``: other decodings to score the same way, ``{name: {decoding keys that differ}}``
    (e.g. ``greedy: {do_sample: false}``), reported as ``<name>_<metric>``; ``validation_items``: score
    the default and every ``also_decode`` setting on the first N validation items too (0: off), in
    ``reports/<task>/eval/decodings.md``, the place to choose the default decoding from."""

    decoding: DecodingConfig = field(default_factory=DecodingConfig)
    n_samples: int = param(20, ge=0)
    batch_size: int = param(64, ge=1)
    limit: int | None = param(None, ge=1)
    progress_bar: bool = True
    metrics: list = field(default_factory=lambda: ["sacrebleu"])
    group_references: bool = False
    extractive: dict | None = None
    extra: list = field(default_factory=list)
    also_decode: dict = field(default_factory=dict)
    validation_items: int = param(0, ge=0)

    def decodings(self, task: str) -> dict[str, DecodingConfig]:
        """The default decoding (``default``) and each ``also_decode`` one, checked like the default."""
        import re

        out = {"default": self.decoding}
        if not isinstance(self.also_decode, dict):
            raise S2SFlowError(f"params.yaml: {task}.evaluate.also_decode: expected a mapping name -> decoding keys, "
                               f"got {self.also_decode!r}", task)
        for name, override in self.also_decode.items():
            if not isinstance(override, dict):
                raise S2SFlowError(f"params.yaml: {task}.evaluate.also_decode.{name}: expected a mapping of decoding "
                                   f"keys (e.g. {{do_sample: false}}), got {override!r}", task)
            if not re.fullmatch(r"[a-z][a-z0-9_]{0,30}", str(name)) or name == "default":
                raise S2SFlowError(f"params.yaml: {task}.evaluate.also_decode name {name!r}: use lower-case letters, "
                                   f"digits and _ (not 'default')", task)
            out[name] = from_dict(DecodingConfig, {**asdict(self.decoding), **override},
                                  f"{task}.evaluate.also_decode.{name}")
        return out


METRIC_KINDS = ("sacrebleu", "rouge", "distinct", "perplexity")


def parse_evaluate_config(params: dict, task: str) -> Seq2SeqEvaluateConfig:
    cfg = from_dict(Seq2SeqEvaluateConfig, params, f"{task}.evaluate")
    unknown = [m for m in cfg.metrics if m not in METRIC_KINDS]
    if unknown or not cfg.metrics:
        raise S2SFlowError(f"params.yaml: {task}.evaluate.metrics {cfg.metrics}: use some of {', '.join(METRIC_KINDS)}",
                           task)
    if cfg.extractive is not None and int(cfg.extractive.get("sentences", 0)) < 1:
        raise S2SFlowError(f"params.yaml: {task}.evaluate.extractive.sentences must be >= 1", task)
    for d in cfg.decodings(task).values():
        check_decoding(d, task)
    return cfg


def check_decoding(d: DecodingConfig, task: str) -> None:
    if d.num_beams < 1 or d.max_length < 2 or not 0.0 < d.top_p <= 1.0 or d.top_k < 0 or d.temperature <= 0:
        raise S2SFlowError(f"params.yaml: {task}.evaluate.decoding {asdict(d)}: num_beams >= 1, max_length >= 2, "
                           f"0 < top_p <= 1, top_k >= 0 and temperature > 0", task)
