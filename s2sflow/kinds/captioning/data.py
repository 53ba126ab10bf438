"""Image captioning data (Flickr8k-style): an image folder plus a captions CSV, split by image (never
by caption) with a seed, and the data contract the captioning task needs: every caption's image
exists, every image decodes and is RGB, no image is in two splits, no caption is empty.

``CaptionSplitConfig`` (``<task>.split``): ``images`` (the folder, relative to the downloaded data),
``captions`` (the CSV), ``image_column`` / ``caption_column`` (its header names), ``seed``,
``test_images`` / ``validation_images`` (how many images each held-out split gets; the rest train),
``max_caption_chars``, ``min_captions`` (per image).

The split stage (``run_caption_split``) writes ``data/split/<task>/<split>`` (one row per image: its
file name and captions) with the contract report; the tokenize stage (``run_caption_tokenize``)
trains the caption vocabulary on the train captions only and computes every image's feature tokens
once with the frozen EfficientNet-Lite0 (``features/<split>.safetensors``, float16), so training
never touches pixels."""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from pathlib import Path

from s2sflow.core.errors import S2SFlowError
from s2sflow.core.fsutil import atomic_dir, read_json, sha256_file, write_json
from s2sflow.core.params import fingerprint, from_dict, param, stage_params
from s2sflow.core.readers import csv_rows
from s2sflow.core.readers import fail as _fail
from s2sflow.core.readers import open_text as _open_text

SPLITS = ("train", "validation", "test")


@dataclass
class CaptionSplitConfig:
    images: str = "images"
    captions: str = "captions.txt"
    image_column: str = "image"
    caption_column: str = "caption"
    seed: int = param(42, ge=0)
    test_images: int = param(500, ge=1)
    validation_images: int = param(250, ge=1)
    max_caption_chars: int = param(500, ge=1)
    min_captions: int = param(1, ge=1)


def read_captions(raw_dir: Path, cfg: CaptionSplitConfig) -> dict[str, list[str]]:
    """Image file name -> its captions, in file order. One line per problem: a missing column, an
    empty or over-long caption, a caption whose image file is missing."""
    path, text = _open_text(Path(raw_dir) / cfg.captions)
    rows = [row for _, row in csv_rows(path, text)]
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

    from s2sflow.core.contracts import validate_frame

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


def parse_caption_split_config(params: dict, task: str) -> CaptionSplitConfig:
    cfg = from_dict(CaptionSplitConfig, params, f"{task}.split")
    return cfg


def run_caption_split(task: str, layout) -> dict:
    import datasets

    cfg = parse_caption_split_config(stage_params(task, "split", layout.params), task)
    if not (layout.raw / "source.json").is_file():
        raise S2SFlowError(f"{layout.raw}: no downloaded data; run `dvc repro download@{task}` first", task)
    captions = read_captions(layout.raw, cfg)
    splits = split_images(list(captions), cfg)
    report = check_caption_contract(task, layout.raw, splits, captions, cfg)
    report.raise_if_failed()
    datasets.disable_progress_bars()
    sizes = {name: len(images) for name, images in splits.items()}
    with atomic_dir(layout.split) as tmp:
        for name, images in splits.items():
            datasets.Dataset.from_dict({"image": images, "captions": [captions[im] for im in images]}).save_to_disk(
                str(tmp / name))
        write_json(tmp / "contract.json", report.to_dict())
        write_json(tmp / "split.json", {"task": task, "shape": "captioning", "sizes": sizes, "seed": cfg.seed,
                                        "images": cfg.images, "method": f"by image: {cfg.test_images} test and "
                                        f"{cfg.validation_images} validation images drawn with the seed"})
    return {"sizes": sizes, "contract_success": report.success, **report.summary}


@dataclass
class CaptionTokenizeConfig:
    """``<task>.tokenize`` for captioning: the caption vocabulary (``vocab_size``, ``min_frequency``,
    ``unicode_form``, ``lowercase``) trained on the train captions; ``max_target_length``: sub-tokens
    of a caption, end token included (``long_targets``: ``error`` names the split and image,
    ``truncate`` cuts training labels and counts them; scoring uses the whole reference); ``grid``:
    the feature map is pooled to grid x grid tokens (plus one whole-image token); ``batch_size``:
    images per backbone forward pass."""

    vocab_size: int = param(4000, ge=1)
    min_frequency: int = param(2, ge=1)
    unicode_form: str = "NFC"
    lowercase: bool = True
    max_target_length: int = param(40, ge=2)
    long_targets: str = "error"
    grid: int = param(4, ge=1)
    batch_size: int = param(32, ge=1)
    progress_bar: bool = True


