"""``bertkit explain attention-cost TEXT``: the attention patterns of each kernel on one sentence, as one PNG."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch


def attention_patterns(text: str, model_dir: str | Path) -> tuple[list[str], dict[str, torch.Tensor]]:
    """The tokens of ``text`` and, per kernel, head 0's n × n effective weights between them in the first layer of
    the model in ``model_dir``, on that layer's real queries and keys (computed on the text padded to a multiple of
    4, as the chunked kernels need; the [PAD] rows and columns are left out)."""
    from ..config import BertConfig
    from ..model import AutoModel
    from ..model.efficient.patterns import effective_attention
    from ..model.encoder import additive_padding_mask
    from ..tokenization import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir)
    length = len(tokenizer([text], truncation=True, max_length=model.config.max_tokens)["input_ids"][0])
    encoded = tokenizer([text], truncation=True, padding="max_length", max_length=4 * math.ceil(length / 4),
                        return_tensors="pt")
    ids, keep = encoded["input_ids"], encoded["attention_mask"]
    tokens = tokenizer.convert_ids_to_tokens(ids[0].tolist())
    n = ids.shape[1]
    with torch.no_grad():
        x = model.embeddings(ids, torch.zeros_like(ids))
        attention = model.encoder.layer[0].attention.self
        q, k = attention.split_heads(attention.query(x)), attention.split_heads(attention.key(x))
    mask = additive_padding_mask(keep, q.dtype)
    sizes = dict(full={}, local=dict(local_window=2, local_global_tokens=[0]),
                 lsh=dict(lsh_num_buckets=4, lsh_chunk_size=4, lsh_rounds=1),
                 linformer=dict(linformer_k=max(1, n // 4)), performer=dict(performer_features=64))
    torch.manual_seed(0)
    patterns = {}
    for kind, extra in sizes.items():
        config = BertConfig(**model.config.fields() | dict(attention=kind) | extra)
        patterns[kind] = effective_attention(q, k, mask, config)[0, 0, :length, :length]
    return tokens[:length], patterns


def draw(tokens: list[str], patterns: dict[str, torch.Tensor], output: str | Path) -> Path:
    """One heat map per kernel, tokens on both axes, written atomically as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..atomic import write_atomic

    columns = len(patterns)
    figure, axes = plt.subplots(1, columns, figsize=(4.2 * columns, 4.6))
    for axis, (kind, weights) in zip(axes, patterns.items(), strict=True):
        axis.imshow(weights.clamp(min=0).numpy(), cmap="viridis", vmin=0)
        axis.set_title("linformer (untrained E, F)" if kind == "linformer" else kind)
        step = max(1, math.ceil(len(tokens) / 24))
        ticks = list(range(0, len(tokens), step))
        axis.set_xticks(ticks, [tokens[i] for i in ticks], rotation=90, fontsize=7)
        axis.set_yticks(ticks, [tokens[i] for i in ticks], fontsize=7)
    axes[0].set_ylabel("query (row: where this token looks)")
    figure.suptitle("who attends to whom: layer 1, head 1 (cost per layer: full O(n²), the others O(n))")
    figure.tight_layout()
    return write_atomic(output, lambda tmp: figure.savefig(tmp, format="png", dpi=90))


def cmd_attention_cost(args: argparse.Namespace) -> None:
    """Draw the patterns of one sentence and say where the PNG is."""
    from ..assets import default_model_dir

    tokens, patterns = attention_patterns(" ".join(args.text), args.model or default_model_dir())
    path = draw(tokens, patterns, args.output)
    print(f"{len(tokens)} tokens; attention patterns of {', '.join(patterns)} written to {path}")
