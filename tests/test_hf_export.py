"""`s2sflow hf`: a generation export as a folder that transformers' Auto classes load offline, and
whose generate() gives the same text as `s2sflow predict` (the tiny generation project's real stages)."""

import json
import shutil
import sys

import pytest

from conftest import run

pytestmark = pytest.mark.e2e


def _sources(project, task: str, n: int) -> list[str]:
    import datasets

    return list(datasets.load_from_disk(str(project / f"data/split/{task}/test"))["source"][:n])


@pytest.mark.parametrize("task", ["dialogue", "summarization"])  # seq2seq tasks of the tiny project
def test_the_hf_folder_loads_with_auto_classes_and_generates_what_predict_prints(built_generation_project,
                                                                               text_mirror, tmp_path, task):
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    from conftest import project_env
    from s2sflow.kinds.seq2seq.predict import ExportedGenerator

    project = built_generation_project
    out = tmp_path / "hf"
    proc = run([sys.executable, "-m", "s2sflow.cli", "hf", "--task", task, "--root", str(project), "--out", str(out)],
               project, {**project_env(text_mirror), "HF_HUB_OFFLINE": "1"})
    assert str(out) in proc.stdout
    for name in ("config.json", "model.safetensors", "generation_config.json", "tokenizer.json",
                 "tokenizer_config.json", "README.md", "s2sflow_model_card.json"):
        assert (out / name).is_file(), name

    sources = _sources(project, task, 12)
    ours = [p["output"] for p in ExportedGenerator(project / f"exports/{task}", task).predict(sources)]
    tokenizer = AutoTokenizer.from_pretrained(out)
    model = AutoModelForSeq2SeqLM.from_pretrained(out).eval()
    assert type(model).__name__ == "MBartForConditionalGeneration"
    texts = sources
    if task == "summarization":  # the speaker placeholders are the caller's part (the folder's README says so)
        from s2sflow.kinds.seq2seq.speakers import anonymize, dialogue_speakers, restore

        casts = [dialogue_speakers(s.strip()) for s in sources]
        texts = [anonymize(s.strip(), c) for s, c in zip(sources, casts)]
        assert "#Person1#" in (out / "README.md").read_text(encoding="utf-8")
    batch = tokenizer(texts, return_tensors="pt", padding=True, truncation=True)
    assert all(row[row != tokenizer.pad_token_id][-1] == tokenizer.eos_token_id for row in batch["input_ids"])
    torch.manual_seed(json.loads((out / "s2sflow_hf.json").read_text())["decoding_seed"])  # dialogue samples
    with torch.no_grad():
        theirs = [t.strip() for t in tokenizer.batch_decode(model.generate(**batch), skip_special_tokens=True)]
    if task == "summarization":
        theirs = [restore(t, c) if c else t for t, c in zip(theirs, casts)]
    assert theirs == ours


def test_hf_refuses_other_kinds_and_a_folder_it_did_not_write(built_generation_project, text_mirror, tmp_path):
    from conftest import project_env

    env = {**project_env(text_mirror), "HF_HUB_OFFLINE": "1"}
    project = built_generation_project
    cli = [sys.executable, "-m", "s2sflow.cli", "hf", "--root", str(project)]
    proc = run(cli + ["--task", "captioning", "--out", str(tmp_path / "c")], project, env, check=False)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode != 0 and len(lines) == 1 and "kind 'captioning'" in lines[0] and "ONNX" in lines[0], lines
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    proc = run(cli + ["--task", "dialogue", "--out", str(mine)], project, env, check=False)
    assert proc.returncode != 0 and "not a folder this command wrote" in proc.stderr
    assert (mine / "notes.txt").read_text() == "keep me" and not (tmp_path / "c").exists()
    shutil.rmtree(mine)
