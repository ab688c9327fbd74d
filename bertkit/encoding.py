"""Sentence embeddings: texts → vectors, batched by length, pooled from any layer, optionally normalised."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .assets import default_model_dir
from .model import BertModel
from .pooling import POOLING_STRATEGIES, Pooling
from .tokenization import BertTokenizer


class SentenceEncoder:
    """A BERT and its tokenizer, turning texts into fixed-size vectors.

    ``SentenceEncoder.from_pretrained()`` loads the default model (all-MiniLM-L6-v2), whose intended output is
    ``encode(texts, pooling="mean", normalize=True)``.
    """

    def __init__(self, model: BertModel, tokenizer: BertTokenizer, max_length: int | None = None):
        self.model = model.eval()
        self.tokenizer = tokenizer
        positions = model.config.max_position_embeddings
        self.max_length = min(max_length or positions, positions)

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike | None = None, device: str | None = None) -> SentenceEncoder:
        """Load a Hugging Face / sentence-transformers folder (default: the installed MiniLM package)."""
        folder = Path(folder) if folder is not None else default_model_dir()
        model = BertModel.from_pretrained(folder)
        if device is not None:
            model.to(device)
        return cls(model, BertTokenizer.from_pretrained(folder), _sentence_transformers_max_length(folder))

    @property
    def device(self) -> torch.device:
        """Where the model's weights live."""
        return next(self.model.parameters()).device

    @property
    def dimension(self) -> int:
        """Size of one embedding (for a single layer)."""
        return self.model.config.hidden_size

    def encode(
        self,
        texts: str | Sequence[str],
        pooling: str = "mean",
        layer: int | Sequence[int] = -1,
        normalize: bool = False,
        batch_size: int = 32,
        max_length: int | None = None,
        truncate: bool = True,
        allow_empty: bool = False,
        show_progress_bar: bool = False,
    ) -> np.ndarray:
        """Embed ``texts`` → float32 array ``(n, dim)`` (``(dim,)`` for a single string), in input order.

        ``layer`` indexes the hidden states as transformers does (0 = embeddings, -1 = last layer); several layers
        are concatenated. Texts are sorted by token count so that batches carry little padding.
        """
        single = isinstance(texts, str)
        texts = _checked_texts([texts] if single else texts, allow_empty)
        layers = [layer] if isinstance(layer, int) else list(layer)
        depth = self.model.config.num_hidden_layers
        if not layers or any(not isinstance(i, int) or not -depth - 1 <= i <= depth for i in layers):
            raise ValueError(f"layer must be hidden-state indices in [{-depth - 1}, {depth}] (0 = embeddings, "
                             f"-1 = last of {depth} layers), got {layer!r}")
        if pooling not in POOLING_STRATEGIES:
            raise ValueError(f"pooling must be one of {POOLING_STRATEGIES}, got {pooling!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        max_length = self._checked_max_length(max_length)
        ids = [self.tokenizer.encode(t, truncation=truncate, max_length=max_length) for t in texts]
        if not truncate:
            too_long = [(i, len(x)) for i, x in enumerate(ids) if len(x) > max_length]
            if too_long:
                i, n = too_long[0]
                raise ValueError(f"text {i} has {n} tokens, more than max_length={max_length}; pass truncate=True")
        order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
        pool = Pooling(pooling) if pooling != "pooled" else None
        out: np.ndarray | None = None
        batches = range(0, len(order), batch_size)
        for start in tqdm(batches, desc="encode", disable=not show_progress_bar, unit="batch"):
            chosen = order[start : start + batch_size]
            vectors = self._encode_batch([ids[i] for i in chosen], pool, layers).numpy()
            if out is None:
                out = np.empty((len(texts), vectors.shape[1]), dtype=np.float32)
            out[chosen] = vectors
        if normalize:
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out[0] if single else out

    @torch.inference_mode()
    def _encode_batch(self, batch: list[list[int]], pool: Pooling | None, layers: list[int]) -> torch.Tensor:
        """One padded batch through the model, pooled (``pool=None``: the model's own pooler output)."""
        input_ids, attention_mask = pad_batch(batch, self.tokenizer.pad_token_id, self.device)
        want_layers = layers != [-1]
        output = self.model(input_ids, attention_mask=attention_mask, output_hidden_states=want_layers)
        if pool is None:
            if output.pooler_output is None:
                raise ValueError("pooling='pooled' needs a model with a pooler; this checkpoint has none")
            return output.pooler_output.float().cpu()
        hidden = output.hidden_states if want_layers else (output.last_hidden_state,)
        picked = [hidden[i] for i in layers] if want_layers else list(hidden)
        return torch.cat([pool(h, attention_mask) for h in picked], dim=-1).float().cpu()

    def _checked_max_length(self, max_length: int | None) -> int:
        positions = self.model.config.max_position_embeddings
        if max_length is None:
            return self.max_length
        if not 2 <= max_length <= positions:
            raise ValueError(f"max_length={max_length} must be between 2 and the model's {positions} positions")
        return max_length


def pad_batch(batch: list[list[int]], pad_id: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad id lists into ``input_ids`` and ``attention_mask`` tensors."""
    width = max(map(len, batch))
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, ids in enumerate(batch):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        attention_mask[row, : len(ids)] = 1
    return input_ids.to(device), attention_mask.to(device)


def _checked_texts(texts: Sequence[str], allow_empty: bool) -> list[str]:
    """A non-empty list of strings; empty or blank strings only when asked for."""
    if isinstance(texts, (bytes, dict)) or not isinstance(texts, Sequence):
        raise ValueError(f"texts must be a string or a list of strings, got {type(texts).__name__}")
    if len(texts) == 0:
        raise ValueError("texts is empty: nothing to encode")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValueError(f"texts[{i}] must be a string, got {type(text).__name__}: {text!r:.60}")
        if not allow_empty and not text.strip():
            raise ValueError(
                f"texts[{i}] is empty; its embedding would be that of [CLS] [SEP] alone (pass allow_empty=True)"
            )
    return list(texts)


def _sentence_transformers_max_length(folder: Path) -> int | None:
    """The ``max_seq_length`` a sentence-transformers folder was trained with (256 for MiniLM), if any."""
    path = folder / "sentence_bert_config.json"
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8")).get("max_seq_length")
