"""Batched inference, in one place: sort by length, right-pad each batch into tensors, put the rows back in order.

``SentenceEncoder.encode``, fine-tuning's ``predict`` (``Task.run``) and the server (``ServingModel``) all batch
through here, so batch order, padding and the reassembly of rows are the same everywhere; pretraining's collate
pads with :func:`pad_rows` too. Longest first: the first batch is the largest, so a memory problem shows at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm


def pad_rows(rows: Sequence[Sequence[int]], value: int, multiple: int = 1) -> torch.Tensor:
    """Right-pad integer rows to the longest (rounded up to ``multiple``) into one ``(batch, seq)`` long tensor."""
    width = -(-max(len(r) for r in rows) // multiple) * multiple
    out = np.full((len(rows), width), value, dtype=np.int64)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return torch.from_numpy(out)


def lengths_mask(lengths: Sequence[int], width: int) -> torch.Tensor:
    """The 0/1 attention mask of right-padded rows of these lengths: ``(batch, width)``, long."""
    return (torch.arange(width) < torch.tensor(lengths).unsqueeze(1)).long()


def pad_batch(batch: Sequence[Sequence[int]], pad_id: int, device: torch.device | str = "cpu", multiple: int = 1
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad id lists into ``input_ids`` and ``attention_mask`` tensors (width rounded up to ``multiple``)."""
    input_ids = pad_rows(batch, pad_id, multiple)
    attention_mask = lengths_mask([len(ids) for ids in batch], input_ids.shape[1])
    return input_ids.to(device), attention_mask.to(device)


def sorted_batches(lengths: Sequence[int], batch_size: int) -> Iterator[list[int]]:
    """Indices in batches of similar length, longest first (ties keep input order): little padding per batch."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


def run_sorted(lengths: Sequence[int], batch_size: int, step: Callable[[list[int]], np.ndarray],
               width: int | None = None, progress: bool = False) -> np.ndarray | None:
    """``step(indices)`` on each length-sorted batch; its rows are put back in input order.

    Rows are vectors ``(batch, dim)`` or token matrices ``(batch, seq, dim)``; token matrices are zero-padded to
    ``width`` (default: the longest length). None when there are no rows.
    """
    out: np.ndarray | None = None
    batches = list(sorted_batches(lengths, batch_size))
    for chosen in tqdm(batches, desc="encode", disable=not progress, unit="batch"):
        rows = step(chosen)
        if out is None:
            seq = () if rows.ndim == 2 else (width if width is not None else max(lengths),)
            out = np.zeros((len(lengths), *seq, rows.shape[-1]), dtype=np.float32)
        if rows.ndim == 3:
            out[chosen, : rows.shape[1]] = rows
        else:
            out[chosen] = rows
    return out


__all__ = ["lengths_mask", "pad_batch", "pad_rows", "run_sorted", "sorted_batches"]
