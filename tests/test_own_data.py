"""The sample files in examples/ (one per format the readers take) run through the real stages with
the params snippet shipped beside each one: what the README's "Use your own data" walkthrough tells a
user to do, merged into params.yaml as a user would, with no code change."""

import csv
import json

import pytest
import yaml

from conftest import REPO, dvc, make_project, project_env
from s2sflow.core.fsutil import read_json

pytestmark = pytest.mark.e2e

EXAMPLES = REPO / "examples"


def apply_snippet(params: dict, snippet: dict) -> None:
    """A snippet sets ``<task>.<stage>.<key>`` to its value, whole (what `dvc exp run -S
    <task>.<stage>.<key>=<value>` does): a snippet's ``split.files: {train: x}`` replaces the task's
    three files; keys it does not name keep the task's values."""
    for task, stages in snippet.items():
        for stage, keys in stages.items():
            for key, value in keys.items():
                params[task][stage][key] = value


def conll_sentences(text: str) -> int:
    return len([block for block in text.split("\n\n") if block.strip()])


def counts(example: str, file: str) -> int:
    """Examples (rows, sentences, records or context-reply pairs) in a sample file, counted here
    independently of the readers."""
    text = (EXAMPLES / example / file).read_text(encoding="utf-8")
    if file.endswith(".csv"):
        return len(list(csv.reader(text.splitlines()))) - 1
    if file.endswith((".conll", ".conllu")):
        return conll_sentences(text)
    if file.endswith(".jsonl"):
        return len([json.loads(line) for line in text.splitlines() if line.strip()])
    if file.endswith(".txt"):  # turns: every turn after the first is a target
        return sum(line.count("__eou__") - 1 for line in text.splitlines() if line.strip())
    return len(text.splitlines()) - 1  # TSV with a header


CASES = [  # example folder, the task it stands in for, its file
    ("classification", "topic", "tickets.csv"),
    ("pairs", "nli", "pairs.tsv"),
    ("tagging", "ner", "entities.conll"),
    ("tagging", "pos", "sentences.conllu"),
    ("translation", "mt", "en-fr.tsv"),
    ("summarization", "summarization", "chats.jsonl"),
    ("dialogue", "dialogue", "chats.txt"),
]


@pytest.mark.parametrize("example,task,file", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_a_sample_file_trains_through_its_params_snippet_alone(text_mirror, tmp_path, example, task, file):
    snippet = yaml.safe_load((EXAMPLES / example / "params.yaml").read_text(encoding="utf-8"))
    assert task in snippet, f"examples/{example}/params.yaml has no '{task}' section"

    def edit(params):
        apply_snippet(params, {task: snippet[task]})

    project = make_project(tmp_path / "project", text_mirror, edit=edit, tasks=[task])
    env = {**project_env(None), "HF_HUB_OFFLINE": "1"}  # no mirror: the folder source is all there is
    dvc(["repro", f"train@{task}"], project, env)

    source = read_json(project / f"data/raw/{task}/source.json")
    assert source["origin"]["kind"] == "folder"
    assert len(source["files"][file]["sha256"]) == 64  # unpinned, yet the actual hash is recorded
    assert source["license"] == snippet[task]["download"]["license"]  # the user's terms, not the dataset's
    sizes = read_json(project / f"data/split/{task}/split.json")["sizes"]
    if task == "nli":  # the file's own split column decides
        rows = list(csv.DictReader((EXAMPLES / example / file).read_text(encoding="utf-8").splitlines(),
                                   delimiter="\t", quoting=csv.QUOTE_NONE))
        assert sizes == {s: sum(r["split"] == s for r in rows) for s in ("train", "validation", "test")}
    elif task in ("topic", "ner", "pos"):  # rows / sentences held out with the seed
        total = counts(example, file)
        assert sum(sizes.values()) == total and sizes["test"] == round(total * 0.2), sizes
    else:  # generation: whole dialogues / documents held out, so a split may take one group more
        total = counts(example, file)
        assert sum(sizes.values()) == total and round(total * 0.2) <= sizes["test"] <= round(total * 0.2) + 4, sizes
    summary = read_json(project / f"models/{task}/train_summary.json")
    assert summary["task"] == task and summary["global_step"] > 0
    assert all(v == v for v in summary["final_metrics"].values())  # no NaN loss on the user's data
