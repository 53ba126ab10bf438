"""MNIST: raw IDX -> seeded 55,000/5,000 split + official test -> normalised tensors -> DataModule.

The split stage and ``MNISTDataModule.setup`` (when pointed at raw data) call the same
``split_train_validation``, so a split made outside DVC is the split DVC makes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader, TensorDataset

from s2sflow.core.errors import S2SFlowError
from s2sflow.kinds.mnist.idx import check_mnist_array, read_idx

RAW_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
SPLITS = ("train", "validation", "test")
NUM_CLASSES = 10


@dataclass
class ImageSplit:
    """Images (N, 28, 28) uint8, labels (N,) int64, and each image's index in its source file."""

    images: np.ndarray
    labels: np.ndarray
    source_index: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


def load_raw(raw_dir: str | Path, part: str) -> ImageSplit:
    """Read one official part ('train' or 'test') of the raw IDX files, checking shape and labels."""
    images_name, labels_name = RAW_FILES[part]
    images = read_idx(Path(raw_dir) / images_name, expect_ndim=3)
    labels = read_idx(Path(raw_dir) / labels_name, expect_ndim=1)
    check_mnist_array(images, False, str(Path(raw_dir) / images_name))
    check_mnist_array(labels, True, str(Path(raw_dir) / labels_name))
    if len(images) != len(labels):
        raise S2SFlowError(f"{Path(raw_dir) / labels_name}: {len(labels)} labels for {len(images)} images "
                           f"in {images_name}")
    return ImageSplit(np.asarray(images), labels.astype(np.int64), np.arange(len(labels), dtype=np.int64))


def split_train_validation(n: int, validation_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the train and validation parts: ``torch.utils.data.random_split`` with a seeded generator."""
    if not 0 < validation_size < n:
        raise S2SFlowError(f"params.yaml: split.validation_size={validation_size} must be between 1 and {n - 1}")
    train, validation = torch.utils.data.random_split(
        range(n), [n - validation_size, validation_size], generator=torch.Generator().manual_seed(seed))
    return np.asarray(train.indices, dtype=np.int64), np.asarray(validation.indices, dtype=np.int64)


def make_splits(raw_dir: str | Path, validation_size: int, seed: int) -> dict[str, ImageSplit]:
    full_train, test = load_raw(raw_dir, "train"), load_raw(raw_dir, "test")
    train_idx, val_idx = split_train_validation(len(full_train), validation_size, seed)

    def take(idx: np.ndarray) -> ImageSplit:
        return ImageSplit(full_train.images[idx], full_train.labels[idx], idx)

    return {"train": take(train_idx), "validation": take(val_idx), "test": test}


# ---- on-disk forms: HF datasets for splits, safetensors for the tokenized tensors ----

def _features():
    import datasets

    return datasets.Features({
        "image": datasets.Array2D((28, 28), "uint8"),
        "label": datasets.ClassLabel(names=[str(i) for i in range(NUM_CLASSES)]),
        "source_index": datasets.Value("int64"),
    })


def save_split(split: ImageSplit, path: Path) -> None:
    import datasets

    ds = datasets.Dataset.from_dict(
        {"image": split.images, "label": split.labels, "source_index": split.source_index}, features=_features())
    ds.save_to_disk(str(path))


def load_split(path: str | Path) -> ImageSplit:
    import datasets

    path = Path(path)
    if not path.is_dir():
        raise S2SFlowError(f"{path}: split not found; run `dvc repro split@mnist` first")
    ds = datasets.load_from_disk(str(path)).with_format("numpy")
    return ImageSplit(np.asarray(ds["image"][:], dtype=np.uint8), np.asarray(ds["label"][:], dtype=np.int64),
                      np.asarray(ds["source_index"][:], dtype=np.int64))


def normalize(images: np.ndarray, mean: float, std: float) -> torch.Tensor:
    """uint8 (N, 28, 28) -> float32 (N, 1, 28, 28), as torchvision's ToTensor + Normalize would."""
    x = torch.from_numpy(np.array(images, dtype=np.uint8)).to(torch.float32).div_(255.0)
    return x.sub_(mean).div_(std).unsqueeze(1)


def save_tensors(split: ImageSplit, path: Path, mean: float, std: float) -> None:
    save_file({"images": normalize(split.images, mean, std), "labels": torch.from_numpy(split.labels)}, str(path))


def load_tensors(path: str | Path) -> TensorDataset:
    tensors = load_file(str(path))
    return TensorDataset(tensors["images"], tensors["labels"])


class MNISTDataModule(pl.LightningDataModule):
    """Serves the tokenize stage's tensors; or, given ``raw_dir``, builds them in memory with the
    same split and normalisation functions the stages use (for work outside DVC).

    Each loader has its own seeded generator, so no loader draws from the global RNG (which dropout
    uses); the train generator's state is saved in checkpoints, so a resumed run sees the same order.
    """

    def __init__(self, tokenized_dir: str | Path | None = None, batch_size: int = 64, eval_batch_size: int = 1000,
                 seed: int = 0, raw_dir: str | Path | None = None, validation_size: int = 5000,
                 split_seed: int = 42, mean: float = 0.1307, std: float = 0.3081):
        super().__init__()
        if (tokenized_dir is None) == (raw_dir is None):
            raise ValueError("give exactly one of tokenized_dir or raw_dir")
        self.tokenized_dir = Path(tokenized_dir) if tokenized_dir else None
        self.raw_dir = Path(raw_dir) if raw_dir else None
        self.batch_size, self.eval_batch_size, self.seed = batch_size, eval_batch_size, seed
        self.validation_size, self.split_seed, self.mean, self.std = validation_size, split_seed, mean, std
        self.datasets: dict[str, TensorDataset] = {}
        self.train_generator = torch.Generator().manual_seed(seed)

    def prepare_data(self) -> None:
        if self.tokenized_dir is not None:
            missing = [s for s in SPLITS if not (self.tokenized_dir / f"{s}.safetensors").is_file()]
            if missing:
                raise S2SFlowError(f"{self.tokenized_dir}: no {missing[0]}.safetensors; run "
                                   "`dvc repro tokenize@mnist` first", "mnist")
        else:
            load_raw(self.raw_dir, "test")

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        if self.tokenized_dir is not None:
            self.datasets = {s: load_tensors(self.tokenized_dir / f"{s}.safetensors") for s in SPLITS}
        else:
            splits = make_splits(self.raw_dir, self.validation_size, self.split_seed)
            self.datasets = {s: TensorDataset(normalize(sp.images, self.mean, self.std), torch.from_numpy(sp.labels))
                             for s, sp in splits.items()}

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.datasets["train"], batch_size=self.batch_size, shuffle=True,
                          generator=self.train_generator)

    def _eval_loader(self, split: str) -> DataLoader:
        return DataLoader(self.datasets[split], batch_size=self.eval_batch_size, shuffle=False,
                          generator=torch.Generator().manual_seed(self.seed))

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("validation")

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test")

    def state_dict(self) -> dict:
        return {"train_generator": self.train_generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.train_generator.set_state(state["train_generator"])
