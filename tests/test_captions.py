"""Captioning: the captions CSV reader and its one-line errors, the seeded split by image, the Great
Expectations contract (images decode and are RGB, none in two splits) on real image files, the COCO
scores, and a tiny real project (30 Flickr8k images) through the cap_* DVC stages, export and
`s2sflow predict` (good, corrupt and missing images)."""

import json
import shutil
import sys

import pytest
from PIL import Image

from conftest import dvc, make_project, project_env, run, tree_snapshot
from s2sflow.data.sources import read_checksums
from s2sflow.errors import S2SFlowError
from s2sflow.fsutil import read_json
from s2sflow.seq2seq.captioning import coco_scores, coco_tokens
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


@pytest.mark.e2e
def test_captioning_runs_through_the_cap_stages_and_captions_an_image(built_generation_project, text_mirror,
                                                                      tmp_path):
    p, env = built_generation_project, project_env(text_mirror)
    split = read_json(p / "data/split/captioning/split.json")
    assert split["sizes"] == {"train": 20, "validation": 4, "test": 6}
    meta = read_json(p / "data/tokenized/captioning/meta.json")
    assert meta["feature_tokens"] == 17 and meta["split"] == split["sizes"]
    m = read_json(p / "metrics/captioning.json")
    assert m["n_test"] == 6 and 0.0 <= m["bleu4"] <= m["bleu1"] <= 1.0 and 0.0 <= m["cider"] <= 10.0
    assert m["perplexity"] > 1.0
    rows = [json.loads(line) for line in (p / "reports/captioning/eval/predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and all(len(r["reference"]) == 5 for r in rows)  # every test image, all 5 captions
    test_images = set(read_json_rows(p, "test"))
    assert {r["image"] for r in rows} == test_images and not test_images & set(read_json_rows(p, "train"))
    assert "](../../data/raw/captioning/images/" in (p / "reports/captioning/samples.md").read_text()
    card = read_json(p / "exports/captioning/model_card.json")
    assert card["export"]["onnx_max_abs_diff"] <= 1e-4 and card["data"]["images"]["files"] == 30
    cli = [sys.executable, "-m", "s2sflow.cli", "predict", "--root", str(p), "--task", "captioning"]
    image = p / "data/raw/captioning/images" / rows[0]["image"]
    out = run(cli + ["--json", str(image), str(image)], p, env)
    preds = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(preds) == 2 and preds[0] == preds[1] and preds[0]["caption"].strip()
    beam = read_json(p / "exports/captioning/preprocessing.json")["decoding"]
    assert beam["num_beams"] == 2  # the evaluate params travel with the export
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(image.read_bytes()[:200])
    for bad, expected in ((corrupt, "corrupt.jpg: not a readable image"), (tmp_path / "nope.jpg",
                                                                           "nope.jpg: image not found")):
        proc = run(cli + [str(image), str(bad)], p, env, check=False)
        assert proc.returncode != 0 and proc.stdout == "" and "Traceback" not in proc.stderr
        ours = [line for line in proc.stderr.splitlines() if line.startswith("s2sflow")]
        assert len(ours) == 1 and expected in ours[0], proc.stderr


def read_json_rows(p, split):
    import datasets

    return datasets.load_from_disk(str(p / "data/split/captioning" / split))["image"]


@pytest.mark.e2e
def test_a_corrupt_image_stops_the_captioning_split_with_one_line(tmp_path, text_mirror):
    mirror = tmp_path / "mirror"
    shutil.copytree(text_mirror, mirror)
    images = sorted((mirror / "captioning/flickr8k/images").glob("*.jpg"))
    images[3].write_bytes(images[3].read_bytes()[:300])  # a truncated JPEG

    def unpin(params):  # the truncated file must reach the split stage's contract, not the download's sha256
        download = params["captioning"]["download"]
        download["files"] = [{"name": f["name"], "sha256": None} for f in download["files"]]

    p = make_project(tmp_path / "project", mirror, tasks=["mnist"], captioning=["captioning"], edit=unpin)
    before = tree_snapshot(p / "data/split")
    proc = dvc(["repro", "cap_split@captioning"], p, project_env(mirror), check=False)
    assert proc.returncode != 0
    ours = [line for line in (proc.stdout + proc.stderr).splitlines()
            if line.startswith("s2sflow: captioning:") and " done: " not in line]
    assert len(ours) == 1 and "data contract failed" in ours[0] and "decodes" in ours[0], ours
    assert tree_snapshot(p / "data/split") == before and not (p / "data/split/captioning").exists()


def test_download_globs_take_your_own_image_folder(tmp_path):
    from s2sflow.data.sources import download

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
