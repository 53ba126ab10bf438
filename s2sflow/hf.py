"""Hugging Face folders from s2sflow exports, for the tools people already use.

    s2sflow hf --task mt                  # hf/mt/: config.json, model.safetensors, tokenizer, generation config
    s2sflow hf --task mt --out /models/mt-en-de

The folder loads offline with ``AutoModelForSeq2SeqLM.from_pretrained(folder)`` and
``AutoTokenizer.from_pretrained(folder)``; ``model.generate(**tokenizer(texts, return_tensors="pt",
padding=True, truncation=True))`` decodes with the export's own decoding params (its
``generation_config.json``) and gives the same text as ``s2sflow predict`` (benchmarks/hf_agreement.py
measures it on real test inputs). The tokenizer is the export's ``tokenizer.json`` with the end token
appended to every source (as training did) and truncation at the trained source length.

Generation tasks (kind ``seq2seq``: mBART classes) for now. Not carried over: summarization's speaker
placeholders (the model reads and writes ``#Person1#``...; ``s2sflow predict`` swaps the names in and
out) and dialogue's context joining (the source is the last turns joined with `` | ``); the folder's
README says so. The text kinds' models (mean pooling, case features) are not stock ``transformers``
classes: their portable form stays the ONNX graph in ``exports/<task>/``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from s2sflow.core.errors import S2SFlowError
from s2sflow.core.fsutil import atomic_dir, read_json

SUPPORTED_KINDS = ("seq2seq",)


def _card(export_dir: Path, task: str) -> dict:
    path = export_dir / "model_card.json"
    if not path.is_file():
        raise S2SFlowError(f"{path} not found; run `dvc repro export@{task}` (or `make run`) first", task)
    return read_json(path)


def hf_tokenizer(export_dir: Path, prep: dict):
    """The export's byte-pair tokenizer as a ``PreTrainedTokenizerFast``: the end token after every
    source, truncation to ``max_source_length`` on the side training cut, padding on the right."""
    from tokenizers import processors
    from transformers import PreTrainedTokenizerFast

    from s2sflow.core.tokens import load_tokenizer

    tok = load_tokenizer(export_dir / "tokenizer.json")
    eos = prep.get("special_ids", {}).get("end", 2)
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", eos)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                   unk_token="<unk>", model_max_length=int(prep["max_source_length"]),
                                   truncation_side=prep.get("truncation_side", "right"), padding_side="right",
                                   clean_up_tokenization_spaces=False)


def _readme(task: str, card: dict, prep: dict) -> str:
    notes = []
    if prep.get("speakers") == "anonymize":
        notes.append("The model reads and writes speakers as `#Person1#`, `#Person2#`... in the order their names "
                     "open the dialogue's turns: replace the names before tokenizing and put them back in the "
                     "output (`s2sflow predict` does both).")
    mode = prep.get("input", {})
    if mode.get("mode") == "dialogue":
        notes.append(f"The source is the last {mode.get('context_turns')} turns joined with "
                     f"`{mode.get('turn_separator')}`, most recent last.")
    decoding = ", ".join(f"{k}={v}" for k, v in prep["decoding"].items())
    return "\n".join([
        f"# {task} (s2sflow export, Hugging Face format)", "",
        card.get("model", ""), "",
        "```python",
        "from transformers import AutoModelForSeq2SeqLM, AutoTokenizer",
        "tokenizer = AutoTokenizer.from_pretrained(FOLDER)",
        "model = AutoModelForSeq2SeqLM.from_pretrained(FOLDER)",
        "batch = tokenizer(texts, return_tensors='pt', padding=True, truncation=True)",
        "print(tokenizer.batch_decode(model.generate(**batch), skip_special_tokens=True))",
        "```", "",
        f"Decoding (generation_config.json, from the export): {decoding}."
        + (f" Sampled: `torch.manual_seed({prep.get('decoding_seed')})` first gives s2sflow's draw." if
           prep["decoding"].get("do_sample") else ""), "",
        *(f"- {n}" for n in notes), *([""] if notes else []),
        f"Test metrics: {json.dumps(card.get('metrics', {}))}.", "",
        f"Lineage: the s2sflow model card is `s2sflow_model_card.json` (data sha256, params, the dvc.lock hashes, "
        f"commit {card.get('git', {}).get('commit') or '?'}).", ""])


def seq2seq_to_hf(export_dir: Path, out_dir: Path, task: str, card: dict) -> Path:
    """Write ``out_dir`` (atomically) from a generation task's export folder and its model card."""
    import torch

    from s2sflow.kinds.seq2seq.predict import ExportedGenerator

    exported = ExportedGenerator(export_dir, task)  # what `s2sflow predict` loads: weights, config, prep
    net, prep = exported.net, exported.prep
    net.generation_config.update(**prep["decoding"])
    tokenizer = hf_tokenizer(export_dir, prep)
    with atomic_dir(out_dir) as tmp, torch.no_grad():
        net.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        shutil.copy(export_dir / "model_card.json", tmp / "s2sflow_model_card.json")
        (tmp / "README.md").write_text(_readme(task, card, prep), encoding="utf-8")
        about = {"task": task, "kind": card.get("kind"), "from": str(export_dir),
                 "decoding_seed": prep.get("decoding_seed"), "loads_with": "AutoModelForSeq2SeqLM, AutoTokenizer"}
        (tmp / "s2sflow_hf.json").write_text(json.dumps(about, indent=1) + "\n", encoding="utf-8")
    return out_dir


def export_hf(root: Path, task: str, out: Path | None = None, export_dir: Path | None = None) -> Path:
    export_dir = Path(export_dir or root / "exports" / task)
    card = _card(export_dir, task)
    kind = card.get("kind")
    if kind not in SUPPORTED_KINDS:
        raise S2SFlowError(f"task '{task}' is of kind '{kind}': a Hugging Face folder is written for the generation "
                           f"kinds ({', '.join(SUPPORTED_KINDS)}) only for now; its portable form is the ONNX "
                           f"graph in {export_dir}", task)
    out = Path(out or root / "hf" / task)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "s2sflow_hf.json").is_file())):
        raise S2SFlowError(f"{out} exists and is not a folder this command wrote (no s2sflow_hf.json): it would be "
                           f"replaced whole; give --out a new or empty folder", task)
    return seq2seq_to_hf(export_dir, out, task, card)
