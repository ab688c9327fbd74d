"""The encoding a worker runs: features → BERT hidden states → the configured strategy, rows in request order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..encoding import pad_batch
from ..model import BertModel
from ..pooling import cls_pool, max_pool, mean_pool
from ..tokenization import BertTokenizer
from .features import Item, build_features
from .settings import ServerSettings
from .strategies import FINE_TUNED

MODEL_BATCH_SIZE = 32  # sequences per forward pass: sorted by length, as SentenceEncoder batches


def load_tokenizer(folder: Path, cased: bool) -> BertTokenizer:
    """The model's tokenizer; lower-casing follows ``cased_tokenization`` as in bert-as-service."""
    return BertTokenizer.from_pretrained(folder, do_lower_case=not cased)


def last_real_token(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The vector at index ``mask.sum() - 1`` of each row: ``[SEP]`` for a single text, as the original computes it."""
    index = (mask.sum(dim=1) - 1).clamp(min=0)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), index]


def pool(strategy: str, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Apply a bert-as-service strategy to ``hidden`` (batch, seq, dim) under the 0/1 ``mask`` (batch, seq).

    NONE keeps every token vector and zeroes the masked ones (padding, and [CLS]/[SEP] under ``mask_cls_sep``).
    CLS_POOLED is not here: it is the model's pooler output, not a function of one layer.
    """
    if strategy == "REDUCE_MEAN":
        return mean_pool(hidden, mask)
    if strategy == "REDUCE_MAX":
        return max_pool(hidden, mask)
    if strategy == "REDUCE_MEAN_MAX":
        return torch.cat([mean_pool(hidden, mask), max_pool(hidden, mask)], dim=-1)
    if strategy == "CLS_TOKEN":
        return cls_pool(hidden, mask)
    if strategy == "SEP_TOKEN":
        return last_real_token(hidden, mask)
    if strategy == "NONE":
        return hidden * mask.unsqueeze(-1).to(hidden.dtype)
    raise ValueError(f"pooling strategy {strategy!r} is not a token-level strategy")


class ServingModel:
    """A BERT that answers bert-as-service encode requests with the server's settings."""

    def __init__(self, model: BertModel, tokenizer: BertTokenizer, settings: ServerSettings):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.settings = settings
        depth = model.config.num_hidden_layers
        # bert-as-service indexes encoder layer outputs (0 = first layer); hidden_states[0] is the embeddings.
        self.hidden_indices = [i + 1 if i >= 0 else depth + 1 + i for i in settings.pooling_layer]

    @classmethod
    def from_settings(cls, settings: ServerSettings, device: str = "cpu"):
        """Load the model folder named by ``settings`` (a fine-tuned one for CLASSIFICATION / REGRESSION)."""
        if settings.pooling_strategy in FINE_TUNED:
            from .fine_tuned import FineTunedServingModel

            return FineTunedServingModel.from_settings(settings, device)
        model = BertModel.from_pretrained(settings.model_dir).to(device)
        if settings.pooling_strategy == "CLS_POOLED" and "pooler.dense.weight" in model.loading_report.missing:
            raise ValueError(f"pooling_strategy CLS_POOLED needs a pooler, and {settings.model_dir} has no "
                             "pooler weights")
        return cls(model, load_tokenizer(settings.model_dir, settings.cased_tokenization), settings)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def encode(self, items: list[Item]) -> tuple[np.ndarray, list[list[str]]]:
        """Vectors of ``items`` (``(n, dim)``, or ``(n, seq, dim)`` for NONE) and each item's tokens."""
        settings = self.settings
        features, length = build_features(self.tokenizer, items, settings.max_seq_len,
                                          self.model.config.max_position_embeddings, settings.mask_cls_sep)
        order = sorted(range(len(features)), key=lambda i: -len(features[i].input_ids))
        out: np.ndarray | None = None
        for start in range(0, len(order), MODEL_BATCH_SIZE):
            chosen = order[start : start + MODEL_BATCH_SIZE]
            vectors = self._forward([features[i] for i in chosen]).numpy()
            if out is None:
                rows = (len(items), length) if vectors.ndim == 3 else (len(items),)
                out = np.zeros((*rows, vectors.shape[-1]), dtype=np.float32)
            if vectors.ndim == 3:
                out[chosen, : vectors.shape[1]] = vectors
            else:
                out[chosen] = vectors
        if out is None:  # an empty request
            empty = (0, length, self.dimension) if settings.pooling_strategy == "NONE" else (0, self.dimension)
            out = np.zeros(empty, dtype=np.float32)
        return out, [f.tokens for f in features]

    @property
    def dimension(self) -> int:
        """Width of one returned vector."""
        hidden = self.model.config.hidden_size
        if self.settings.pooling_strategy == "CLS_POOLED":
            return hidden
        width = hidden * len(self.hidden_indices)
        return 2 * width if self.settings.pooling_strategy == "REDUCE_MEAN_MAX" else width

    @torch.inference_mode()
    def _forward(self, batch: list) -> torch.Tensor:
        input_ids, _ = pad_batch([f.input_ids for f in batch], self.tokenizer.pad_token_id, self.device)
        segment_ids, _ = pad_batch([f.segment_ids for f in batch], 0, self.device)
        mask, _ = pad_batch([f.mask for f in batch], 0, self.device)
        strategy = self.settings.pooling_strategy
        output = self.model(input_ids, attention_mask=mask, token_type_ids=segment_ids,
                            output_hidden_states=strategy != "CLS_POOLED")
        if strategy == "CLS_POOLED":
            return output.pooler_output.float().cpu()
        hidden = torch.cat([output.hidden_states[i] for i in self.hidden_indices], dim=-1)
        return pool(strategy, hidden, mask).float().cpu()
