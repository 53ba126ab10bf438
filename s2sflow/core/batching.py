"""Batches every kind shares: a tokenize stage's splits loaded as examples, seeded length-bucketed
batches, padding, and the DataModule skeleton whose shuffling state travels in checkpoints (an
interrupted run resumes with the same batches)."""

from __future__ import annotations

import math
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Sampler


class BucketBatchSampler(Sampler):
    """Shuffled batches of similar length: a seeded permutation, cut into chunks of ``bucket`` batches,
    each chunk sorted by length, and the batches shuffled again. Padding falls by ~2-3x on real text."""

    def __init__(self, lengths: list[int], batch_size: int, generator: torch.Generator, bucket: int = 50):
        self.lengths, self.batch_size, self.generator, self.bucket = lengths, batch_size, generator, bucket

    def __len__(self) -> int:
        return math.ceil(len(self.lengths) / self.batch_size)

    def __iter__(self):
        perm = torch.randperm(len(self.lengths), generator=self.generator).tolist()
        size = self.batch_size * self.bucket
        batches = []
        for start in range(0, len(perm), size):
            chunk = sorted(perm[start:start + size], key=lambda i: self.lengths[i])
            batches += [chunk[i:i + self.batch_size] for i in range(0, len(chunk), self.batch_size)]
        for i in torch.randperm(len(batches), generator=self.generator).tolist():
            yield batches[i]


def pad(rows: list[list], value) -> torch.Tensor:
    width = max((len(r) for r in rows), default=0) or 1
    return torch.tensor([r + [value] * (width - len(r)) for r in rows], dtype=torch.long)


def load_split(split_dir: Path):
    """A split saved with ``datasets.Dataset.save_to_disk``."""
    import datasets

    datasets.disable_progress_bars()
    return datasets.load_from_disk(str(split_dir))


def load_examples(split_dir: Path) -> list[dict]:
    ds = load_split(split_dir)
    columns = ds.to_dict()
    names = list(columns)
    return [dict(zip(names, values)) for values in zip(*(columns[n] for n in names))]


class TokenizedDataModule(pl.LightningDataModule):
    """A kind's DataModule over ``data/tokenized/<task>``: ``datasets`` per split, a seeded generator for
    the training order (saved in checkpoints: ``state_dict`` / ``load_state_dict``). Kinds add
    ``prepare_data``, ``setup``, ``train_dataloader`` and ``eval_loader``."""

    def __init__(self, tokenized_dir: str | Path, batch_size: int, eval_batch_size: int, seed: int):
        super().__init__()
        self.tokenized_dir = Path(tokenized_dir)
        self.batch_size, self.eval_batch_size, self.seed = batch_size, eval_batch_size, seed
        self.datasets: dict[str, list[dict]] = {}
        self.train_generator = torch.Generator().manual_seed(seed)

    def eval_loader(self, split: str) -> DataLoader:
        raise NotImplementedError

    def val_dataloader(self) -> DataLoader:
        return self.eval_loader("validation")

    def state_dict(self) -> dict:
        return {"train_generator": self.train_generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.train_generator.set_state(state["train_generator"])