def parse_caption_tokenize_config(params: dict, task: str) -> CaptionTokenizeConfig:
    cfg = from_dict(CaptionTokenizeConfig, params, f"{task}.tokenize")
    if cfg.long_targets not in ("error", "truncate"):
        raise S2SFlowError(f"params.yaml: {task}.tokenize.long_targets '{cfg.long_targets}' is unknown; use error or "
                           f"truncate", task)
    if not 1 <= cfg.grid <= 7 or cfg.max_target_length < 2 or cfg.batch_size < 1:
        raise S2SFlowError(f"params.yaml: {task}.tokenize: grid must be 1-7 (the feature map is 7x7), "
                           f"max_target_length >= 2, batch_size >= 1", task)
    return cfg


def encode_captions(tokenizer, images: list[str], captions: list[list[str]], cfg: CaptionTokenizeConfig,
                    where: str) -> tuple[dict, int]:
    """One example per caption: ``image`` (its image's row in the split) and ``labels`` (sub-token ids,
    end token last); returns (columns, how many were cut)."""
    from s2sflow.core.generation.tokenizer import GENERATION_SPECIALS

    eos = GENERATION_SPECIALS.index("</s>")
    rows = [(k, c) for k, caps in enumerate(captions) for c in caps]
    labels = [e.ids + [eos] for e in tokenizer.encode_batch_fast([c for _, c in rows])]
    cut = 0
    for n, ids in enumerate(labels):
        if len(ids) > cfg.max_target_length:
            if cfg.long_targets == "error":
                raise S2SFlowError(f"{where}: a caption of {images[rows[n][0]]} has {len(ids)} sub-tokens, over "
                                   f"tokenize.max_target_length={cfg.max_target_length}; raise the limit or set "
                                   f"long_targets: truncate ({rows[n][1][:60]!r})")
            labels[n], cut = ids[:cfg.max_target_length - 1] + [eos], cut + 1
    return {"image": [k for k, _ in rows], "labels": labels}, cut


def run_caption_tokenize(task: str, layout) -> dict:
    import datasets
    from safetensors.torch import save_file

    from s2sflow.core.generation.tokenizer import train_bpe
    from s2sflow.core.tokens import Ragged
    from s2sflow.kinds.captioning.vision import BACKBONE, image_features

    cfg = parse_caption_tokenize_config(stage_params(task, "tokenize", layout.params), task)
    if not (layout.split / "split.json").is_file():
        raise S2SFlowError(f"{layout.split}/split.json not found; run `dvc repro split@{task}` first", task)
    split_info = read_json(layout.split / "split.json")
    datasets.disable_progress_bars()
    data = {name: datasets.load_from_disk(str(layout.split / name)).to_dict() for name in SPLITS}
    tokenizer = train_bpe([c for caps in data["train"]["captions"] for c in caps], cfg.vocab_size,
                          cfg.min_frequency, cfg.unicode_form, cfg.lowercase)
    folder = layout.raw / split_info["images"]
    truncated = {}
    with atomic_dir(layout.tokenized) as tmp:
        tokenizer.save(str(tmp / "tokenizer.json"))
        (tmp / "features").mkdir()
        for name in SPLITS:
            images = data[name]["image"]
            columns, truncated[name] = encode_captions(tokenizer, images, data[name]["captions"], cfg,
                                                       f"{layout.split / name}")
            features = image_features([folder / im for im in images], cfg.grid, cfg.batch_size, cfg.progress_bar,
                                      desc=f"{task} {name} images")
            save_file({"features": features.half().contiguous()},
                      str(tmp / "features" / f"{name}.safetensors"))
            datasets.Dataset.from_dict({"image": columns["image"],
                                        "labels": Ragged.from_rows(columns["labels"]).to_arrow()}).save_to_disk(
                str(tmp / name))
        files = {str(p.relative_to(tmp)): sha256_file(p) for p in sorted(tmp.rglob("*")) if p.is_file()
                 and p.name != "state.json"}
        meta = {"task": task, "shape": "captioning", "tokenize": asdict(cfg),
                "vocab_size": tokenizer.get_vocab_size(), "tokenizer_sha256": files["tokenizer.json"],
                "backbone": BACKBONE, "feature_tokens": 1 + cfg.grid * cfg.grid, "truncated_targets": truncated,
                "split": split_info["sizes"], "files_sha256": files, "fingerprint": fingerprint(files)}
        write_json(tmp / "meta.json", meta)
    return {k: meta[k] for k in ("vocab_size", "feature_tokens", "truncated_targets", "tokenizer_sha256")}
