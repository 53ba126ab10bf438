"""Checks ``s2sflow predict`` runs before a kind's predictor sees anything: the export folder holds
every file its model card lists, whole (JSON parses, ONNX graphs pass ``onnx.checker``, safetensors
headers and sizes agree), and no input image is larger than ``--max-pixels`` (a decompression bomb
stops with one line before any pixel is decoded). Nothing here depends on the task's kind: the card
names the files, and an input is an image when Pillow recognizes its header."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

from s2sflow.core.errors import S2SFlowError

# Pillow's own decompression-bomb threshold (it warns above this and refuses above twice it); here
# anything above it is refused, with the size in the message.
DEFAULT_MAX_PIXELS = 89_478_485


def _redo(task: str) -> str:
    return f"re-create it with `dvc checkout exports/{task}` or `dvc repro -f export@{task}`"


def _check_file(path: Path, task: str) -> None:
    """One export file is whole: it exists, and its format's own reader accepts it."""
    if not path.is_file():
        raise S2SFlowError(f"{path} is missing from the export folder; {_redo(task)}", task)
    problem = None
    if path.suffix == ".json":
        try:
            json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            problem = f"not valid JSON ({err.__class__.__name__})"
    elif path.suffix == ".onnx":
        import onnx

        try:
            onnx.checker.check_model(str(path))
        except Exception as err:  # noqa: BLE001 - onnx raises its own and protobuf's errors; all mean corrupt
            problem = f"not a valid ONNX graph ({err.__class__.__name__})"
    elif path.suffix == ".safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="numpy") as f:
                for name in f.keys():
                    f.get_slice(name)
        except Exception as err:  # noqa: BLE001 - SafetensorError and OSError: a truncated or garbled file
            problem = f"not a valid safetensors file ({err.__class__.__name__})"
    if problem:
        raise S2SFlowError(f"{path} is corrupt: {problem}; {_redo(task)}", task)


def check_export(export_dir: Path, task: str) -> dict:
    """The export's model card, after checking every file it lists; one line naming the first file
    that is missing or corrupt."""
    card_path = export_dir / "model_card.json"
    if not export_dir.is_dir():
        raise S2SFlowError(f"{export_dir} not found; run `dvc repro export@{task}` (or `make run`) first, or point "
                           f"--export-dir at an exported model folder", task)
    _check_file(card_path, task)
    card = json.loads(card_path.read_text(encoding="utf-8"))
    files = card.get("export", {}).get("files") if isinstance(card, dict) else None
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise S2SFlowError(f"{card_path} lists no export files (export.files); {_redo(task)}", task)
    for name in files:
        target = (export_dir / name).resolve()
        if export_dir.resolve() not in target.parents:
            raise S2SFlowError(f"{card_path}: export file '{name}' is outside the export folder", task)
        _check_file(export_dir / name, task)
    return card


def check_images(inputs: list[str], max_pixels: int, task: str) -> None:
    """Refuse any input file that Pillow recognizes as an image of more than ``max_pixels`` pixels,
    reading only its header; and make every later decode in this process refuse one too."""
    from PIL import Image, UnidentifiedImageError

    Image.MAX_IMAGE_PIXELS = max_pixels
    warnings.simplefilter("error", Image.DecompressionBombWarning)
    for name in inputs:
        path = Path(name)
        try:
            if not path.is_file():
                continue
        except OSError:  # a text too long to be a file name
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                Image.MAX_IMAGE_PIXELS = None  # read the header only; the size decides below
                with Image.open(path) as img:
                    width, height = img.size
        except (UnidentifiedImageError, OSError, ValueError):
            continue  # not an image (a text file for summarization): the predictor judges it
        finally:
            Image.MAX_IMAGE_PIXELS = max_pixels
        if width * height > max_pixels:
            raise S2SFlowError(f"{path}: image of {width}x{height} = {width * height:,} pixels is over the limit of "
                               f"{max_pixels:,}; resize it, or raise --max-pixels", task)
