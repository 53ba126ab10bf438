"""Captioning: the captions CSV reader and its one-line errors, the seeded split by image, the Great
Expectations contract (images decode and are RGB, none in two splits) on real image files, the COCO
scores, checksum lists and download globs. The tiny-project e2e tests (stages, export, predict,
a corrupt image) are in test_generation_e2e.py, which shares one built project with dialogue and
summarization."""

import pytest
from PIL import Image

from s2sflow.core.errors import S2SFlowError
from s2sflow.core.sources import read_checksums
from s2sflow.kinds.captioning.data import CaptionSplitConfig, check_caption_contract, read_captions, split_images
from s2sflow.kinds.captioning.lightning import coco_scores, coco_tokens


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


def test_coco_tokens_and_scores_against_several_references():
    assert coco_tokens("A dog's ball, in the PARK.") == "a dog 's ball in the park"
    refs = [["A black dog runs on the grass .", "A dog is running .", "The black dog runs across a lawn ."],
            ["Two children play in the sand at the beach .", "Kids playing on a beach ."]]
    perfect = coco_scores([r[0] for r in refs], refs)
    assert perfect["bleu4"] > 0.99 and perfect["bleu1"] > 0.99 and perfect["cider"] > 1.0
    close = coco_scores(["a black dog runs on the lawn", "two kids play on the beach"], refs)
    unrelated = coco_scores(["a man rides a red bike", "an old car in the snow"], refs)
    assert perfect["bleu4"] > close["bleu4"] > unrelated["bleu4"] == 0.0
    assert perfect["cider"] > close["cider"] > unrelated["cider"] >= 0.0


def test_checksum_lists_name_their_files_and_bad_lines(tmp_path):
    good = tmp_path / "ok.sha256"
    good.write_text(f"{'a' * 64}  images/x.jpg\n\n{'b' * 64}  *images/y.jpg\n")
    assert [(f.name, f.sha256) for f in read_checksums(good, "captioning")] == [("images/x.jpg", "a" * 64),
                                                                             ("images/y.jpg", "b" * 64)]
    bad = tmp_path / "bad.sha256"
    bad.write_text(f"{'a' * 64}  images/x.jpg\nnot-a-hash images/y.jpg\n")
    with pytest.raises(S2SFlowError, match=r"bad\.sha256 line 2: expected `<64 hex digits>  <file name>`"):
        read_checksums(bad, "captioning")
    with pytest.raises(S2SFlowError, match="checksums .*nope.sha256: not found"):
        read_checksums(tmp_path / "nope.sha256", "captioning")


def test_download_globs_take_your_own_image_folder(tmp_path):
    from s2sflow.core.sources import download

    own = tmp_path / "own"
    own.mkdir()
    _images(own, ["b.jpg", "a.jpg"])
    (own / "captions.txt").write_text("image,caption\na.jpg,A dog .\nb.jpg,A cat .\n")
    params = {"files": [{"name": "captions.txt", "sha256": None}], "globs": ["images/*.jpg", "*.txt"],
              "sources": [{"folder": str(own)}]}
    record = download("captioning", params, tmp_path / "raw", progress=False)
    assert list(record["files"]) == ["captions.txt", "images/a.jpg", "images/b.jpg"]
    assert (tmp_path / "raw/images/a.jpg").read_bytes() == (own / "images/a.jpg").read_bytes()
    with pytest.raises(S2SFlowError, match=r"globs 'photos/\*\.png' matches no file"):
        download("captioning", {**params, "globs": ["photos/*.png"]}, tmp_path / "raw2", progress=False)
    assert not (tmp_path / "raw2").exists()
