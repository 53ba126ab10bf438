"""Captioning data: the captions CSV reader and its one-line errors, the seeded split by image, and
the Great Expectations contract (images decode and are RGB, none in two splits) on real image files."""

import pytest
from PIL import Image

from s2sflow.errors import S2SFlowError
from s2sflow.seq2seq.captions import (CaptionSplitConfig, check_caption_contract, read_captions,
                                      split_images)


def _images(root, names, mode="RGB"):
    (root / "images").mkdir(exist_ok=True)
    for k, name in enumerate(names):
        Image.new(mode, (32, 24), color=(k * 20) % 255 if mode == "L" else ((k * 20) % 255, 10, 200)).save(
            root / "images" / name)


def test_captions_reader_groups_by_image_and_names_bad_lines(tmp_path):
    _images(tmp_path, ["a.jpg", "b.jpg"])
    csv = tmp_path / "captions.txt"
    csv.write_text('image,caption\na.jpg,A dog runs .\na.jpg,"A dog, running ."\nb.jpg,Two  cats .\n')
    assert read_captions(tmp_path, CaptionSplitConfig()) == {"a.jpg": ["A dog runs .", "A dog, running ."],
                                                             "b.jpg": ["Two cats ."]}
    csv.write_text("image,caption\na.jpg,A dog .\nc.jpg,A bird .\n")
    with pytest.raises(S2SFlowError, match=r"captions\.txt line 3: image .*c\.jpg not found"):
        read_captions(tmp_path, CaptionSplitConfig())
    csv.write_text("image,caption\na.jpg,  \n")
    with pytest.raises(S2SFlowError, match=r"captions\.txt line 2: empty caption for a\.jpg"):
        read_captions(tmp_path, CaptionSplitConfig())
    csv.write_text("file,text\na.jpg,A dog .\n")
    with pytest.raises(S2SFlowError, match=r"no column 'image' \(columns: file, text\)"):
        read_captions(tmp_path, CaptionSplitConfig())


def test_split_is_by_image_seeded_and_the_contract_catches_bad_images(tmp_path):
    names = [f"{k:02d}.jpg" for k in range(20)]
    _images(tmp_path, names)
    cfg = CaptionSplitConfig(test_images=5, validation_images=3, seed=7)
    splits = split_images(names, cfg)
    assert {k: len(v) for k, v in splits.items()} == {"train": 12, "validation": 3, "test": 5}
    assert splits == split_images(names, cfg) and splits != split_images(names, CaptionSplitConfig(
        test_images=5, validation_images=3, seed=8))
    assert not set(splits["train"]) & (set(splits["test"]) | set(splits["validation"]))
    captions = {n: ["A picture ."] * 5 for n in names}
    report = check_caption_contract("captioning", tmp_path, splits, captions, cfg)
    assert report.success and report.summary["captions"]["test"] == 25
    _images(tmp_path, [splits["test"][0]], mode="L")  # grayscale
    (tmp_path / "images" / splits["train"][0]).write_bytes(b"not a jpeg")  # corrupt
    report = check_caption_contract("captioning", tmp_path, splits, captions, cfg)
    assert not report.success
    assert report.summary["undecodable_or_not_rgb"] == {"train": [splits["train"][0]], "test": [splits["test"][0]]}
    with pytest.raises(S2SFlowError, match="leave no training image"):
        split_images(names, CaptionSplitConfig(test_images=15, validation_images=5))
