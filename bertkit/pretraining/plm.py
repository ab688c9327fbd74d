"""XLNet's permutation language model (Yang et al. 2019, §2.2–2.3): each sequence draws a random factorisation
order of its tokens and is predicted autoregressively in that order — so every token learns from context on both
sides, and nothing is replaced by [MASK]. Partial prediction: only the last ⌈n/K⌉ tokens of the order (K = 6) are
targets; the rest are context.

What the masks say, as the reference ``_local_perm`` builds them: context tokens see every context token (their
order among themselves does not matter) and no target; a target sees the context and the targets before it in the
order, never itself (its query stream reads ``mask_emb`` in its place). Special tokens (``[SEP]``, ``[CLS]``) and
padding are context, never targets. ``perm_mask[b, i, j] = 1``: i may not see j; ``target_mapping[b, m, j] = 1``:
prediction m is of position j; ``labels[b, m]`` its token (-100 for a row with fewer predictions).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ..model.heads import IGNORE_INDEX

PARTIAL_PREDICTION_K = 6  # the paper's K: 1/K of each order is predicted


@dataclass
class PLMExample:
    """One sequence's factorisation order (positions, first to last) and its targets (the order's last ones)."""

    input_ids: list[int]
    order: list[int]
    targets: list[int]


def num_targets(candidates: int, k: int = PARTIAL_PREDICTION_K) -> int:
    """⌈candidates / K⌉: how many tokens of an order are predicted."""
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ValueError(f"the partial-prediction K must be an integer ≥ 1, got {k!r}")
    return math.ceil(candidates / k)


def plm_example(input_ids: Sequence[int], rng: random.Random, k: int = PARTIAL_PREDICTION_K,
                special_ids: frozenset[int] | set[int] = frozenset()) -> PLMExample:
    """A random factorisation order of the positions that may be predicted (not special tokens) and its targets."""
    candidates = [i for i, token in enumerate(input_ids) if token not in special_ids]
    if not candidates:
        raise ValueError("a PLM example needs at least one token that is not a special token")
    order = rng.sample(candidates, len(candidates))
    return PLMExample(list(input_ids), order, order[len(order) - num_targets(len(order), k):])


def perm_mask_of(example: PLMExample, length: int) -> torch.Tensor:
    """(length, length) with 1 where i may not see j: targets are hidden from the context and from targets that
    come no later in the order (themselves included); everything else is visible."""
    rank = torch.full((length,), -1)  # context: before every target
    for position, target in enumerate(example.targets):
        rank[target] = position
    is_target = rank >= 0
    hidden = rank[:, None] + (~is_target[:, None]).long() <= rank[None, :]  # self_rev_index ≤ rev_index
    return (hidden & is_target[None, :]).float()


def plm_batch(sequences: Sequence[Sequence[int]], pad_id: int, rng: random.Random, k: int = PARTIAL_PREDICTION_K,
              special_ids: frozenset[int] | set[int] = frozenset()) -> dict[str, torch.Tensor]:
    """Padded ``input_ids`` / ``attention_mask`` and each row's ``perm_mask``, ``target_mapping``, ``labels``."""
    if not sequences:
        raise ValueError("plm_batch needs at least one sequence")
    length = max(len(s) for s in sequences)
    examples = [plm_example(s, rng, k, special_ids) for s in sequences]
    predictions = max(len(e.targets) for e in examples)
    batch = len(sequences)
    input_ids = torch.full((batch, length), pad_id)
    attention_mask = torch.zeros(batch, length, dtype=torch.long)
    perm_mask = torch.zeros(batch, length, length)
    target_mapping = torch.zeros(batch, predictions, length)
    labels = torch.full((batch, predictions), IGNORE_INDEX)
    for row, example in enumerate(examples):
        n = len(example.input_ids)
        input_ids[row, :n] = torch.tensor(example.input_ids)
        attention_mask[row, :n] = 1
        perm_mask[row] = perm_mask_of(example, length)
        for slot, position in enumerate(example.targets):
            target_mapping[row, slot, position] = 1.0
            labels[row, slot] = example.input_ids[position]
    return dict(input_ids=input_ids, attention_mask=attention_mask, perm_mask=perm_mask,
                target_mapping=target_mapping, labels=labels)


def document_segments(tokens: Sequence[int], streams: int, length: int) -> list[list[list[int]]]:
    """Transformer-XL's batching: the document cut into ``streams`` equal parts read side by side, ``length``
    tokens a step, so row s of step t continues row s of step t - 1 and the memory carries across steps."""
    for name, value in (("streams", streams), ("length", length)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be an integer ≥ 1, got {value!r}")
    part = len(tokens) // streams
    if part < length:
        raise ValueError(f"a document of {len(tokens)} tokens gives {streams} streams of {part} tokens, fewer than "
                         f"one segment of {length}")
    return [[list(tokens[s * part + t * length: s * part + (t + 1) * length]) for s in range(streams)]
            for t in range(part // length)]


def plm_step(model: nn.Module, batch: dict[str, torch.Tensor], mems: Sequence[torch.Tensor] | None = None
             ) -> tuple[torch.Tensor, dict[str, float], tuple[torch.Tensor, ...] | None]:
    """Loss of one PLM batch for an ``XLNetLMHeadModel``, its accuracy, and the memory for the document's next
    segment (``mems``: the previous segment's; returned when the model keeps memory, ``config.mem_len``)."""
    use_mems = mems is not None or getattr(model, "module", model).config.mem_len is not None  # DDP: .module
    out = model(batch["input_ids"], batch["attention_mask"], mems=mems, perm_mask=batch["perm_mask"],
                target_mapping=batch["target_mapping"], labels=batch["labels"], use_mems=use_mems)
    labels = batch["labels"]
    real = labels != IGNORE_INDEX
    accuracy = (out.logits.argmax(-1)[real] == labels[real]).float().mean().item()
    return out.loss, {"plm_loss": out.loss.item(), "plm_accuracy": accuracy, "predictions": float(real.sum())}, \
        out.mems
