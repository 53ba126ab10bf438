"""Dialogue (DailyDialog turns -> reply), summarization (DialogSum dialogue -> summary) and captioning
(Flickr8k image -> caption): the dialogue/summary readers and their one-line errors, speaker-tag
naming, the scores (multi-reference ROUGE, distinct-n, the extractive baseline), and one tiny real
project with the three tasks through the DVC stages, export and `s2sflow predict`
(one file, so one xdist worker builds that project once)."""

import json
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from conftest import (
    assert_card_matches_lock,
    assert_edits_stale_only_their_kind,
    assert_gen_split_fails_cleanly,
    assert_imports_are_declared,
    dvc,
    make_project,
    open_in_chromium,
    project_env,
    run,
    tree_snapshot,
)
from s2sflow.core.errors import S2SFlowError
from s2sflow.core.fsutil import read_json
from s2sflow.core.generation.config import parse_train_config
from s2sflow.core.generation.decoding import scores
from s2sflow.core.train import native_bf16
from s2sflow.kinds.seq2seq.data import Seq2SeqSplitConfig, drop_shared_groups, read_jsonl, read_turns
from s2sflow.kinds.seq2seq.evaluate import extractive_summaries
from s2sflow.kinds.seq2seq.prepare import parse_tokenize_config
from s2sflow.kinds.seq2seq.speakers import (
    anonymize,
    dialogue_speakers,
    lowercase_words,
    names_used,
    replace_speaker_tags,
    restore,
)


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_also_decode_settings_are_checked_like_the_default():
    from s2sflow.core.generation.config import parse_evaluate_config

    cfg = parse_evaluate_config({"decoding": {"do_sample": True, "top_p": 0.9},
                                 "also_decode": {"greedy": {"do_sample": False}}}, "dialogue")
    decodings = cfg.decodings("dialogue")
    assert list(decodings) == ["default", "greedy"]
    assert decodings["greedy"].do_sample is False and decodings["greedy"].top_p == 0.9  # the rest inherited
    for bad, message in [({"Bad Name": {}}, r"also_decode name 'Bad Name'"),
                         ({"beam": {"num_beams": 0}}, r"also_decode\.beam\.num_beams"),
                         ({"beam": {"beams": 4}}, r"unknown key dialogue\.evaluate\.also_decode\.beam\.beams"),
                         ({"beam": 4}, r"also_decode\.beam: expected a mapping")]:
        with pytest.raises(S2SFlowError, match=message):
            parse_evaluate_config({"also_decode": bad}, "dialogue")


def test_turns_become_context_reply_pairs_and_bad_dialogues_are_one_line_errors(tmp_path):
    cfg = Seq2SeqSplitConfig(format="turns", context_turns=2, turn_separator=" | ")
    path = _write(tmp_path / "d.txt", "Hi , Tom . __eou__ Hello ! __eou__ How are you ? __eou__ Fine . __eou__\n\n"
                                      "Ready ? __eou__ Yes . __eou__\n")
    rows = read_turns(path, cfg)
    assert [(r["source"], r["target"]) for r in rows] == [
        ("Hi , Tom .", "Hello !"), ("Hi , Tom . | Hello !", "How are you ?"), ("Hello ! | How are you ?", "Fine ."),
        ("Ready ?", "Yes .")]
    assert len({r["group"] for r in rows[:3]}) == 1 and rows[3]["group"] != rows[0]["group"]
    _write(path, "Hi . __eou__ Hello . __eou__\nAlone . __eou__\n")
    with pytest.raises(S2SFlowError, match=r"d\.txt line 2: a dialogue needs at least two turns"):
        read_turns(path, cfg)
    _write(path, "Hi . __eou__  __eou__ Hello . __eou__\n")
    with pytest.raises(S2SFlowError, match=r"d\.txt line 1: turn 2 is empty"):
        read_turns(path, cfg)
    splits = {"train": rows, "validation": rows[3:], "test": []}
    assert drop_shared_groups(splits) == {"train": 1, "validation": 0} and len(splits["train"]) == 3


