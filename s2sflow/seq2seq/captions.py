"""Image captioning data (Flickr8k-style): an image folder plus a captions CSV, split by image (never
by caption) with a seed, and the data contract the captioning task needs: every caption's image
exists, every image decodes and is RGB, no image is in two splits, no caption is empty.

``CaptionSplitConfig`` (``<task>.split``): ``images`` (the folder, relative to the downloaded data),
``captions`` (the CSV), ``image_column`` / ``caption_column`` (its header names), ``seed``,
``test_images`` / ``validation_images`` (how many images each held-out split gets; the rest train),
``max_caption_chars``, ``min_captions`` (per image).

Not wired into the pipeline yet: the captioning model (EfficientNet-Lite0 features + the seq2seq
decoder) is the next step (see the issue notes)."""

from __future__ import annotations

import csv
import io
import random
from dataclasses import dataclass
from pathlib import Path

from s2sflow.data.readers import _fail, _open_text
from s2sflow.errors import S2SFlowError

SPLITS = ("train", "validation", "test")


@dataclass
class CaptionSplitConfig:
    images: str = "images"
    captions: str = "captions.txt"
    image_column: str = "image"
    caption_column: str = "caption"
    seed: int = 42
    test_images: int = 500
    validation_images: int = 250
    max_caption_chars: int = 500
    min_captions: int = 1


def read_captions(raw_dir: Path, cfg: CaptionSplitConfig) -> dict[str, list[str]]:
    """Image file name -> its captions, in file order. One line per problem: a missing column, an
    empty or over-long caption, a caption whose image file is missing."""
    path, text = _open_text(Path(raw_dir) / cfg.captions)
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        raise S2SFlowError(f"{path}: empty captions file; expected a header with '{cfg.image_column}' and "
                           f"'{cfg.caption_column}'")
    header = rows[0]
    missing = [c for c in (cfg.image_column, cfg.caption_column) if c not in header]
    if missing:
        raise S2SFlowError(f"{path}: no column '{missing[0]}' (columns: {', '.join(header)}); set "
                           f"split.image_column / split.caption_column")
    i, j = header.index(cfg.image_column), header.index(cfg.caption_column)
    folder = Path(raw_dir) / cfg.images
    out: dict[str, list[str]] = {}
    for n, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        if len(row) != len(header):
            raise _fail(path, n, f"expected {len(header)} comma-separated columns, got {len(row)} (quote captions "
                                 f"that contain commas)")
        image, caption = row[i].strip(), " ".join(row[j].split())
        if not caption:
            raise _fail(path, n, f"empty caption for {image}")
        if len(caption) > cfg.max_caption_chars:
            raise _fail(path, n, f"caption has {len(caption)} characters, over split.max_caption_chars="
                                 f"{cfg.max_caption_chars}")
        if image not in out and not (folder / image).is_file():
            raise _fail(path, n, f"image {folder / image} not found; every caption's image must be in "
                                 f"{folder}")
        out.setdefault(image, []).append(caption)
    return out


def split_images(images: list[str], cfg: CaptionSplitConfig) -> dict[str, list[str]]:
    """Held-out test and validation images drawn with ``seed``; the rest train (each in file order)."""
    if cfg.test_images + cfg.validation_images >= len(images):
        raise S2SFlowError(f"split.test_images ({cfg.test_images}) + validation_images ({cfg.validation_images}) "
                           f"leave no training image out of {len(images)}")
    order = list(images)
    random.Random(cfg.seed).shuffle(order)
    test = set(order[:cfg.test_images])
    validation = set(order[cfg.test_images:cfg.test_images + cfg.validation_images])
    return {"train": [im for im in images if im not in test and im not in validation],
            "validation": [im for im in images if im in validation], "test": [im for im in images if im in test]}


def image_facts(path: Path) -> dict:
    """Whether the file decodes as an image, its mode and size (no exception escapes)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            return {"decodes": True, "mode": im.mode, "width": im.width, "height": im.height}
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return {"decodes": False, "mode": "", "width": 0, "height": 0}


def check_caption_contract(task: str, raw_dir: Path, splits: dict[str, list[str]],
                           captions: dict[str, list[str]], cfg: CaptionSplitConfig):
    """Great Expectations per split: image count, every image decodes and is RGB, at least
    ``min_captions`` captions each, and no image in a later split."""
    import logging

    import great_expectations as gx
    import pandas as pd

    from s2sflow.contracts.runner import validate_frame

    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    e = gx.expectations
    folder = Path(raw_dir) / cfg.images
    later = {"train": set(splits["validation"]) | set(splits["test"]), "validation": set(splits["test"]),
             "test": set()}
    frames = {}
    for name, images in splits.items():
        facts = [image_facts(folder / im) for im in images]
        frames[name] = pd.DataFrame({"image": images, "decodes": [f["decodes"] for f in facts],
                                     "mode": [f["mode"] for f in facts],
                                     "captions": [len(captions[im]) for im in images],
                                     "in_later_split": [im in later[name] for im in images]})

    def expectations(name: str) -> list:
        return [e.ExpectTableRowCountToBeBetween(min_value=1, max_value=None),
                e.ExpectColumnValuesToBeInSet(column="decodes", value_set=[True]),
                e.ExpectColumnValuesToBeInSet(column="mode", value_set=["RGB"]),
                e.ExpectColumnValuesToBeBetween(column="captions", min_value=cfg.min_captions, max_value=None),
                e.ExpectColumnValuesToBeInSet(column="in_later_split", value_set=[False])]

    report = validate_frame(task, {name: (frame, expectations(name)) for name, frame in frames.items()})
    bad = {name: frame.loc[~frame["decodes"] | (frame["mode"] != "RGB"), "image"].tolist()[:5]
           for name, frame in frames.items()}
    report.summary.update(images={n: len(v) for n, v in splits.items()},
                          captions={n: int(frames[n]["captions"].sum()) for n in splits},
                          undecodable_or_not_rgb={n: v for n, v in bad.items() if v})
    return report
