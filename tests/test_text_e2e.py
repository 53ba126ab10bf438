"""End to end through `dvc` for the text tasks on the first rows of the real files: metrics, reports,
ONNX exports checked against torch, `s2sflow predict`, no-op re-runs, what a param change re-runs,
same-seed determinism, and bad input at the split stage."""

import json
import shutil
import sys

import pytest
import yaml

from conftest import (
    TEXT_TASKS,
    assert_card_matches_lock,
    assert_edits_stale_only_their_kind,
    assert_imports_are_declared,
    dvc,
    make_project,
    project_env,
    run,
    tree_snapshot,
)
from s2sflow.core.fsutil import read_json

pytestmark = pytest.mark.e2e


@pytest.fixture
def text_env(text_mirror) -> dict:
    return {**project_env(text_mirror), "HF_HUB_OFFLINE": "1"}


def _copy(built, tmp_path):
    dest = tmp_path / "copy"
    shutil.copytree(built, dest, symlinks=True)
    return dest


def test_every_text_task_has_metrics_reports_and_a_checked_export(built_text_project):
    p = built_text_project
    topic = read_json(p / "metrics/topic.json")
    assert 0.0 <= topic["accuracy"] <= 1.0 and 0.0 <= topic["macro_f1"] <= 1.0
    sizes = read_json(p / "data/split/topic/split.json")["sizes"]
    assert sizes == {"train": 210, "validation": 30, "test": 60}  # 300 rows: 70/10/20 held out with the seed
    sts = read_json(p / "metrics/sts.json")
    assert -1.0 <= sts["pearson"] <= 1.0 and -1.0 <= sts["spearman"] <= 1.0 and sts["n_test"] == 40
    ner = read_json(p / "metrics/ner.json")
    # 2 of the 40 blocks are -DOCSTART-
    assert {"f1", "precision", "recall", "ner_accuracy"} <= set(ner) and ner["n_test_sentences"] == 38
    morph = read_json(p / "metrics/morph.json")
    assert 0.0 < morph["upos_accuracy"] <= 1.0 and 0.0 <= morph["xpos_accuracy"] <= 1.0
    for task in TEXT_TASKS:
        eval_dir = p / "reports" / task / "eval"
        for name in ("confusion_matrix.png", "errors.png", "errors.json", "samples.json", "per_class.json"):
            assert (eval_dir / name).is_file(), (task, name)
        assert (p / "reports" / task / "confusion/confusion.json").is_file()
        assert len(json.loads((eval_dir / "samples.json").read_text())) == 20
        export = p / "exports" / task
        card = read_json(export / "model_card.json")
        assert card["export"]["onnx_max_abs_diff"] <= 1e-4
        assert card["tokenized"]["tokenizer_sha256"] == read_json(p / f"data/tokenized/{task}/meta.json")[
            "tokenizer_sha256"]
        assert (export / "tokenizer.json").read_bytes() == (p / f"data/tokenized/{task}/tokenizer.json").read_bytes()
        assert card["metrics"] == read_json(p / f"metrics/{task}.json")
    meta = read_json(p / "data/tokenized/morph/meta.json")
    assert meta["tokenize"]["family"] == "scratch" and meta["tokenize"]["unicode_form"] == "NFD"
    assert meta["truncated_examples"]["test"] >= 0
    # the scratch tokenizer covers Hangul: no [UNK] for a Korean sentence never seen in training
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(p / "data/tokenized/morph/tokenizer.json"))
    assert "[UNK]" not in tok.encode("뛣쇍 햏볐의 모습이").tokens