def test_json_arrays_python_literal_lines_and_malformed_records(tmp_path):
    cfg = Seq2SeqSplitConfig(format="jsonl", source="dialogue", target="summary")
    array = _write(tmp_path / "v.json", json.dumps([{"dialogue": "Ann: Hi.\nBob: Hello.", "summary": "They greet."}]))
    assert read_jsonl(array, cfg) == [{"source": "Ann: Hi.\nBob: Hello.", "target": "They greet."}]
    _write(array, '[{"dialogue": "Ann: Hi.", "summary": "x"},\n {"dialogue": "Bob"')
    with pytest.raises(S2SFlowError, match=r"v\.json line 2: not a JSON array of records"):
        read_jsonl(array, cfg)
    _write(array, '[{"dialogue": "Ann: Hi.", "summary": ""}]')
    with pytest.raises(S2SFlowError, match=r"v\.json record 1: empty target text"):
        read_jsonl(array, cfg)
    lines = _write(tmp_path / "t.jsonl", "{'dialogue': \"#Person1#: I'm Lucy.\\n#Person2#: Hi, Lucy.\", "
                                         "'summary': '#Person1# meets #Person2#.'}\n")
    with pytest.raises(S2SFlowError, match=r"t\.jsonl line 1: not a JSON record .*split\.python_literals: true"):
        read_jsonl(lines, cfg)
    cfg.python_literals, cfg.speaker_tags = True, "names"
    (row,) = read_jsonl(lines, cfg)
    first, second = (line.split(":")[0] for line in row["source"].splitlines())
    assert first == "Lucy" and second not in ("Lucy", "#Person2#")  # the dialogue's own name, then a pick
    assert row["target"] == f"Lucy meets {second}." and "#" not in row["source"]


def test_speaker_names_come_from_the_dialogue_and_are_consistent_and_deterministic():
    dialogue = ("#Person1#: Hello Mrs. Parker, how have you been?\n#Person2#: Hello Dr. Peters. Fine, thanks.\n"
                "#Person1#: Let's see your record.\n#Person3#: Sorry I'm late.")
    common = lowercase_words([dialogue, "sorry we are late, hello there"])
    assert names_used(dialogue, common) == {}  # three speakers: greetings are ambiguous, no self-introduction
    two = "\n".join(dialogue.splitlines()[:3])
    assert names_used(two, common) == {"2": "Mrs. Parker", "1": "Dr. Peters"}
    out = replace_speaker_tags(dialogue, "#Person1# checks #Person2#'s record; #Person3# is late.", common)
    assert out == replace_speaker_tags(dialogue, "#Person1# checks #Person2#'s record; #Person3# is late.", common)
    names = [line.split(":")[0] for line in out[0].splitlines()]
    assert len(set(names)) == 3 and names[0] == names[2]
    assert out[1] == f"{names[0]} checks {names[1]}'s record; {names[3]} is late."


def test_speakers_become_placeholders_for_the_model_and_get_their_names_back():
    dialogue = "Ms. Dawson: Stephen, a memo?\nStephen: Yes. Will you type Stephen's memo?\nMs. Dawson: Yes, Will.\n"
    cast = dialogue_speakers(dialogue)
    assert cast == ["Ms. Dawson", "Stephen"]
    hidden = anonymize(dialogue, cast)
    assert hidden == ("#Person1#: #Person2#, a memo?\n#Person2#: Yes. Will you type #Person2#'s memo?\n"
                      "#Person1#: Yes, Will.\n")  # whole names only, case-sensitive; "Will" is no speaker here
    assert restore(hidden, cast) == dialogue
    summary = anonymize("Stephen asks Ms. Dawson to type a memo; Dawson agrees.", cast)
    assert summary == "#Person2# asks #Person1# to type a memo; Dawson agrees."
    assert restore("#Person2# thanks #Person1# and #Person3#.", cast) == "Stephen thanks Ms. Dawson and #Person3#."
    assert dialogue_speakers("No turns here, just a text.") == [] and anonymize("Ann: hi", []) == "Ann: hi"
    many = "\n".join(f"P{k}: hi" for k in range(12))
    assert dialogue_speakers(many) == [f"P{k}" for k in range(9)]  # the tenth speaker on keeps its name


