"""``objective: tlm`` in ``bertkit pretrain``: XLM's translation LM on parallel sentences (``tlm.py`` lays out and
masks each pair). The data is ``parallel_corpus`` (tab-separated lines ``lang<TAB>sentence<TAB>lang<TAB>translation``)
or, without one, numbers written out in each of ``languages`` (num2words); the model is an ``XLMWithLMHeadModel``
with one language embedding per entry of ``languages``. Batches are masked anew at every draw (as dynamic MLM) and
resume exactly; held-out pairs are masked once, fixed.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections import Counter
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..model import XLMWithLMHeadModel
from ..model.heads import IGNORE_INDEX
from ..tokenization import BertTokenizer
from ..training.device import model_device, move_batch
from .tlm import TLMExample, collate_tlm, parallel_numbers, tlm_example

Pair = tuple[int, list[int], int, list[int]]  # (language id, token ids, language id, token ids of the translation)
NUMBERS = 2000  # numbers written out when there is no parallel corpus


def read_parallel(paths: list[str]) -> list[tuple[str, str, str, str]]:
    """(language, sentence, language, translation) of each non-blank line; a malformed line is named."""
    pairs = []
    for path in paths:
        if not Path(path).is_file():
            raise FileNotFoundError(f"parallel_corpus file not found: {path}")
        with open(path, "rb") as handle:
            for number, raw in enumerate(handle, 1):
                try:
                    line = raw.decode("utf-8").rstrip("\r\n")
                except UnicodeDecodeError:
                    raise ValueError(f"{path}:{number} is not UTF-8 text") from None
                if not line.strip():
                    continue
                fields = line.split("\t")
                if len(fields) != 4 or not all(f.strip() for f in fields):
                    raise ValueError(f"{path}:{number}: expected lang<TAB>sentence<TAB>lang<TAB>translation, got "
                                     f"{len(fields)} field(s)")
                pairs.append(tuple(f.strip() for f in fields))
    if not pairs:
        raise ValueError(f"the parallel corpus {paths} holds no pair")
    return pairs


def tokenized_pairs(config: Any, tokenizer: BertTokenizer) -> list[Pair]:
    """The run's pairs as token ids, each side cut to fit ``max_seq_length`` (``[CLS] a [SEP] b [SEP]``)."""
    ids = {language: i for i, language in enumerate(config.languages)}
    if config.parallel_corpus:
        texts = read_parallel(config.parallel_corpus)
    else:
        texts = [(a, "".join(x).strip(), b, "".join(y).strip())
                 for a, x, b, y in parallel_numbers(list(range(NUMBERS)), config.languages)]
    side = (config.max_seq_length - 3) // 2
    pairs = []
    for number, (a, x, b, y) in enumerate(texts, 1):
        unknown = {a, b} - ids.keys()
        if unknown:
            raise ValueError(f"parallel pair {number} is in {sorted(unknown)}, not in languages {config.languages}")
        source, target = tokenizer.text_to_ids(x)[:side], tokenizer.text_to_ids(y)[:side]
        if source and target:
            pairs.append((ids[a], source, ids[b], target))
    return pairs


def split_pairs(pairs: list[Pair], eval_fraction: float) -> tuple[list[Pair], list[Pair]]:
    """Every k-th pair held out for evaluation (none with ``eval_fraction: 0``)."""
    if eval_fraction == 0:
        return pairs, []
    every = max(2, round(1 / eval_fraction))
    return ([p for i, p in enumerate(pairs) if i % every], [p for i, p in enumerate(pairs) if not i % every])


def mask_pair(pair: Pair, special: Any, vocab_size: int, masking: Any, rng: random.Random) -> TLMExample:
    a, source, b, target = pair
    return tlm_example(source, target, a, b, special, vocab_size, masking, rng)