def test_predict_prints_entities_scores_and_classes(built_text_project, text_env):
    p = built_text_project
    cli = [sys.executable, "-m", "s2sflow.cli", "predict", "--root", str(p)]
    ner = run(cli + ["--task", "ner", "--json", "Angela Merkel visited Paris"], p, text_env)
    (pred,) = [json.loads(line) for line in ner.stdout.splitlines()]
    labels = read_json(p / "exports/ner/preprocessing.json")["labels"]["layers"]["ner"]
    assert pred["words"] == ["Angela", "Merkel", "visited", "Paris"]
    assert len(pred["tags"]["ner"]) == 4 and set(pred["tags"]["ner"]) <= set(labels)
    assert isinstance(pred["entities"], list)
    morph = run(cli + ["--task", "morph", "--json", "내 고향은 서울입니다."], p, text_env)
    (pred,) = [json.loads(line) for line in morph.stdout.splitlines()]
    prep = read_json(p / "exports/morph/preprocessing.json")  # affix ids + stem lexicon through ONNX
    assert "affix_ids" in prep["inputs"] and prep["lexicon"] and prep["affixes"]["buckets"] > 1
    assert pred["words"] == ["내", "고향은", "서울입니다", "."]
    assert set(pred["tags"]) == {"xpos", "upos"} and all(len(t) == 4 for t in pred["tags"].values())
    sts = run(cli + ["--task", "sts", "A man is playing a guitar.", "A man plays the guitar."], p, text_env)
    score = float(sts.stdout.split("\t")[0])
    assert 0.0 <= score <= 5.0
    topic = run(cli + ["--task", "topic"], p, {**text_env}, check=False)  # stdin is empty: one clear line
    assert topic.returncode != 0 and "no input" in topic.stderr and "Traceback" not in topic.stderr
    lines = "Stocks fell on Wall Street\nThe Yankees won again\n"
    import subprocess

    out = subprocess.run(cli + ["--task", "topic"], cwd=p, env=text_env, input=lines, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    names = {"World", "Sports", "Business", "Sci/Tech"}
    assert [line.split("\t")[0] in names for line in out.stdout.splitlines()] == [True, True]
    one = run(cli + ["--task", "sts", "only one sentence"], p, text_env, check=False)
    assert one.returncode == 2 and len(one.stderr.strip().splitlines()) == 1 and "even number" in one.stderr


def test_no_op_repro_and_a_param_change_reruns_only_that_task(built_text_project, text_env, tmp_path):
    p = _copy(built_text_project, tmp_path)
    assert "Data and pipelines are up to date" in dvc(["status"], p, text_env).stdout
    params = yaml.safe_load((p / "params.yaml").read_text())
    params["sts"]["train"]["optimizer"]["lr"] = 1e-4
    (p / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = dvc(["repro"], p, text_env).stdout
    ran = [line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage")]
    assert ran == ["train@sts", "evaluate@sts", "export@sts"]


def test_same_seed_gives_byte_identical_text_metrics(built_text_project, text_env, tmp_path):
    p = _copy(built_text_project, tmp_path)
    before = {t: (p / f"metrics/{t}.json").read_bytes() for t in ("morph", "topic")}
    dvc(["repro", "-f", "-s", "train@morph", "evaluate@morph", "train@topic", "evaluate@topic"], p, text_env)
    assert {t: (p / f"metrics/{t}.json").read_bytes() for t in before} == before


@pytest.mark.parametrize("task,file,edit,message", [
    ("sts", "sts/stsb/sts-train.csv", lambda t: t.replace("\t5.000\t", "\t7.000\t", 1), "score 7.000 is outside 0-5"),
    ("topic", "topic/ag_news/test.csv", lambda t: t.replace("\n3,", "\n9,", 1), "label '9' is not one of"),
    ("ner", "ner/conll2003/train.txt", lambda t: t.replace("EU B-ORG", "EU B-ORG extra", 1), "expected 2 columns"),
    ("morph", "pos/ud_korean_kaist/ko_kaist-ud-dev.conllu", lambda t: t.replace("\tncn+jxt\t_\t", "\tncn+jxt\t",
                                                                                    1), "got 9"),
])
def test_bad_input_fails_the_split_with_one_line_and_writes_nothing(text_mirror, tmp_path, task, file, edit, message):
    mirror = tmp_path / "mirror"
    shutil.copytree(text_mirror, mirror)
    path = mirror / file
    path.write_text(edit(path.read_text(encoding="utf-8")), encoding="utf-8")
    project = make_project(tmp_path / "project", mirror, tasks=[task])
    env = {**project_env(mirror), "HF_HUB_OFFLINE": "1"}
    run(["sh", "stages/py", "-m", "stages.download", "--task", task], project, env)
    before = tree_snapshot(project / "data" / "split")
    proc = run(["sh", "stages/py", "-m", "stages.split", "--task", task], project, env, check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and f"{file.split('/')[-1]} line " in lines[0], proc.stderr
    assert tree_snapshot(project / "data" / "split") == before


def test_own_data_in_any_script_through_params_only(text_mirror, tmp_path):
    """A user's TSV (Hangul, accents, literal quotes) read through params alone: folder source, columns,
    labels, a scratch tokenizer trained on it."""
    own = tmp_path / "own"
    own.mkdir()
    rows = ["text\tlabel"]
    words = ["café crème", "서울의 모습", "naïve \"quoted\" words", "Zürich über alles", "부산에 갑니다"]
    for i in range(60):
        rows.append(f"{words[i % 5]} {i}\t{'pos' if i % 2 else 'neg'}")
    (own / "tickets.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")

    def edit(params):
        t = params["topic"]
        t["download"].update(sources=[{"folder": str(own)}], files=[{"name": "tickets.tsv", "sha256": None}])
        t["split"].update(files={"train": "tickets.tsv"}, delimiter="\t", quoting=False, text_a=["text"],
                          label="label", labels=["neg", "pos"], label_names=None)
        t["tokenize"].update(family="scratch", unicode_form="NFC", vocab_size=200, min_frequency=1)

    project = make_project(tmp_path / "project", text_mirror, edit=edit, tasks=["topic"])
    env = {**project_env(text_mirror), "HF_HUB_OFFLINE": "1"}
    for name in ("download", "split", "tokenize"):
        run(["sh", "stages/py", "-m", f"stages.{name}", "--task", "topic"], project, env)
    source = read_json(project / "data/raw/topic/source.json")
    assert source["origin"]["kind"] == "folder" and len(source["files"]["tickets.tsv"]["sha256"]) == 64
    assert read_json(project / "data/split/topic/split.json")["sizes"] == {"train": 42, "validation": 6, "test": 12}
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(project / "data/tokenized/topic/tokenizer.json"))
    for text in ("café über", "서울의 모습", "\"quoted\""):
        assert "[UNK]" not in tok.encode(text).tokens, text
    assert tok.decode(tok.encode("Zürich").ids) == "Zürich"  # accents and case kept


def test_each_text_stage_imports_only_its_declared_code_and_cards_equal_the_lock(built_text_project):
    assert_imports_are_declared(built_text_project, TEXT_TASKS)
    for task in TEXT_TASKS:
        assert_card_matches_lock(built_text_project, task)


def test_an_edit_to_the_text_kind_stales_every_text_task_and_nothing_else(built_text_project, text_env, tmp_path):
    assert_edits_stale_only_their_kind(built_text_project, tmp_path, text_env, {
        "s2sflow/kinds/text/model.py": TEXT_TASKS, "s2sflow/kinds/mnist/plain.py": [],
        "s2sflow/kinds/seq2seq/speakers.py": []})


def test_a_killed_text_training_resumes_to_the_same_model(built_text_project, text_env, tmp_path):
    """SIGKILL `dvc repro train@topic` after its first epoch's checkpoint; running it again resumes (the
    checkpoint loaded with weights_only=True) and ends with the uninterrupted run's model, bit for bit."""
    import os
    import signal
    import subprocess
    import time

    def copy_with_params(dest):
        p = shutil.copytree(built_text_project, dest, symlinks=True)
        params = yaml.safe_load((p / "params.yaml").read_text())
        params["topic"]["train"]["epochs"] = 3
        params["topic"]["train"]["trainer"]["limit_train_batches"] = None
        (p / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        return p

    reference = copy_with_params(tmp_path / "reference")
    dvc(["repro", "-s", "train@topic"], reference, text_env)
    model = (reference / "models/topic/model.safetensors").read_bytes()
    project = copy_with_params(tmp_path / "killed")
    proc = subprocess.Popen([sys.executable, "-m", "dvc", "repro", "-s", "train@topic"], cwd=project, env=text_env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline and not list(
            project.glob("checkpoints/topic/*/last.ckpt")):
        time.sleep(0.05)
    time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert list(project.glob("checkpoints/topic/*/last.ckpt")), "the run finished before it could be killed"
    out = dvc(["repro", "-s", "train@topic"], project, text_env)
    assert "resuming from" in out.stdout + out.stderr
    assert read_json(project / "models/topic/train_summary.json")["resumed_from"]
    assert (project / "models/topic/model.safetensors").read_bytes() == model
    curves = sorted((reference / "reports/topic/training").rglob("*.tsv"))
    assert curves and all(  # the curves too: no row of the killed run repeated after its checkpoint
        (project / p.relative_to(reference)).read_bytes() == p.read_bytes() for p in curves)
    assert not any((project / "checkpoints/topic").iterdir())  # its own, dropped once training completed
