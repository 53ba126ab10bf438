"""The text data contract, a Great Expectations suite per split run by the split stage: required
columns, non-empty text, length limits, label set or score range, counts per split, and whole
examples shared between train and test reported as counts (failing only above a params threshold:
several official splits share sentences with their train split, and SICK reuses sentences by design,
so whole examples are compared, e.g. the pair, never single sentences)."""

from __future__ import annotations

import hashlib
import logging

import pandas as pd

from s2sflow.core.contracts import ContractReport, validate_frame


def _key(row: dict, shape: str) -> str:
    if shape == "tagging":
        text = " ".join(row["tokens"])
    else:
        text = f"{row['text_a']}\t{row['text_b']}"
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def _frame(rows: list[dict], shape: str, layers: list[str]) -> pd.DataFrame:
    if shape == "tagging":
        return pd.DataFrame({
            "n_words": [len(r["tokens"]) for r in rows],
            "shortest_word": [min((len(t.strip()) for t in r["tokens"]), default=0) for r in rows],
            "aligned": [all(len(r[layer]) == len(r["tokens"]) for layer in layers) for r in rows],
            "key": [_key(r, shape) for r in rows],
        })
    return pd.DataFrame({
        "text_a_chars": [len(r["text_a"].strip()) for r in rows],
        "text_b_chars": [len(r["text_b"].strip()) for r in rows],
        "label": [r["label"] for r in rows],
        "key": [_key(r, shape) for r in rows],
    })


def check_text_contract(task: str, splits: dict[str, list[dict]], shape: str, cfg, labels: list[str] | None
                        ) -> ContractReport:
    import great_expectations as gx

    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    e = gx.expectations
    frames = {name: _frame(rows, shape, [*cfg.layers, *cfg.keep]) for name, rows in splits.items()}
    test_keys = set(frames["test"]["key"])
    overlap = {name: int(frames[name]["key"].isin(test_keys).sum()) for name in ("train", "validation")}
    for name, frame in frames.items():
        frame["in_test"] = frame["key"].isin(test_keys) if name != "test" else False

    def expectations(name: str) -> list:
        n = len(frames[name])
        out = [e.ExpectTableRowCountToBeBetween(min_value=int(cfg.min_counts.get(name, 1)), max_value=None)]
        if shape == "tagging":
            out += [e.ExpectColumnValuesToBeBetween(column="n_words", min_value=1, max_value=cfg.max_words),
                    e.ExpectColumnValuesToBeBetween(column="shortest_word", min_value=1, max_value=None),
                    e.ExpectColumnValuesToBeInSet(column="aligned", value_set=[True])]
        else:
            out += [e.ExpectColumnValuesToBeBetween(column="text_a_chars", min_value=1, max_value=cfg.max_chars),
                    e.ExpectColumnValuesToBeBetween(column="text_b_chars", min_value=1 if cfg.text_b else 0,
                                                    max_value=cfg.max_chars if cfg.text_b else 0),
                    e.ExpectColumnValuesToNotBeNull(column="label")]
            if shape == "classification":
                out += [e.ExpectColumnValuesToBeInSet(column="label", value_set=labels),
                        e.ExpectColumnDistinctValuesToContainSet(column="label", value_set=labels)]
            else:
                lo, hi = cfg.score_range
                out += [e.ExpectColumnValuesToBeBetween(column="label", min_value=lo, max_value=hi)]
        if name != "test":
            out.append(e.ExpectColumnValuesToBeInSet(column="in_test", value_set=[False],
                                                     mostly=max(0.0, 1.0 - cfg.max_train_test_overlap / max(n, 1))))
        return out

    report = validate_frame(task, {name: (frame, expectations(name)) for name, frame in frames.items()})
    report.summary["train_test_overlap"] = overlap
    report.summary["max_train_test_overlap"] = cfg.max_train_test_overlap
    report.summary["compared"] = "whole sentences" if shape == "tagging" else "whole examples (text_a, text_b)"
    return report