class TLMBatches:
    """Endless TLM batches: a seeded shuffle per epoch, sharded by rank, each pair masked when drawn."""

    def __init__(self, pairs: list[Pair], batch_size: int, special: Any, vocab_size: int, masking: Any,
                 seed: int = 0, rank: int = 0, world_size: int = 1):
        self.pairs = pairs[rank::world_size]
        if len(self.pairs) < batch_size:
            raise ValueError(f"the parallel data gives {len(pairs)} pairs ({len(self.pairs)} for this rank), fewer "
                             f"than one batch of {batch_size}: add pairs or lower batch_size")
        self.batch_size, self.special, self.vocab_size, self.masking = batch_size, special, vocab_size, masking
        self.seed, self.epoch, self.position = seed + 1000 * rank, 0, 0
        self.rng = random.Random(self.seed)
        self.order = self._order()

    def _order(self) -> list[int]:
        order = list(range(len(self.pairs)))
        random.Random(self.seed * 7919 + self.epoch).shuffle(order)
        return order

    def next_batch(self) -> dict[str, torch.Tensor]:
        if self.position + self.batch_size > len(self.order):
            self.epoch, self.position = self.epoch + 1, 0
            self.order = self._order()
        chosen = [self.pairs[i] for i in self.order[self.position:self.position + self.batch_size]]
        self.position += self.batch_size
        return collate_tlm([mask_pair(p, self.special, self.vocab_size, self.masking, self.rng) for p in chosen],
                           self.special.pad)

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "position": self.position, "rng": self.rng.getstate()}

    def load_state_dict(self, values: dict[str, Any]) -> None:
        self.epoch, self.position = values["epoch"], values["position"]
        version, internal, gauss = values["rng"]
        self.rng.setstate((version, tuple(internal), gauss))
        self.order = self._order()


def tlm_model(model_config: Any, languages: list[str]) -> XLMWithLMHeadModel:
    """A fresh XLM with one language embedding per language of the run."""
    if model_config.model_type != "xlm":
        raise ValueError(f"objective tlm trains an XLM, not a {model_config.model_type} model")
    return XLMWithLMHeadModel(dataclasses.replace(model_config, n_langs=len(languages), use_lang_emb=True))


def fixed_eval_batches(pairs: list[Pair], special: Any, vocab_size: int, masking: Any, seed: int, batch_size: int,
                       limit: int) -> list[dict[str, torch.Tensor]]:
    """Held-out pairs masked once (the same masks in every run with this seed)."""
    rng = random.Random(seed + 1)
    examples = [mask_pair(p, special, vocab_size, masking, rng) for p in pairs[: limit * batch_size]]
    return [collate_tlm(examples[i:i + batch_size], special.pad) for i in range(0, len(examples), batch_size)]


def most_frequent(pairs: list[Pair]) -> int:
    """The token the unigram baseline always predicts."""
    return Counter(t for _, a, _, b in pairs for t in a + b).most_common(1)[0][0]


def tlm_step(model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
    """The TLM loss of one batch, with the masked accuracy and the token count."""
    out = model(**batch)
    labels = batch["labels"]
    predicted = labels != IGNORE_INDEX
    accuracy = (out.logits[predicted].argmax(-1) == labels[predicted]).float().mean().item()
    return out.loss, {"mlm_loss": out.loss.item(), "mlm_accuracy": accuracy,
                      "tokens": float(batch["attention_mask"].sum())}


@torch.no_grad()
def evaluate_tlm(model: nn.Module, batches: list[dict[str, torch.Tensor]], baseline_token: int | None = None
                 ) -> dict[str, float]:
    """Masked-token accuracy, loss and perplexity over the fixed held-out batches."""
    was_training = model.training
    model.eval()
    loss_sum = correct = total = baseline = 0.0
    device = model_device(model)
    for batch in batches:
        batch = move_batch(batch, device)
        out = model(**batch)
        labels = batch["labels"]
        targets = labels[labels != IGNORE_INDEX]
        loss_sum += out.loss.item() * targets.numel()
        correct += (out.logits[labels != IGNORE_INDEX].argmax(-1) == targets).sum().item()
        total += targets.numel()
        if baseline_token is not None:
            baseline += (targets == baseline_token).sum().item()
    model.train(was_training)
    if total == 0:
        raise ValueError("the evaluation set has no masked positions")
    metrics = {"mlm_accuracy": correct / total, "mlm_loss": loss_sum / total,
               "perplexity": math.exp(min(loss_sum / total, 50.0)), "predictions": total}
    if baseline_token is not None:
        metrics["unigram_baseline_accuracy"] = baseline / total
    return metrics


def tlm_data(config: Any, tokenizer: BertTokenizer, special: Any
             ) -> tuple[list[Pair], list[dict[str, torch.Tensor]], int]:
    """Training pairs, fixed-mask held-out batches and the unigram baseline's token."""
    pairs = tokenized_pairs(config, tokenizer)
    random.Random(config.seed).shuffle(pairs)  # held-out pairs from every language pair, not the last one
    train, held_out = split_pairs(pairs, config.eval_fraction)
    masking = config.masking_config()
    eval_batches = fixed_eval_batches(held_out, special, len(tokenizer), masking, config.seed, config.batch_size,
                                      config.eval_batches) if held_out else []
    return train, eval_batches, most_frequent(train)
