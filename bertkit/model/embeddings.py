"""The input block: token + position + segment embeddings, summed, then LayerNorm and dropout.

Options, each from the config: positions learned (``absolute``), fixed sinusoids (``sinusoidal``, Vaswani et al.)
or absent (``none``, ``relative_bias``, ``relative_key(_query)``, ``nezha``: positions enter the attention scores
instead); segments absent when ``type_vocab_size`` is 0 (DistilBERT); a width ``embedding_size`` below
``hidden_size`` (ALBERT, ELECTRA: the model projects it up, see ``EncoderModel.embeddings_project``); RoBERTa's
position ids, which count real tokens after the padding index.
"""

from __future__ import annotations

import torch
from torch import nn

from ..config import BertConfig
from .dropout import Dropout


def sinusoidal_table(positions: int, width: int, layout: str = "interleaved") -> torch.Tensor:
    """(positions, width): sin on even columns, cos on odd ones, wavelengths from 2π to 10000·2π; ``halves``
    (Marian, fairseq): the same sines in the first half of the columns, the cosines in the second."""
    position = torch.arange(positions, dtype=torch.float64)[:, None]
    pair = torch.arange(width, dtype=torch.float64)[None, :] // 2  # columns 2i and 2i+1 share a frequency
    angle = position / torch.pow(10000.0, 2 * pair / width)
    table = torch.where(torch.arange(width) % 2 == 0, torch.sin(angle), torch.cos(angle))
    if layout == "halves":
        table = torch.cat([table[:, 0::2], table[:, 1::2]], dim=1)
    return table.float()


def positions_after_padding(input_ids: torch.Tensor, padding_idx: int, past: int = 0) -> torch.Tensor:
    """RoBERTa's position ids: real tokens count from ``padding_idx + 1`` (after ``past`` decoded ones); padding
    keeps ``padding_idx``."""
    real = input_ids.ne(padding_idx).long()
    return (torch.cumsum(real, dim=1) + past) * real + padding_idx


class Embeddings(nn.Module):
    """Token + position + segment embeddings of width ``embedding_size`` (default ``hidden_size``)."""

    def __init__(self, config: BertConfig, count_positions_after_padding: bool = False, pad_words: bool = True):
        super().__init__()
        width = config.embedding_width
        self.padding_idx = config.pad_token_id
        self.count_positions_after_padding = count_positions_after_padding
        # pad_words=False (GPT-2): no row is padding; its pad token, if any, is a real word (often end-of-text)
        self.word_embeddings = nn.Embedding(config.vocab_size, width,
                                            padding_idx=config.pad_token_id if pad_words else None)
        self.scale = width ** 0.5 if config.scale_embedding else 1.0  # Vaswani et al. scale tokens by √d_model
        self.position_offset = config.position_offset  # BART's learned positions start at row 2
        self.position_embeddings = None
        # relative_key(_query): transformers 4 built the absolute table too and never added it; kept (unused) so
        # such folders load and save one to one
        self.add_positions = config.position_embedding_type in ("absolute", "sinusoidal")
        if self.add_positions or config.position_embedding_type in ("relative_key", "relative_key_query"):
            self.position_embeddings = nn.Embedding(
                config.max_position_embeddings + config.position_offset, width,
                padding_idx=config.pad_token_id if count_positions_after_padding else None)
        self.sinusoidal = config.position_embedding_type == "sinusoidal"
        self.sinusoidal_layout = config.sinusoidal_layout
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, width) if config.type_vocab_size else None
        # ERNIE's task types (use_task_id): one more table summed in, row 0 when no ids are given (as transformers)
        self.task_type_embeddings = nn.Embedding(config.task_type_vocab_size, width) if config.use_task_id else None
        # XLM: a language embedding added where langs are given; segment ids index the word embeddings
        self.lang_embeddings = nn.Embedding(config.n_langs, width) if config.n_langs > 1 and config.use_lang_emb \
            else None
        self.segments_are_words = config.model_type == "xlm"
        # pre-LN stacks (GPT-2, nn.Transformer with norm_first) normalise inside each block, not here
        self.LayerNorm = nn.LayerNorm(width, eps=config.layer_norm_eps) if config.has_embedding_layer_norm else None
        self.dropout = Dropout(config.hidden_dropout_prob)
        self.init_fixed_weights()

    @torch.no_grad()
    def init_fixed_weights(self) -> None:
        """Sinusoidal positions are a fixed table, not learned (re-applied after any initialisation)."""
        if self.sinusoidal:
            table = self.position_embeddings.weight
            table.copy_(sinusoidal_table(*table.shape, self.sinusoidal_layout))
            table.requires_grad_(False)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None, past: int = 0,
                position_ids: torch.Tensor | None = None, task_type_ids: torch.Tensor | None = None,
                langs: torch.Tensor | None = None) -> torch.Tensor:
        """Embed a batch; ``past``: positions a decoder has already cached (the new tokens' positions follow);
        ``position_ids``: each token's position, when not its index (a left-padded batch while generating);
        ``task_type_ids``: ERNIE's task of each token; ``langs``: XLM's language of each token."""
        x = self.word_embeddings(input_ids)
        if self.scale != 1.0:
            x = x * self.scale
        if self.add_positions:
            if position_ids is not None:
                x = x + self.position_embeddings(position_ids + self.position_offset)
            elif self.count_positions_after_padding:
                x = x + self.position_embeddings(positions_after_padding(input_ids, self.padding_idx, past))
            else:  # rows past … past + seq, broadcast over the batch: no index tensor, no gather
                first = past + self.position_offset
                x = x + self.position_embeddings.weight[first: first + input_ids.shape[1]]
        if self.token_type_embeddings is not None:
            x = x + self.token_type_embeddings(token_type_ids)
        elif token_type_ids is not None and self.segments_are_words:  # as transformers' XLM
            x = x + self.word_embeddings(token_type_ids)
        if langs is not None and self.lang_embeddings is not None:
            x = x + self.lang_embeddings(langs)
        if self.task_type_embeddings is not None:
            x = x + (self.task_type_embeddings(task_type_ids) if task_type_ids is not None
                     else self.task_type_embeddings.weight[0])
        if self.LayerNorm is not None:
            x = self.LayerNorm(x)
        return self.dropout(x)

