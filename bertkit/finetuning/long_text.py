"""Texts longer than the window, for classification: which tokens the model sees, chosen by one option.

=============  =====================================================================================================
strategy       the model sees
=============  =====================================================================================================
head           the first ``max_length - 2`` tokens (plain truncation)
tail           the last ``max_length - 2`` tokens
head+tail      the first ``head_tokens`` and the last ``max_length - 2 - head_tokens`` (Sun et al. 2019: 128 + 382);
               ``head_tokens: auto`` follows a rule that depends on the text's length: up to 800 tokens
               128 + 382, longer 256 + 254 (at max_length 512; the same shares of a smaller window)
sliding        windows of ``max_length - 2`` tokens starting every ``stride`` tokens; the document's logits are the
               mean (or max) of its windows' logits. In training every window is an example with the document's label.
key_sentences  the sentences most like the document's mean vector, kept in their order up to the window
               (key_sentences.py; the task needs sentence vectors, so long_tasks.py builds it)
hierarchical   windows every ``stride`` tokens (none: back to back), at most ``max_chunks``; each window's
               vector → one transformer layer over the windows → the head, trained end to end (hierarchical.py)
=============  =====================================================================================================
"""

from __future__ import annotations

import numpy as np

STRATEGIES = ("head", "tail", "head+tail", "sliding", "key_sentences", "hierarchical")
MODEL_STRATEGIES = ("key_sentences", "hierarchical")  # need the model (vectors, a reader): long_tasks.py
AGGREGATIONS = ("mean", "max")
AUTO = "auto"
LONG_DOCUMENT = 800  # the length (in tokens) past which the auto rule gives the head the larger share
FULL_WINDOW = 510  # the window (max_length 512 less [CLS] and [SEP]) the auto rule's shares are given for


def auto_head_tokens(length: int, budget: int) -> int:
    """The auto head+tail split of a text of ``length`` tokens into a window of ``budget``: 128 head tokens
    (of 510) up to 800 tokens, 256 beyond, scaled to smaller windows; the tail always keeps some tokens."""
    share = 128 if length <= LONG_DOCUMENT else 256
    return max(1, min(budget - 1, round(budget * share / FULL_WINDOW)))


def check_strategy(strategy: str, budget: int, head_tokens: int | str, stride: int | None, aggregation: str) -> None:
    """Refuse settings that cannot work, naming the setting."""
    if strategy not in STRATEGIES:
        raise ValueError(f"long_text must be one of {STRATEGIES}, got {strategy!r}")
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"window_aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")
    if budget < 1:
        raise ValueError("max_length leaves no room for text after [CLS] and [SEP]")
    if strategy == "head+tail" and head_tokens == AUTO and budget < 2:
        raise ValueError("head+tail needs max_length ≥ 4: a head and a tail token besides [CLS] and [SEP]")
    if strategy == "head+tail" and head_tokens != AUTO and not 0 < head_tokens < budget:
        raise ValueError(f"head_tokens={head_tokens} must lie between 1 and max_length - 3 = {budget - 1} "
                         "so that the tail keeps some tokens (or use head_tokens: auto)")
    if strategy in ("sliding", "hierarchical") and stride is not None and not 0 < stride <= budget:
        raise ValueError(f"window_stride={stride} must lie in 1..{budget} (max_length - 2)")


def windows(
    ids: list[int], strategy: str, budget: int, head_tokens: int | str = AUTO, stride: int | None = None
) -> list[list[int]]:
    """The token runs (without ``[CLS]``/``[SEP]``) that represent one text; one run unless ``sliding``."""
    if strategy in MODEL_STRATEGIES:  # a plain task would cut these texts as another strategy, silently
        raise ValueError(f"long_text: {strategy} needs the model's task (bertkit.finetuning.long_tasks.build_task)")
    if len(ids) <= budget:
        return [ids]
    if strategy == "head":
        return [ids[:budget]]
    if strategy == "tail":
        return [ids[-budget:]]
    if strategy == "head+tail":
        head = auto_head_tokens(len(ids), budget) if head_tokens == AUTO else head_tokens
        return [ids[:head] + ids[len(ids) - (budget - head):]]
    step = stride or max(1, budget // 2)
    starts = list(range(0, len(ids) - budget, step)) + [len(ids) - budget]  # the last window ends at the end
    return [ids[s:s + budget] for s in starts]


def chunk_runs(ids: list[int], budget: int, stride: int | None, max_chunks: int) -> list[list[int]]:
    """hierarchical: windows every ``stride`` tokens (none: back to back); past ``max_chunks`` windows, that many
    spread evenly over the document (first and last kept) so the reader still sees all of it."""
    runs = windows(ids, "sliding", budget, stride=stride or budget)
    if len(runs) <= max_chunks:
        return runs
    return [runs[i] for i in np.linspace(0, len(runs) - 1, max_chunks).round().astype(int)]


def aggregate(logits: np.ndarray, owners: np.ndarray, count: int, how: str = "mean") -> np.ndarray:
    """Per-document logits from per-window logits: ``owners[i]`` is the document of window ``i``."""
    out = np.full((count, logits.shape[1]), -np.inf if how == "max" else 0.0, dtype=np.float64)
    if how == "max":
        np.maximum.at(out, owners, logits)
        return out
    np.add.at(out, owners, logits)
    return out / np.bincount(owners, minlength=count)[:, None]
