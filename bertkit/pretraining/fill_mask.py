"""Fill in ``[MASK]``: the masked-LM head's top-k tokens and their probabilities at every masked position."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..tokenization import BertTokenizer
from ..training.device import model_device


@dataclass
class Candidate:
    """One proposed token for a ``[MASK]``."""

    token: str
    token_id: int
    probability: float


@torch.no_grad()
def fill_mask(model: torch.nn.Module, tokenizer: BertTokenizer, text: str, top_k: int = 5) -> list[list[Candidate]]:
    """For each ``[MASK]`` in ``text``, the ``top_k`` most probable tokens (a model with an MLM head)."""
    if not hasattr(model, "cls") or not hasattr(model.cls, "predictions"):
        raise ValueError(f"{type(model).__name__} has no masked-LM head; load it with bertkit.AutoModelForMaskedLM")
    if top_k < 1:
        raise ValueError(f"top_k must be ≥ 1, got {top_k}")
    batch = tokenizer(text, truncation=True, max_length=model.config.max_tokens, return_tensors="pt")
    batch = batch.to(model_device(model))  # where the model is (a GPU after training there)
    mask_id = tokenizer.convert_tokens_to_ids(tokenizer.mask_token)
    positions = (batch["input_ids"][0] == mask_id).nonzero().flatten().tolist()
    if not positions:
        raise ValueError(f"no {tokenizer.mask_token} in the text: write {tokenizer.mask_token} where a word should "
                         "be predicted")
    model.eval()
    hidden = model.base_model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]).last_hidden_state
    probabilities = model.cls.predictions(hidden[0, positions]).softmax(-1)
    results = []
    for row in probabilities:
        values, ids = row.topk(min(top_k, row.numel()))
        results.append([Candidate(tokenizer.convert_ids_to_tokens(int(i)), int(i), float(v))
                        for v, i in zip(values, ids, strict=True)])
    return results
