"""MNIST's tokenize stage: images normalised with ``mean``/``std`` into tensors, saved once as
safetensors (what training and evaluation read)."""

from __future__ import annotations

from dataclasses import dataclass

from s2sflow.core.fsutil import atomic_dir, sha256_file, write_json
from s2sflow.core.params import fingerprint, from_dict, param


@dataclass
class TokenizeConfig:
    """``mean`` / ``std``: the normalisation of pixel values scaled to [0, 1]."""

    mean: float = 0.1307
    std: float = param(0.3081, gt=0)


def tokenize(task: str, params: dict, layout) -> dict:
    from s2sflow.kinds.mnist.data import SPLITS, load_split, save_tensors

    cfg = from_dict(TokenizeConfig, params, f"{task}.tokenize")
    mean, std = float(cfg.mean), float(cfg.std)
    with atomic_dir(layout.tokenized) as tmp:
        files = {}
        for name in SPLITS:
            save_tensors(load_split(layout.split / name), tmp / f"{name}.safetensors", mean, std)
            files[name] = sha256_file(tmp / f"{name}.safetensors")
        meta = {"task": task, "mean": mean, "std": std, "files_sha256": files, "fingerprint": fingerprint(files)}
        write_json(tmp / "meta.json", meta)
    return meta