def test_precision_auto_follows_the_cpu_and_bf16_without_native_support_is_refused():
    """bfloat16 autocast is ~25x slower than float32 on a CPU without AVX-512 BF16 / AMX: ``auto`` takes
    it only where native, an explicit ``bf16`` there is one line before training."""
    from s2sflow.core.train import native_bf16, resolved_precision

    native = native_bf16("cpu")
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():  # torch's answer agrees with the kernel's flags
        flags = cpuinfo.read_text().split()
        assert native == ("avx512_bf16" in flags or "amx_bf16" in flags)
    assert resolved_precision("32", "cpu") == "32"
    assert resolved_precision("auto", "cpu") == ("bf16" if native else "32")
    if native:
        assert resolved_precision("bf16", "cpu", "t") == "bf16"
    else:
        with pytest.raises(S2SFlowError, match=r"t.train.precision 'bf16': this CPU has no native bfloat16 .* "
                                               r"use 'auto' \(bfloat16 only where native\) or '32'"):
            resolved_precision("bf16", "cpu", "t")


def test_speakers_and_precision_params_are_checked_and_recorded_only_when_set():
    assert "speakers" not in parse_tokenize_config({}, "t").record()  # earlier tasks' meta.json keeps its bytes
    assert parse_tokenize_config({"speakers": "anonymize"}, "t").record()["speakers"] == "anonymize"
    with pytest.raises(S2SFlowError, match="tokenize.speakers 'names' is unknown; use keep or anonymize"):
        parse_tokenize_config({"speakers": "names"}, "t")
    assert "precision" not in parse_train_config({}, "t").to_dict()
    assert parse_train_config({"precision": "bf16"}, "t").to_dict()["precision"] == "bf16"
    with pytest.raises(S2SFlowError, match="train.precision: '16' is unknown; allowed: one of 32, bf16, auto"):
        parse_train_config({"precision": "16"}, "t")
    with pytest.raises(S2SFlowError, match=r"train.precision: 32 is not a string \(quote it in the YAML: '32'\)"):
        parse_train_config({"precision": 32}, "t")
    from s2sflow.kinds.text.lightning import parse_text_train_config
    assert "precision" not in parse_text_train_config({}, "t").to_dict()  # float32 text models keep their bytes
    assert parse_text_train_config({"precision": "bf16"}, "t").to_dict()["precision"] == "bf16"
    with pytest.raises(S2SFlowError, match="train.precision: 'fp8' is unknown"):
        parse_text_train_config({"precision": "fp8"}, "t")


def test_scores_rouge_over_several_references_distinct_n_and_the_extractive_baseline():
    refs = [["Ann greets Bob.", "Bob and Ann say hello."], ["They buy a car."]]
    perfect = scores(["Ann greets Bob.", "They buy a car."], refs, ["rouge", "sacrebleu"])[0]
    assert perfect["rougeL_max"] == 1.0 and 0.5 < perfect["rougeL"] < 1.0 and perfect["bleu"] == 100.0
    assert scores(["Cats sleep.", "Dogs run."], refs, ["rouge"])[0]["rougeL"] == 0.0
    d = scores(["a b a b", "a b c"], [["x"], ["y"]], ["distinct"])[0]
    assert d == {"distinct_1": round(3 / 7, 4), "distinct_2": round(3 / 5, 4)}
    doc = "Ann: I want a red car.\nBob: Red cars are fast. The car is cheap.\nAnn: OK."
    (summary,) = extractive_summaries([doc], [doc, "Some other text about a boat."], 2)
    parts = ["Ann: I want a red car.", "Bob: Red cars are fast.", "The car is cheap.", "Ann: OK."]
    chosen = [p for p in parts if p in summary]
    assert len(chosen) == 2 and summary == " ".join(chosen)  # two whole sentences, in the source's order


