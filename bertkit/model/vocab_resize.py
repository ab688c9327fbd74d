"""Growing a model's vocabulary: new token embeddings start as the mean of existing ones.

When a character-level Chinese BERT becomes a word-level one (WoBERT), each new word's embedding starts as the mean
of its characters' embeddings, so the model begins close to what it computed before. The caller says which old
rows to average for each new token; this module knows nothing of tokenization.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def _base_model(model: nn.Module) -> nn.Module:
    """The encoder inside a head model (``model.bert``, ``model.roberta``, …), or the model itself."""
    return getattr(model, "base_model", model)


@torch.no_grad()
def append_mean_embeddings(model: nn.Module, sources: Sequence[Sequence[int]]) -> nn.Module:
    """Append one word embedding per entry of ``sources``, the mean of the listed old rows; return ``model``.

    A tied MLM decoder follows the new matrix, and its output bias grows the same way (mean of the old biases);
    ``model.config.vocab_size`` is updated. Old ids keep their rows.
    """
    embeddings = _base_model(model).embeddings
    old: nn.Embedding = embeddings.word_embeddings
    old_size = old.num_embeddings
    for position, ids in enumerate(sources):
        if not ids:
            raise ValueError(f"new token {position} has no old ids to average")
        bad = [i for i in ids if not 0 <= i < old_size]
        if bad:
            raise ValueError(f"new token {position}: ids {bad} are outside the old vocabulary (0..{old_size - 1})")
    index = [torch.tensor(list(ids), dtype=torch.long) for ids in sources]

    def grown(rows: torch.Tensor) -> torch.Tensor:
        extra = [rows[i].mean(dim=0) for i in index]
        return torch.cat([rows, torch.stack(extra)]) if extra else rows.clone()

    new = nn.Embedding(old_size + len(sources), old.embedding_dim, padding_idx=old.padding_idx,
                       device=old.weight.device, dtype=old.weight.dtype)
    new.weight.copy_(grown(old.weight))
    new.weight.requires_grad_(old.weight.requires_grad)
    embeddings.word_embeddings = new

    predictions = getattr(getattr(model, "cls", None), "predictions", None)
    if predictions is not None:
        decoder = predictions.decoder
        if decoder.weight is not old.weight:
            raise ValueError("the MLM decoder is not tied to the word embeddings; cannot grow it consistently")
        decoder.weight = new.weight
        decoder.out_features = new.num_embeddings
        predictions.bias = nn.Parameter(grown(predictions.bias))
    model.config.vocab_size = new.num_embeddings
    return model
