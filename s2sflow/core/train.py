"""The train stage's skeleton, the same for every kind: resume from a checkpoint of the same params and
data, fit (the kind's part), then write ``models/<task>/`` atomically and drop the checkpoints."""

from __future__ import annotations

import functools
import logging
import math
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytorch_lightning as pl
import torch

from s2sflow.core.config import ResumableConfig
from s2sflow.core.errors import S2SFlowError
from s2sflow.core.fsutil import atomic_dir, read_json, write_json

log = logging.getLogger("s2sflow.train")


def steps_per_epoch(cfg, n_train: int) -> int:
    steps = math.ceil(n_train / cfg.batch_size)
    return min(steps, cfg.trainer.limit_train_batches) if cfg.trainer.limit_train_batches else steps


def find_resume_checkpoint(ckpt_dir: Path) -> Path | None:
    """The newest checkpoint that loads; one cut short by a kill is removed and the next one tried."""
    if not ckpt_dir.is_dir():
        return None
    candidates = [ckpt_dir / "last.ckpt", ckpt_dir / "last.pt"]
    candidates += sorted(ckpt_dir.glob("epoch*.ckpt"), key=lambda p: p.stat().st_mtime, reverse=True)
    for path in candidates:
        if not path.is_file():
            continue
        try:
            torch.load(path, map_location="cpu", weights_only=True)  # no unpickling of objects
        except Exception as err:  # a truncated file from a killed run: not resumable
            log.warning("ignoring unreadable checkpoint %s (%s)", path, err.__class__.__name__)
            path.unlink(missing_ok=True)
            continue
        return path
    return None