@pytest.mark.e2e
def test_summarization_scores_against_every_reference_with_a_baseline_and_samsum(built_generation_project,
                                                                                text_mirror, tmp_path):
    p, env = built_generation_project, project_env(text_mirror)
    m = read_json(p / "metrics/summarization.json")
    assert m["n_test"] == 8  # 24 test records = 8 dialogues x 3 references
    for key in ("rouge1", "rouge2", "rougeL", "rougeL_max", "extractive_rougeL", "samsum_rougeL"):
        assert 0.0 <= m[key] <= 1.0, key
    assert m["rougeL_max"] >= m["rougeL"] and m["extractive_rougeL"] > 0.05
    split = read_json(p / "data/split/summarization/split.json")
    assert split["sizes"] == {"train": 150, "validation": 12, "test": 24, "extra_samsum": 10}
    assert "#Person" not in (p / "reports/summarization/eval/samples.md").read_text(encoding="utf-8")
    # speakers: anonymize -- the model reads and writes #PersonN#; the outputs have the names back
    assert read_json(p / "data/tokenized/summarization/meta.json")["tokenize"]["speakers"] == "anonymize"
    assert read_json(p / "models/summarization/config.json")["spec"]["speakers"] == "anonymize"
    assert read_json(p / "models/summarization/config.json")["train"]["precision"] == "auto"
    used = read_json(p / "models/summarization/train_summary.json")["precision"]
    assert used == ("bf16" if native_bf16("cpu") else "32")  # auto: bf16 only where the CPU has it
    assert "fit_seconds" not in read_json(p / "models/summarization/train_summary.json")  # not in DVC outputs
    assert read_json(p / ".s2sflow/train/summarization.json")["fit_seconds"] > 0
    assert read_json(p / "exports/summarization/preprocessing.json")["speakers"] == "anonymize"
    vocab = read_json(p / "models/summarization/tokenizer.json")["model"]["vocab"]
    assert any("#Person1#" in piece for piece in vocab)  # learnt as a piece, not spelt letter by letter
    assert read_json(p / "models/dialogue/config.json")["train"]["precision"] == "auto"
    row = json.loads((p / "reports/summarization/eval/predictions.jsonl").read_text().splitlines()[0])
    assert isinstance(row["reference"], list) and len(row["reference"]) == 3
    doc = _write(tmp_path / "chat.txt", "Ann: Shall we buy the red car?\nBob: Yes, it is cheap.\n")
    cli = [sys.executable, "-m", "s2sflow.cli", "predict", "--root", str(p), "--task", "summarization"]
    out = run(cli + ["--json", str(doc)], p, env)
    assert json.loads(out.stdout)["source"].startswith("Ann: Shall we") and out.stdout.count("\n") == 1
    missing = run(cli + [str(tmp_path / "nope.txt")], p, env, check=False)
    assert missing.returncode != 0 and "nope.txt: file not found" in missing.stderr
    assert "Traceback" not in missing.stderr


@pytest.mark.e2e
def test_dialogue_reports_perplexity_and_distinct_and_chats(built_generation_project, text_mirror):
    p, env = built_generation_project, project_env(text_mirror)
    m = read_json(p / "metrics/dialogue.json")
    assert {"bleu", "distinct_1", "distinct_2", "perplexity"} <= set(m)
    assert m["perplexity"] > 1.0 and 0.0 < m["distinct_2"] <= 1.0
    assert m["word_perplexity"] > m["perplexity"]  # a 600-token vocabulary: more sub-tokens than words
    # the other decodings of params.yaml's also_decode, on test and on validation, side by side
    assert {"greedy_bleu", "greedy_distinct_2", "beam_bleu", "beam_distinct_2"} <= set(m)
    table = (p / "reports/dialogue/eval/decodings.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| ---")]
    assert rows[0].startswith("| decoding | settings | validation bleu") and "test distinct_2" in rows[0]
    also = list(yaml.safe_load((p / "params.yaml").read_text())["dialogue"]["evaluate"]["also_decode"])
    assert also[:2] == ["greedy", "beam"] and [r.split(" | ")[0] for r in rows[1:]] == ["| default"] + [
        f"| {name}" for name in also]
    assert f" {m['greedy_bleu']} " in rows[2] and "do_sample=False" in rows[2] and "num_beams=4" in rows[3]
    contract = read_json(p / "data/split/dialogue/contract.json")
    assert contract["success"] and contract["summary"]["shared_dialogues_or_documents"] == {"train": 0,
                                                                                           "validation": 0}
    prep = read_json(p / "exports/dialogue/preprocessing.json")
    assert prep["input"]["mode"] == "dialogue" and prep["truncation_side"] == "left"
    cli = [sys.executable, "-m", "s2sflow.cli", "predict", "--root", str(p), "--task", "dialogue", "--json"]
    out = run(cli, p, env, input="Hi , how are you ?\nWhere shall we eat ?\n\nignored after the empty line\n")
    replies = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(replies) == 2 and replies[0]["source"] == "Hi , how are you ?"
    assert replies[1]["source"] == f"{replies[0]['output']} | Where shall we eat ?"  # the last 2 turns


