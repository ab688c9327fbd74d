"""StructBERT's word structural objective (Wang et al. 2019, §2.2) as an extra loss of masked-LM pretraining: in a
share of the sequences, three consecutive tokens that are neither masked nor special are put in a random other
order, and the MLM head must give back the original token at each of the three positions. ``L = L_mlm + L_word``
(+ the pair task): each term a mean over its own positions, so the few shuffled tokens are not drowned among the
masked ones.

The shuffle happens after masking (the trigram is picked among unmasked tokens) and is a real permutation: one
that changes the token sequence, never the identity, and never a window of three equal tokens (nothing to
restore). ``word_order_labels[b, i]`` is the original token at a shuffled position, -100 elsewhere.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..model.heads import IGNORE_INDEX

SPAN = 3  # the paper's K: trigrams
PERMUTATIONS = tuple(itertools.permutations(range(SPAN)))


def trigram_starts(input_ids: Sequence[int], labels: Sequence[int], special: set[int] | frozenset[int],
                   length: int | None = None) -> list[int]:
    """Starts of the windows of ``SPAN`` consecutive real tokens (the first ``length``), none masked (label -100)
    or special, not all one token (a shuffle could not change them)."""
    n = len(input_ids) if length is None else length
    free = [labels[i] == IGNORE_INDEX and input_ids[i] not in special for i in range(n)]
    return [s for s in range(n - SPAN + 1) if all(free[s:s + SPAN]) and len(set(input_ids[s:s + SPAN])) > 1]


def shuffle_trigram(input_ids: list[int], labels: Sequence[int], special: set[int] | frozenset[int],
                    rng: random.Random, length: int | None = None) -> tuple[list[int], list[int]] | None:
    """(the ids with one trigram reordered, labels holding the original tokens there and -100 elsewhere), or None
    when the sequence has no trigram to shuffle."""
    starts = trigram_starts(input_ids, labels, special, length)
    if not starts:
        return None
    start = rng.choice(starts)
    window = input_ids[start:start + SPAN]
    changing = [p for p in PERMUTATIONS if [window[i] for i in p] != window]  # never the identity
    order = rng.choice(changing)
    shuffled = list(input_ids)
    shuffled[start:start + SPAN] = [window[i] for i in order]
    targets = [IGNORE_INDEX] * len(input_ids)
    targets[start:start + SPAN] = window
    return shuffled, targets


def add_word_order(batch: dict[str, torch.Tensor], probability: float, special: set[int] | frozenset[int],
                   rng: random.Random) -> dict[str, torch.Tensor]:
    """The batch with a trigram shuffled in each row drawn with ``probability`` and its ``word_order_labels``."""
    input_ids = batch["input_ids"].clone()
    targets = torch.full_like(input_ids, IGNORE_INDEX)
    lengths = batch["attention_mask"].sum(-1).tolist()
    for row in range(input_ids.shape[0]):
        if rng.random() >= probability:
            continue
        done = shuffle_trigram(input_ids[row].tolist(), batch["labels"][row].tolist(), special, rng, lengths[row])
        if done is not None:
            input_ids[row], targets[row] = torch.tensor(done[0]), torch.tensor(done[1])
    return batch | {"input_ids": input_ids, "word_order_labels": targets}


class WordOrderBatches:
    """Masked-LM batches (any batch source) with StructBERT's shuffled trigrams added, resumable: its own seeded
    draws are saved beside the source's state."""

    def __init__(self, source: Any, probability: float, special: set[int], seed: int = 0, rank: int = 0):
        if not 0.0 < probability <= 1.0:
            raise ValueError(f"word_order_probability must be in (0, 1], got {probability}")
        self.source, self.probability, self.special = source, probability, frozenset(special)
        self.rng = random.Random(seed * 7919 + 17 + 1000 * rank)

    def next_batch(self) -> dict[str, torch.Tensor]:
        return add_word_order(self.source.next_batch(), self.probability, self.special, self.rng)

    def state_dict(self) -> dict[str, Any]:
        return {"source": self.source.state_dict(), "rng": self.rng.getstate()}

    def load_state_dict(self, values: dict[str, Any]) -> None:
        self.source.load_state_dict(values["source"])
        version, internal, gauss = values["rng"]
        self.rng.setstate((version, tuple(internal), gauss))


def word_order_losses(logits: torch.Tensor, targets: torch.Tensor, shuffled: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(L_mlm, L_word, predicted ids) from the logits of the predicted rows: ``shuffled`` marks the word-order
    rows; L_word is 0 (in the graph) when no row was shuffled."""
    logits = logits.float()
    mlm = F.cross_entropy(logits[~shuffled], targets[~shuffled])
    word = F.cross_entropy(logits[shuffled], targets[shuffled]) if shuffled.any() else logits.sum() * 0.0
    return mlm, word, logits.argmax(-1)


def word_order_step(model: nn.Module, batch: dict[str, torch.Tensor], pair_task: bool = True
                    ) -> tuple[torch.Tensor, dict[str, float]]:
    """``L_mlm + L_word (+ L_pair)`` of one batch; the vocabulary projection runs on the masked and the shuffled
    positions only. ``word_order_loss`` is the term added (0 in a batch where no row was shuffled)."""
    labels, order_labels = batch["labels"], batch["word_order_labels"]
    is_order = order_labels != IGNORE_INDEX
    joint = torch.where(is_order, order_labels, labels)  # the shuffle only takes unmasked tokens: disjoint
    out = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"], labels=joint,
                next_sentence_label=batch["next_sentence_label"] if pair_task else None, only_masked_logits=True)
    predicted = joint != IGNORE_INDEX
    targets, shuffled = joint[predicted], is_order[predicted]  # row-major: the logits' row order
    mlm, word, predictions = word_order_losses(out.prediction_logits, targets, shuffled)
    loss = mlm + word + (out.nsp_loss if pair_task else 0.0)
    stats = {"mlm_loss": mlm.item(), "word_order_loss": word.item(),
             "mlm_accuracy": (predictions[~shuffled] == targets[~shuffled]).float().mean().item(),
             "word_order_tokens": float(shuffled.sum()), "tokens": float(batch["attention_mask"].sum())}
    if pair_task:
        stats["nsp_loss"] = out.nsp_loss.item()
        stats["nsp_accuracy"] = (out.seq_relationship_logits.argmax(-1) == batch["next_sentence_label"]
                                 ).float().mean().item()
    return loss, stats


@torch.no_grad()
def evaluate_word_order(model: nn.Module, batches: list[dict[str, torch.Tensor]]) -> dict[str, float]:
    """Cross-entropy and accuracy of restoring the shuffled tokens over fixed batches (``add_word_order``'s)."""
    was_training = model.training
    model.eval()
    loss_sum = correct = total = 0.0
    for batch in batches:
        order_labels = batch["word_order_labels"]
        if not (order_labels != IGNORE_INDEX).any():
            continue
        out = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"], labels=order_labels,
                    only_masked_logits=True)
        targets = order_labels[order_labels != IGNORE_INDEX]
        loss_sum += F.cross_entropy(out.prediction_logits.float(), targets, reduction="sum").item()
        correct += (out.prediction_logits.argmax(-1) == targets).sum().item()
        total += targets.numel()
    model.train(was_training)
    if total == 0:
        raise ValueError("the evaluation batches hold no shuffled trigram")
    return {"word_order_loss": loss_sum / total, "word_order_accuracy": correct / total, "shuffled": total}