def compute_platform(accelerator: str = "auto") -> dict:
    """What a fixed seed's bytes depend on beyond the code: torch picks CPU kernels by the instruction
    set it finds (``AVX512``, ``AVX2``, ...), so results are byte-identical only on one machine type;
    and the GPU, where one trained the model (GPU kernels are not bit-reproducible at all)."""
    on_gpu = training_device(accelerator) == "cuda"
    return {"cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "device": torch.cuda.get_device_name(0) if on_gpu else "cpu"}


def training_device(accelerator: str = "auto") -> str:
    """``cuda`` where Lightning will train on a GPU (accelerator auto/gpu/cuda and one exists), else ``cpu``."""
    return "cuda" if torch.cuda.is_available() and accelerator in ("auto", "gpu", "cuda") else "cpu"


@functools.cache
def native_bf16(device_type: str) -> bool:
    """Whether ``device_type`` computes bfloat16 natively. On a CPU that means AVX-512 BF16 or AMX:
    without them torch emulates bfloat16 and an autocast training step is ~25x slower than float32
    (measured on an AVX2-only EPYC: a 384x1536 linear layer's forward+backward, 3.84 s vs 0.14 s)."""
    if device_type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device_type != "cpu":
        return False
    cpu = getattr(torch._C, "_cpu", None)
    try:
        return bool(cpu._is_avx512_bf16_supported() or cpu._is_amx_tile_supported())
    except AttributeError:  # an older or different build: ask the kernel
        try:
            flags = Path("/proc/cpuinfo").read_text().split()
        except OSError:
            return False
        return "avx512_bf16" in flags or "amx_bf16" in flags


def resolved_precision(requested: str, device_type: str, task: str | None = None) -> str:
    """The precision a training runs in: ``32``; ``bf16`` (refused with one line where the device has
    no native bfloat16: it would be far slower, not faster); ``auto``: ``bf16`` where native, else ``32``.
    The model's train_summary.json and card record the result (results differ between the two)."""
    if requested == "32":
        return "32"
    native = native_bf16(device_type)
    if requested == "auto":
        return "bf16" if native else "32"
    if not native:
        where = f"{task}.train.precision" if task else "train.precision"
        raise S2SFlowError(f"params.yaml: {where} 'bf16': this {device_type.upper()} has no native bfloat16 "
                           f"(AVX-512 BF16 or AMX on a CPU), so autocast would make each step ~25x slower; use "
                           f"'auto' (bfloat16 only where native) or '32'", task)
    return "bf16"


def bf16_autocast(requested: str, device_type: str) -> bool:
    """Whether a training step runs under bfloat16 autocast (see resolved_precision)."""
    return resolved_precision(requested, device_type) == "bf16"


def seed_all(seed: int, num_threads: int) -> None:
    torch.set_num_threads(num_threads)
    pl.seed_everything(seed, workers=False, verbose=False)


def save_state_dict(net: torch.nn.Module, path: Path) -> None:
    from safetensors.torch import save_file

    save_file({k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}, str(path))


# fit(meta, ckpt_dir, live_dir, resume_from) -> (network, Lightning/plain fit summary, config.json record)
FitFn = Callable[[dict, Path, Path, Path | None], tuple[torch.nn.Module, dict, dict]]


def train_with_resume(task: str, cfg: ResumableConfig, tokenized_dir: Path, model_dir: Path, plots_dir: Path,
                      checkpoint_root: Path, fit: FitFn,
                      save: Callable[[torch.nn.Module, Path], None] = save_state_dict,
                      copy_tokenizer: bool = False, times_file: Path | None = None) -> dict:
    """Everything around a kind's ``fit``: checkpoints keyed by params and data (a run's own are
    dropped once it completes; those of other params are kept for them to resume; nothing is deleted
    before), the model folder (``model.safetensors`` by ``save``, ``config.json``,
    ``train_summary.json``, the tokenizer when ``copy_tokenizer``) and the training curves. Wall times
    (per epoch, whole fit) go to ``times_file``, outside the DVC outputs: a fixed seed gives the same
    model folder bytes from run to run on one machine type, however busy the machine was."""
    if not (tokenized_dir / "meta.json").is_file():
        raise S2SFlowError(f"{tokenized_dir}/meta.json not found; run `dvc repro tokenize@{task}` first", task)
    precision = resolved_precision(getattr(cfg, "precision", "32"), training_device(cfg.trainer.accelerator), task)
    meta = read_json(tokenized_dir / "meta.json")
    key = cfg.resume_key(meta["fingerprint"])
    ckpt_dir = checkpoint_root / task / key
    resume_from = find_resume_checkpoint(ckpt_dir)
    live_dir = ckpt_dir / "live"
    if resume_from is None:
        shutil.rmtree(live_dir, ignore_errors=True)
    else:
        print(f"s2sflow: {task}: resuming from {resume_from}", flush=True)
    started = time.perf_counter()
    net, fitted, config = fit(meta, ckpt_dir, live_dir, resume_from)
    summary = {
        "task": task, "engine": cfg.engine, "seed": cfg.seed, "epochs": cfg.epochs,
        "global_step": fitted["global_step"], "resumed_from": str(resume_from) if resume_from else None,
        "precision": precision, "final_metrics": fitted["final_metrics"], "num_threads": torch.get_num_threads(),
        **compute_platform(cfg.trainer.accelerator),
        "parameters": sum(p.numel() for p in net.parameters()),
    }
    if times_file is not None:
        write_json(times_file, {"task": task, "epoch_seconds": [round(s, 3) for s in fitted["epoch_seconds"]],
                                "fit_seconds": round(time.perf_counter() - started, 3)})
    with atomic_dir(model_dir) as tmp:
        save(net, tmp / "model.safetensors")
        write_json(tmp / "config.json", config)
        write_json(tmp / "train_summary.json", summary)
        if copy_tokenizer:
            shutil.copy(tokenized_dir / "tokenizer.json", tmp / "tokenizer.json")
    with atomic_dir(plots_dir) as tmp:  # the curves only: <split>/<metric>.tsv, as `dvc plots show` reads them
        if (live_dir / "plots" / "metrics").is_dir():
            shutil.copytree(live_dir / "plots" / "metrics", tmp, dirs_exist_ok=True)
    shutil.rmtree(ckpt_dir, ignore_errors=True)  # only now, with the model written
    others = [p for p in (checkpoint_root / task).glob("*") if p.is_dir()]
    if others:  # interrupted runs of other params or data: theirs to resume, so kept
        size = sum(f.stat().st_size for p in others for f in p.rglob("*") if f.is_file())
        print(f"s2sflow: {task}: kept the checkpoints of {len(others)} interrupted run(s) with other params in "
              f"{checkpoint_root / task} ({size / 1e6:.1f} MB): a run with those params resumes from them; delete "
              f"the folder to free the space", flush=True)
    return summary