@pytest.mark.e2e
def test_a_malformed_record_stops_the_summarization_split_with_one_line(tmp_path, text_mirror):
    def cut_record_5(lines):
        lines[4] = lines[4][:-20]

    assert_gen_split_fails_cleanly(tmp_path, text_mirror, "summarization",
                                   "summarization/dialogsum/dialogsum.train.jsonl", cut_record_5,
                                   "dialogsum.train.jsonl line 5: not a JSON record")


@pytest.mark.e2e
def test_captioning_runs_through_the_stages_and_captions_an_image(built_generation_project, text_mirror,
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
    assert "](../../../data/raw/captioning/images/" in (p / "reports/captioning/eval/samples.md").read_text()
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

    p = make_project(tmp_path / "project", mirror, tasks=["mnist", "captioning"], edit=unpin)
    before = tree_snapshot(p / "data/split")
    proc = dvc(["repro", "split@captioning"], p, project_env(mirror), check=False)
    assert proc.returncode != 0
    ours = [line for line in (proc.stdout + proc.stderr).splitlines()
            if line.startswith("s2sflow: captioning:") and " done: " not in line]
    assert len(ours) == 1 and "data contract failed" in ours[0] and "decodes" in ours[0], ours
    assert tree_snapshot(p / "data/split") == before and not (p / "data/split/captioning").exists()


@pytest.mark.e2e
def test_generation_stages_import_only_their_declared_code_and_cards_equal_the_lock(built_generation_project):
    tasks = ["dialogue", "summarization", "captioning"]
    assert_imports_are_declared(built_generation_project, tasks)
    for task in tasks:
        assert_card_matches_lock(built_generation_project, task)


@pytest.mark.e2e
def test_an_edit_stales_the_tasks_of_its_kind_only(built_generation_project, text_mirror, tmp_path):
    assert_edits_stale_only_their_kind(built_generation_project, tmp_path, project_env(text_mirror), {
        "s2sflow/kinds/seq2seq/speakers.py": ["dialogue", "summarization"],
        "s2sflow/kinds/captioning/vision.py": ["captioning"], "s2sflow/kinds/text/encode.py": []})


@pytest.mark.e2e
def test_the_results_page_loads_in_chromium_and_its_metric_cells_equal_the_metrics(built_generation_project,
                                                                                   tmp_path):
    from s2sflow.site import build_site

    p = built_generation_project
    control = tmp_path / "control.html"  # the console check can fail: a page that logs an error
    control.write_text("<!doctype html><title>c</title><script>console.error('broken')</script>")
    assert open_in_chromium(control, tmp_path / "chrome0")[0]
    page = build_site(p, tmp_path / "site" / "index.html")
    errors, cells = open_in_chromium(page, tmp_path / "chrome1")
    assert errors == []
    for task in ("mnist", "dialogue", "summarization", "captioning"):
        metrics = read_json(p / f"metrics/{task}.json")
        shown = {c["metric"]: json.loads(c["text"]) for c in cells if c["task"] == task}
        assert shown == metrics, task
    text = page.read_text(encoding="utf-8")
    for part in ("Training curves", "decodings.md", "samples.md", "Lineage (model card)", "Stage times",
                 "confusion matrix", "<svg class='chart'"):
        assert part in text, part
    assert "not built yet" not in text  # every task of the project is built
