"""The encoding a worker runs: features → BERT hidden states → the configured strategy, rows in request order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..encoding import SentenceEncoder
from ..encoding.batching import pad_batch, pad_rows, run_sorted
from ..encoding.pooling import Pooling, pool
from ..encoding.precision import autocast
from ..encoding.unpadded import repad_rows
from ..model import EncoderModel
from ..model.unpadded import pack, unpadded_forward, unpadded_unsupported
from ..tokenization import BertTokenizer
from .features import Item, build_features
from .protocol import EMBED, ENCODE, TOKENS
from .settings import ServerSettings
from .strategies import FINE_TUNED, STRATEGY_MODES

MODEL_BATCH_SIZE = 32  # sequences per forward pass: sorted by length, as SentenceEncoder batches


def load_tokenizer(folder: Path, cased: bool) -> BertTokenizer:
    """The model's tokenizer; lower-casing follows ``cased_tokenization`` as in bert-as-service."""
    return BertTokenizer.from_pretrained(folder, do_lower_case=not cased)


def pool_strategy(strategy: str, hidden: torch.Tensor, mask: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
    """Apply a bert-as-service strategy to ``hidden`` (batch, seq, dim) under the 0/1 ``mask`` (batch, seq).

    NONE keeps every token vector and zeroes the masked ones (padding, and [CLS]/[SEP] under ``mask_cls_sep``);
    the others are pooling modes (``STRATEGY_MODES``), CLS_TOKEN / SEP_TOKEN over the ``padding`` mask alone.
    CLS_POOLED is not here: it is the model's pooler output, not a function of one layer.
    """
    if strategy == "NONE":
        return hidden * mask.unsqueeze(-1).to(hidden.dtype)
    if strategy not in STRATEGY_MODES:
        raise ValueError(f"pooling strategy {strategy!r} is not a token-level strategy")
    return pool(STRATEGY_MODES[strategy], hidden, padding if strategy in ("CLS_TOKEN", "SEP_TOKEN") else mask)


def sentence_settings(encoder: SentenceEncoder, folder: Path) -> dict:
    """The model folder's own sentence-transformers settings, as the TEI / OpenAI routes use them.

    Read from the encoder (which reads modules.json, the pooling config and sentence_bert_config.json). A plain
    model folder, without sentence-transformers files, gets TEI's defaults: mean pooling, unit vectors.
    """
    normalize = encoder.normalize if (Path(folder) / "modules.json").is_file() else True
    return {"pooling": encoder.pooling, "normalize": bool(normalize), "max_seq_length": int(encoder.max_seq_length)}


class ServingModel:
    """A BERT that answers bert-as-service encode requests with the server's settings, and the TEI / OpenAI
    routes' token ids with the folder's own sentence-transformers settings."""

    def __init__(self, model: EncoderModel, tokenizer: BertTokenizer, settings: ServerSettings,
                 sentence: dict | None = None):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.settings = settings
        self.sentence = sentence or {"pooling": "mean", "normalize": True,
                                     "max_seq_length": model.config.max_position_embeddings}
        depth = model.config.num_hidden_layers
        # bert-as-service indexes encoder layer outputs (0 = first layer); hidden_states[0] is the embeddings.
        self.hidden_indices = [i + 1 if i >= 0 else depth + 1 + i for i in settings.pooling_layer]

    @classmethod
    def from_settings(cls, settings: ServerSettings, device: str | torch.device = "cpu"):
        """Load the model folder named by ``settings`` (a fine-tuned one for CLASSIFICATION / REGRESSION)."""
        if settings.adapters:
            from .multi_adapter import AdapterServingModel

            return AdapterServingModel.from_settings(settings, device)
        if settings.pooling_strategy in FINE_TUNED:
            from .fine_tuned import FineTunedServingModel

            return FineTunedServingModel.from_settings(settings, device)
        encoder = SentenceEncoder.from_pretrained(settings.model_dir, device=device, precision=settings.precision)
        model = encoder.model
        if settings.pooling_strategy == "CLS_POOLED" and "pooler.dense.weight" in model.loading_report.missing:
            raise ValueError(f"pooling_strategy CLS_POOLED needs a pooler, and {settings.model_dir} has no "
                             "pooler weights")
        if settings.unpadded and (reason := unpadded_unsupported(model)):
            raise ValueError(f"-unpadded: {settings.model_dir} cannot run unpadded batches: {reason}")
        return cls(model, load_tokenizer(settings.model_dir, settings.cased_tokenization), settings,
                   sentence_settings(encoder, settings.model_dir))

    def run(self, task: str, items: list) -> tuple[np.ndarray, list | None]:
        """One batch of a task: bert-as-service ``encode``, or the TEI routes' ``embed`` / ``tokens``."""
        if task == ENCODE:
            return self.encode(items)
        if task == EMBED:
            return self.embed_ids(items), None
        if task == TOKENS:
            return self.token_vectors(items), None
        raise ValueError(f"the served model is not a fine-tuned classifier: it cannot answer task {task!r}")

    def embed_ids(self, ids: list[list[int]]) -> np.ndarray:
        """Sentence embeddings of complete token id sequences, pooled as the folder says (not normalised)."""
        sentence_pool = Pooling(self.sentence["pooling"])
        return self._by_length(ids, lambda hidden, mask: sentence_pool(hidden, mask))

    def token_vectors(self, ids: list[list[int]]) -> np.ndarray:
        """Last-layer vectors of every token, ``(n, longest, dim)``, zero past each sequence's end."""
        return self._by_length(ids, lambda hidden, mask: hidden * mask.unsqueeze(-1).to(hidden.dtype))

    def _by_length(self, ids: list[list[int]], reduce) -> np.ndarray:
        @torch.inference_mode()
        def step(chosen: list[int]) -> np.ndarray:
            hidden, _, mask = self._encoder([ids[i] for i in chosen])
            return reduce(hidden, mask).float().cpu().numpy()

        out = run_sorted([len(x) for x in ids], MODEL_BATCH_SIZE, step) if ids else None
        return out if out is not None else np.zeros((0, self.model.config.hidden_size), dtype=np.float32)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def encode(self, items: list[Item]) -> tuple[np.ndarray, list[list[str]]]:
        """Vectors of ``items`` (``(n, dim)``, or ``(n, seq, dim)`` for NONE) and each item's tokens."""
        settings = self.settings
        features, length = build_features(self.tokenizer, items, settings.max_seq_len,
                                          self.model.config.max_position_embeddings, settings.mask_cls_sep)
        out = run_sorted([len(f.input_ids) for f in features], MODEL_BATCH_SIZE,
                         lambda chosen: self._forward([features[i] for i in chosen]).numpy(), width=length)
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
        strategy = self.settings.pooling_strategy
        hidden, states, padding = self._encoder([f.input_ids for f in batch], [f.segment_ids for f in batch],
                                                [f.mask for f in batch], all_layers=strategy != "CLS_POOLED")
        if strategy == "CLS_POOLED":
            with autocast(self.model):
                return self.model.pooler(hidden).float().cpu()
        mask = pad_rows([f.mask for f in batch], 0).to(self.device)
        hidden = torch.cat([states[i] for i in self.hidden_indices], dim=-1)
        return pool_strategy(strategy, hidden, mask, padding).float().cpu()

    def _encoder(self, ids: list[list[int]], segments: list[list[int]] | None = None,
                 mask: list[list[int]] | None = None, all_layers: bool = False
                 ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None, torch.Tensor]:
        """One batch through the encoder: the last hidden state, every layer's when asked (embeddings first) and
        the padding mask, padded ``(batch, longest, …)``; packed without padding under ``-unpadded`` (whose
        settings refuse the attention ``mask`` that differs from the padding, mask_cls_sep's)."""
        input_ids, padding = pad_batch(ids, self.tokenizer.pad_token_id, self.device)
        with autocast(self.model):
            if self.settings.unpadded:
                packed = pack(ids, segments)
                last, states = unpadded_forward(self.model, packed, all_layers, self.settings.unpadded)
                width = input_ids.shape[1]
                states = tuple(repad_rows(s, packed, width) for s in states) if states else None
                return repad_rows(last, packed, width), states, padding
            output = self.model(input_ids, attention_mask=padding if mask is None else pad_rows(mask, 0).to(
                self.device), token_type_ids=None if segments is None else pad_rows(segments, 0).to(self.device),
                output_hidden_states=all_layers)
        return output.last_hidden_state, output.hidden_states, padding
