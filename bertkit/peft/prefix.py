"""Prefix tuning (Li & Liang 2021) and P-tuning v2 (Liu et al. 2021): ``n`` trained key / value vectors before the
sequence's own in every layer's attention, attended to by every token and never masked.

Prefix tuning trains them through an MLP (``embedding`` → ``transform``), which steadies training; P-tuning v2
trains the table itself. Either way inference needs only the table, which is what a folder stores (as ``peft``
does: ``prompt_embeddings``, n × (layers·2·hidden), layer i's key at 2i, its value at 2i+1).
"""

from __future__ import annotations

import torch
from torch import nn


class PrefixEncoder(nn.Module):
    """The prefix table of every layer, ``(layers, 2, heads, n, head_size)``; ``peft``'s module names."""

    def __init__(self, num_virtual_tokens: int, num_layers: int, num_heads: int, hidden_size: int,
                 projection_size: int | None):
        super().__init__()
        self.shape = (num_virtual_tokens, num_layers, 2, num_heads, hidden_size // num_heads)
        width = num_layers * 2 * hidden_size
        self.transform = None
        if projection_size:  # prefix tuning while training: the table is the MLP's output
            self.embedding = nn.Embedding(num_virtual_tokens, hidden_size)
            self.transform = nn.Sequential(nn.Linear(hidden_size, projection_size), nn.Tanh(),
                                           nn.Linear(projection_size, width))
        else:
            self.embedding = nn.Embedding(num_virtual_tokens, width)
        self.current: torch.Tensor | None = None  # this forward pass's table, read by every layer's hook

    def table(self) -> torch.Tensor:
        """n × (layers·2·hidden): the vectors the layers use (what a folder stores)."""
        weight = self.embedding.weight
        return self.transform(weight) if self.transform is not None else weight

    def refresh(self) -> None:
        """Compute this pass's (layers, 2, heads, n, head_size) table once, for all the layers to read."""
        self.current = self.table().view(self.shape).permute(1, 2, 3, 0, 4)


class LayerPrefix:
    """The hook of one layer's ``SelfAttention.prefix``: its keys / values first, the padding mask widened to
    match with zeros (prefix positions are always attended, whatever the batch's padding)."""

    def __init__(self, encoder: PrefixEncoder, index: int):
        self.encoder = encoder
        self.index = index

    def __call__(self, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        prefix_k, prefix_v = self.encoder.current[self.index].to(k.dtype)
        batch = k.shape[0]
        k = torch.cat([prefix_k.expand(batch, -1, -1, -1), k], dim=2)
        v = torch.cat([prefix_v.expand(batch, -1, -1, -1), v], dim=2)
        if mask is not None:
            mask = torch.cat([mask.new_zeros(*mask.shape[:-1], prefix_k.shape[1]), mask], dim=-1)
        return k, v, mask


def add_prefix(model: nn.Module, num_virtual_tokens: int, projection_size: int | None) -> PrefixEncoder:
    """Give every unique layer of ``model``'s encoder a prefix (ALBERT's shared layers share theirs), kept in
    ``model.peft_prefix``; the table is recomputed once per forward pass."""
    encoder_model = model.base_model
    config = encoder_model.config
    layers = encoder_model.encoder.layer
    prefix = PrefixEncoder(num_virtual_tokens, len(layers), config.num_attention_heads, config.hidden_size,
                           projection_size)
    model.peft_prefix = prefix
    for index, layer in enumerate(layers):
        layer.attention.self.use_prefix(LayerPrefix(prefix, index))
    model.register_forward_pre_hook(lambda module, args: prefix.refresh())
    return prefix


@torch.no_grad()
def load_prefix_table(prefix: PrefixEncoder, table: torch.Tensor) -> None:
    """Use a stored table as it is (inference): the reparameterisation MLP, if any, is dropped."""
    n, layers, _, heads, head_size = prefix.shape
    expected = (n, layers * 2 * heads * head_size)
    if tuple(table.shape) != expected:
        raise ValueError(f"the stored prefix has shape {tuple(table.shape)}; this model needs {expected} "
                         "(num_virtual_tokens × layers·2·hidden)")
    prefix.transform = None
    prefix.embedding = nn.Embedding.from_pretrained(table.clone().float(), freeze=False)
