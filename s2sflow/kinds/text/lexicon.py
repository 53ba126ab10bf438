"""A stem lexicon learnt from the train split's lemma column (``tokenize.stem_lexicon``).

A word never seen in training often has a stem that was: ``공부했다`` is new, but ``공부+를`` (lemma)
was tagged ``ncpa+jco``, so ``공부`` is a predicative noun. The lexicon maps each stem (the first
``sep``-separated piece of a lemma, NFC) to its most frequent first tag; a word's feature is the tag of
its longest prefix found in the lexicon, and whether that prefix is the whole word. The feature enters
the model as one more hashed id beside the affix ids (``tokenize.affixes``).

On the train split the feature is computed *out of fold*: sentences are dealt into ``folds`` and each
fold looks its words up in the lexicon of the other folds, so training sees the lexicon as often
wrong or silent as it is on unseen test words (a lexicon that always knows the answer would be
trusted blindly)."""

from __future__ import annotations

import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass

from s2sflow.core.errors import S2SFlowError
from s2sflow.core.params import param


@dataclass
class StemLexiconConfig:
    column: str = "lemma"  # the split column holding each word's lemma (split.keep: [lemma])
    layer: str = "xpos"  # the tag layer whose first piece the lexicon records
    sep: str = "+"  # separator of morphemes in the lemma and of tags in the layer
    folds: int = param(5, ge=2)  # out-of-fold lookup on the train split


def parse_stem_lexicon(params: dict, task: str) -> StemLexiconConfig | None:
    if not params:
        return None
    unknown = sorted(set(params) - set(StemLexiconConfig.__dataclass_fields__))
    if unknown:
        raise S2SFlowError(f"params.yaml: {task}.tokenize.stem_lexicon.{unknown[0]}: unknown key; use column, "
                           f"layer, sep, folds", task)
    cfg = StemLexiconConfig(**params)
    if not isinstance(cfg.folds, int) or cfg.folds < 2:
        raise S2SFlowError(f"params.yaml: {task}.tokenize.stem_lexicon.folds must be a whole number >= 2, "
                           f"got {cfg.folds!r}", task)
    return cfg


def stem_counts(lemmas: list[list[str]], tags: list[list[str]], sep: str) -> dict[str, Counter]:
    counts: dict[str, Counter] = defaultdict(Counter)
    for sentence_lemmas, sentence_tags in zip(lemmas, tags):
        for lemma, tag in zip(sentence_lemmas, sentence_tags):
            stem = unicodedata.normalize("NFC", lemma.split(sep)[0]).strip()
            if stem:
                counts[stem][tag.split(sep)[0]] += 1
    return counts


def majority(counts: dict[str, Counter]) -> dict[str, str]:
    """stem -> its most frequent tag (ties: the alphabetically first tag, so the result is stable)."""
    return {stem: min(c.items(), key=lambda kv: (-kv[1], kv[0]))[0] for stem, c in sorted(counts.items()) if c}


def stem_key(word: str, lexicon: dict[str, str]) -> str | None:
    """The lexicon's tag for the longest prefix of ``word`` it holds (``L:ncpa:p``; ``:w`` when the
    prefix is the whole word), or None."""
    word = unicodedata.normalize("NFC", word)
    for k in range(len(word), 0, -1):
        tag = lexicon.get(word[:k])
        if tag is not None:
            return f"L:{tag}:{'w' if k == len(word) else 'p'}"
    return None


def build(train: dict, cfg: StemLexiconConfig, task: str) -> dict[str, str]:
    """The lexicon of the whole train split (used for validation, test and predict)."""
    _check_columns(train, cfg, task)
    return majority(stem_counts(train[cfg.column], train[cfg.layer], cfg.sep))


def out_of_fold_keys(train: dict, cfg: StemLexiconConfig, task: str) -> list[list[str | None]]:
    """Per train sentence, per word: the stem key looked up in the lexicon of the other folds."""
    _check_columns(train, cfg, task)
    n = len(train["tokens"])
    fold_of = [i % cfg.folds for i in range(n)]
    per_fold = [stem_counts([train[cfg.column][i] for i in range(n) if fold_of[i] == f],
                            [train[cfg.layer][i] for i in range(n) if fold_of[i] == f], cfg.sep)
                for f in range(cfg.folds)]
    lexicons = []
    for f in range(cfg.folds):
        others: dict[str, Counter] = defaultdict(Counter)
        for g, counts in enumerate(per_fold):
            if g != f:
                for stem, c in counts.items():
                    others[stem].update(c)
        lexicons.append(majority(others))
    cache: dict[tuple[int, str], str | None] = {}
    out = []
    for i, words in enumerate(train["tokens"]):
        f = fold_of[i]
        row = []
        for w in words:
            if (f, w) not in cache:
                cache[(f, w)] = stem_key(w, lexicons[f])
            row.append(cache[(f, w)])
        out.append(row)
    return out


def _check_columns(train: dict, cfg: StemLexiconConfig, task: str) -> None:
    for name, what in ((cfg.column, "split.keep"), (cfg.layer, "split.layers")):
        if name not in train:
            raise S2SFlowError(f"params.yaml: {task}.tokenize.stem_lexicon reads the column '{name}', which the "
                               f"split does not hold; add it to {task}.{what}", task)
