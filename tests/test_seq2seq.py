"""Generation (mt): readers and their one-line errors, the byte-pair tokenizer, and a tiny real
project through the DVC stages, export (ONNX checked against torch) and `s2sflow predict`."""

import json
import sys

import pytest
import yaml

from conftest import assert_gen_split_fails_cleanly, dvc, make_project, project_env, run
from s2sflow.core.errors import S2SFlowError
from s2sflow.core.fsutil import read_json
from s2sflow.core.generation.tokenizer import train_bpe
from s2sflow.kinds.seq2seq.data import Seq2SeqSplitConfig, read_jsonl, read_parallel, read_tsv
from s2sflow.kinds.seq2seq.prepare import Seq2SeqTokenizeConfig, encode_pairs

PAIRS = [("A man is riding a bike.", "Ein Mann fährt Fahrrad."), ("Two dogs play in the snow.",
                                                                   "Zwei Hunde spielen im Schnee."),
         ("A girl, smiling, runs.", "Ein Mädchen läuft lächelnd.")] * 10


def _write(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_parallel_reader_names_the_file_and_line_of_bad_input(tmp_path):
    cfg = Seq2SeqSplitConfig(max_source_chars=40, max_target_chars=40)
    src = _write(tmp_path / "a.en", ["A man.", "Two dogs.", "A cat."])
    tgt = _write(tmp_path / "a.de", ["Ein Mann.", "Zwei Hunde.", "Eine Katze."])
    assert read_parallel(src, tgt, cfg)[1] == {"source": "Two dogs.", "target": "Zwei Hunde."}
    _write(src, ["A man.", " ", "A cat."])
    with pytest.raises(S2SFlowError, match=r"a\.en line 2: empty source text"):
        read_parallel(src, tgt, cfg)
    _write(src, ["A man.", "Two dogs.", "A cat."])
    _write(tgt, ["Ein Mann.", "Zwei Hunde.", "Eine " + "sehr " * 10 + "Katze."])
    with pytest.raises(S2SFlowError, match=r"a\.de line 3: target text has 61 characters, over the limit of 40"):
        read_parallel(src, tgt, cfg)
    _write(tgt, ["Ein Mann.", "Zwei Hunde."])
    with pytest.raises(S2SFlowError, match="has 3 lines but .* has 2"):
        read_parallel(src, tgt, cfg)


def test_jsonl_and_tsv_readers(tmp_path):
    cfg = Seq2SeqSplitConfig(source="dialogue", target="summary")
    good = '{"dialogue": "A: hi. B: hello.", "summary": "They greet."}'
    path = _write(tmp_path / "d.jsonl", [good, "", good])
    assert len(read_jsonl(path, cfg)) == 2
    _write(path, [good, '{"dialogue": "A: hi.", "summary": "x"', good])
    with pytest.raises(S2SFlowError, match=r"d\.jsonl line 2: not a JSON record"):
        read_jsonl(path, cfg)
    _write(path, [good, '{"dialogue": "A: hi."}'])
    with pytest.raises(S2SFlowError, match=r"line 2: field 'summary' \(target\) is missing"):
        read_jsonl(path, cfg)
    tsv = _write(tmp_path / "p.tsv", ["en\tde", 'He said "hi".\tEr sagte "hallo".', "Yes\t"])
    with pytest.raises(S2SFlowError, match=r"p\.tsv line 3: empty target text"):
        read_tsv(tsv, Seq2SeqSplitConfig(source="en", target="de"))
    rows = read_tsv(_write(tsv, ['He said "hi".\tEr sagte "hallo".']), Seq2SeqSplitConfig(
        source="de", target="en", header=["en", "de"]))  # either direction; quotes stay literal
    assert rows == [{"source": 'Er sagte "hallo".', "target": 'He said "hi".'}]


def test_bpe_is_deterministic_lossless_and_a_long_target_is_one_clear_error():
    texts = [s for pair in PAIRS for s in pair]
    learnt = {train_bpe(texts, vocab_size=120, min_frequency=1).to_str() for _ in range(5)}
    assert len(learnt) == 1
    tok = train_bpe(texts, vocab_size=120, min_frequency=1)
    enc = tok.encode("Ein Mädchen, lächelnd.")
    assert tok.decode(enc.ids) == "Ein Mädchen, lächelnd."  # spacing and punctuation come back as written
    cfg = Seq2SeqTokenizeConfig(max_source_length=6, max_target_length=8)
    out = encode_pairs(tok, ["A man is riding a bike."], ["Ein Mann."], cfg)
    assert len(out["input_ids"][0]) == 6 and out["input_ids"][0][-1] == 2 and out["truncated"] == 1
    assert out["labels"][0][-1] == 2
    with pytest.raises(S2SFlowError, match=r"test example 1: the target has \d+ sub-tokens, over "
                                           r"tokenize.max_target_length=8"):
        encode_pairs(tok, ["A man."], ["Zwei Hunde spielen im Schnee und ein Mädchen läuft."], cfg, where="test")


@pytest.fixture(scope="module")
def built_mt_project(tmp_path_factory, text_mirror):
    dest = make_project(tmp_path_factory.mktemp("built_mt") / "project", text_mirror, tasks=["mnist", "mt"])
    dvc(["repro", "export@mt"], dest, project_env(text_mirror))
    return dest


@pytest.mark.e2e
def test_token_losses_equal_cross_entropy_from_one_log_softmax():
    """The shared loss (one log-softmax for both values) equals F.cross_entropy's label-smoothed mean and
    summed NLL, ignoring padded positions, and the gradient flows only through kept tokens."""
    import torch
    from torch.nn import functional as F

    from s2sflow.core.generation.decoding import IGNORE, token_losses

    torch.manual_seed(0)
    logits = torch.randn(3, 6, 40, requires_grad=True)
    labels = torch.randint(0, 40, (3, 6))
    labels[0, 4:], labels[2, 1:] = IGNORE, IGNORE
    for smoothing in (0.0, 0.1):
        loss, nll, n = token_losses(logits, labels, smoothing)
        flat, target = logits.flatten(0, 1), labels.flatten()
        assert int(n) == 4 + 6 + 1
        assert torch.allclose(loss, F.cross_entropy(flat, target, ignore_index=IGNORE, label_smoothing=smoothing),
                              rtol=1e-6)
        assert torch.allclose(nll, F.cross_entropy(flat, target, ignore_index=IGNORE, reduction="sum"), rtol=1e-6)
    (grad,) = torch.autograd.grad(loss, logits)
    assert grad[2, 1:].abs().sum() == 0 and grad[0, :4].abs().sum() > 0


def test_mt_runs_through_the_stages_exports_and_predicts(built_mt_project, text_mirror):
    p, env = built_mt_project, project_env(text_mirror)
    metrics = read_json(p / "metrics/mt.json")
    assert {"bleu", "chrf", "n_test"} <= set(metrics) and metrics["n_test"] == 40
    assert 0.0 <= metrics["bleu"] <= 100.0 and 0.0 <= metrics["chrf"] <= 100.0
    scores = read_json(p / "reports/mt/eval/scores.json")
    assert scores["signatures"]["bleu"].startswith("nrefs:1|") and scores["decoding"]["num_beams"] == 2
    samples = (p / "reports/mt/eval/samples.md").read_text(encoding="utf-8")
    assert samples.count("\n| ") == 22 and "Ein Mann" in samples  # header, rule, 20 rows; real references
    lines = (p / "reports/mt/eval/predictions.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 40 and {"source", "reference", "prediction"} <= set(json.loads(lines[0]))
    card = read_json(p / "exports/mt/model_card.json")
    assert card["export"]["onnx_max_abs_diff"] <= 1e-4 and "train@mt" in card["dvc_lock"]
    assert card["tokenized"]["tokenizer_sha256"] == read_json(p / "data/tokenized/mt/meta.json")["tokenizer_sha256"]
    assert {"encoder.onnx", "decoder.onnx", "model.safetensors"} <= {f.name for f in (p / "exports/mt").iterdir()}
    cli = [sys.executable, "-m", "s2sflow.cli", "predict", "--root", str(p), "--task", "mt", "--json"]
    out = run(cli + ["A man is riding a bike.", "Two dogs play."], p, env)
    preds = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["source"] for r in preds] == ["A man is riding a bike.", "Two dogs play."]
    assert all(isinstance(r["output"], str) for r in preds)
    empty = run(cli[:-1] + [" "], p, env, check=False)
    assert empty.returncode != 0 and "empty" in empty.stderr and "Traceback" not in empty.stderr


@pytest.mark.e2e
def test_a_decoding_change_reruns_only_evaluate_and_export(built_mt_project, text_mirror, tmp_path):
    import shutil

    p = tmp_path / "project"
    shutil.copytree(built_mt_project, p, symlinks=True)
    env = project_env(text_mirror)
    params = yaml.safe_load((p / "params.yaml").read_text())
    params["mt"]["evaluate"]["decoding"]["num_beams"] = 1
    (p / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = dvc(["repro", "export@mt"], p, env).stdout
    ran = [line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage")]
    assert ran == ["evaluate@mt", "export@mt"]
    assert read_json(p / "reports/mt/eval/scores.json")["decoding"]["num_beams"] == 1


@pytest.mark.e2e
def test_bad_mt_input_stops_the_split_with_one_line_and_writes_nothing(tmp_path, text_mirror):
    def blank_line_7(lines):
        lines[6] = ""

    assert_gen_split_fails_cleanly(tmp_path, text_mirror, "mt", "mt/multi30k/val.en", blank_line_7,
                                   "val.en line 7: empty source text")
