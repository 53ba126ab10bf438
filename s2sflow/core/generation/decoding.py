"""What the encoder-decoder kinds share around the network: teacher-forcing inputs, decoding ids to
text, byte-stable weights, the ONNX graphs of encoder and decoder, and the scores of generated text."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from s2sflow.core.generation.model import EOS, PAD

IGNORE = -100


def shift_right(labels: torch.Tensor) -> torch.Tensor:
    """Decoder inputs for teacher forcing: the start token, then the target shifted one step."""
    out = labels.new_full(labels.shape, PAD)
    out[:, 1:] = labels[:, :-1].masked_fill(labels[:, :-1] == IGNORE, PAD)
    out[:, 0] = EOS  # BART starts decoding from </s>
    return out


def token_losses(logits: torch.Tensor, labels: torch.Tensor,
                 label_smoothing: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(training loss: label-smoothed cross-entropy averaged over target tokens, summed plain NLL, number
    of target tokens) from one float32 log-softmax over the vocabulary (two ``F.cross_entropy`` calls
    computed it twice: 12% of a dialogue training step). Same definition as ``F.cross_entropy``'s
    ``label_smoothing``: (1 - e) * NLL + e * mean over the vocabulary of -log p."""
    logp = torch.log_softmax(logits.flatten(0, 1), dim=-1, dtype=torch.float32)  # float32 under autocast
    target = labels.flatten()
    keep = target != IGNORE
    n = keep.sum()
    nll_tokens = -logp.gather(1, target.clamp(min=0)[:, None]).squeeze(1) * keep
    nll = nll_tokens.sum()
    if label_smoothing:
        smooth = -(logp.mean(dim=1) * keep).sum()
        loss = ((1 - label_smoothing) * nll + label_smoothing * smooth) / n.clamp(min=1)
    else:
        loss = nll / n.clamp(min=1)
    return loss, nll, n


def decode(tokenizer, rows) -> list[str]:
    return [tokenizer.decode([int(t) for t in row], skip_special_tokens=True).strip() for row in rows]


def save_weights(net: torch.nn.Module, path: Path) -> None:
    """``safetensors.torch.save_model`` without the alias metadata it adds for tied tensors: safetensors
    writes metadata from a hash map, in an order that changes from process to process, so the same
    weights gave different bytes (and DVC hashes) on every run. ``load_model`` finds the tied names
    from the model itself."""
    from safetensors.torch import _remove_duplicate_names, save_file

    state = net.state_dict()
    for removed in _remove_duplicate_names(state).values():
        for name in removed:
            del state[name]
    save_file({k: v.contiguous() for k, v in sorted(state.items())}, str(path))


ENCODER_INPUTS, DECODER_INPUTS = ["input_ids", "attention_mask"], ["decoder_input_ids", "encoder_hidden_states",
                                                                   "encoder_attention_mask"]


class EncoderGraph(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        self.encoder = net.get_encoder()

    def forward(self, input_ids, attention_mask):
        return self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


class DecoderGraph(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        self.decoder, self.lm_head = net.get_decoder(), net.lm_head
        self.register_buffer("final_logits_bias", net.final_logits_bias.clone())

    def forward(self, decoder_input_ids, encoder_hidden_states, encoder_attention_mask):
        hidden = self.decoder(input_ids=decoder_input_ids, encoder_hidden_states=encoder_hidden_states,
                              encoder_attention_mask=encoder_attention_mask, use_cache=False).last_hidden_state
        return self.lm_head(hidden) + self.final_logits_bias


def scores(hyps: list[str], refs: list[str] | list[list[str]], kinds=("sacrebleu",)) -> tuple[dict, dict]:
    """The ``kinds`` of score of outputs against one reference each (``refs``: strings) or several
    (lists); returns (metrics, signatures)."""
    many = [r if isinstance(r, list) else [r] for r in refs]
    metrics, signatures = {}, {}
    if "sacrebleu" in kinds:
        from sacrebleu.metrics import BLEU, CHRF

        width = max((len(r) for r in many), default=1)  # pad with the first reference: BLEU/chrF are unchanged
        streams = [[r[k] if k < len(r) else r[0] for r in many] for k in range(width)]
        bleu, chrf = BLEU(), CHRF()
        b, c = bleu.corpus_score(hyps, streams), chrf.corpus_score(hyps, streams)
        metrics.update(bleu=round(b.score, 4), chrf=round(c.score, 4), bleu_brevity_penalty=round(b.bp, 4),
                       length_ratio=round(b.sys_len / max(b.ref_len, 1), 4))
        signatures.update(bleu=str(bleu.get_signature()), chrf=str(chrf.get_signature()))
    if "rouge" in kinds:
        metrics.update(rouge_scores(hyps, many))
        signatures["rouge"] = "rouge-score 0.1.2, use_stemmer=True, F-measure, mean over references"
    if "distinct" in kinds:
        for n in (1, 2):
            grams = [tuple(w[i:i + n]) for w in (h.lower().split() for h in hyps) for i in range(len(w) - n + 1)]
            metrics[f"distinct_{n}"] = round(len(set(grams)) / max(len(grams), 1), 4)
    return metrics, signatures


def rouge_scores(hyps: list[str], refs: list[list[str]]) -> dict:
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    sums = dict.fromkeys(("rouge1", "rouge2", "rougeL", "rougeL_max"), 0.0)
    for hyp, item_refs in zip(hyps, refs):
        each = [scorer.score(ref, hyp) for ref in item_refs]
        for key in ("rouge1", "rouge2", "rougeL"):
            sums[key] += sum(s[key].fmeasure for s in each) / len(each)
        sums["rougeL_max"] += max(s["rougeL"].fmeasure for s in each)
    return {k: round(v / max(len(hyps), 1), 4) for k, v in sums.items()}


def samples_markdown(task: str, rows: list[dict], metrics: dict, decoding: dict) -> str:
    def cell(text) -> str:
        text = " ‖ ".join(text) if isinstance(text, list) else text
        return text.replace("|", "\\|").replace("\n", " / ")

    lines = [f"# {task}: test samples", "", "Decoding: " + ", ".join(f"{k}={v}" for k, v in decoding.items()),
             "", "Test scores: " + ", ".join(f"{k} {v}" for k, v in metrics.items() if isinstance(v, float)), "",
             "| # | source | reference | prediction |", "| --- | --- | --- | --- |"]
    lines += [f"| {r['index']} | {cell(r['source'])} | {cell(r['reference'])} | {cell(r['prediction'])} |"
              for r in rows]
    return "\n".join(lines) + "\n"


def test_nll(net, datamodule, split: str, losses) -> tuple[float, int]:
    """Teacher-forced summed NLL over every target token of ``split`` and the number of those tokens;
    ``losses(net, batch, smoothing)`` is the kind's (loss, summed NLL, token count)."""
    nll, tokens = 0.0, 0
    with torch.no_grad():
        for batch in datamodule.eval_loader(split):
            _, batch_nll, n = losses(net, batch, 0.0)
            nll, tokens = nll + float(batch_nll), tokens + int(n)
    return nll, tokens


def perplexity(nll: float, units: int) -> float:
    return round(math.exp(min(nll / max(units, 1), 50.0)), 4)


def test_perplexity(net, datamodule, split: str, losses) -> float:
    """Teacher-forced perplexity per target token of ``split``."""
    return perplexity(*test_nll(net, datamodule, split, losses))
