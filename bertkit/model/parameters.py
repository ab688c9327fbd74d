"""Where a model's parameters are: counted from its module tree (tied tensors once), grouped into the parts a
reader knows — embeddings, one layer's Q K V O / FFN / LayerNorms, the layers, the pooler, the heads.

Counting the real modules (built on the meta device: shapes, no memory) keeps the table true for every
architecture: ALBERT's factorized embeddings and shared layers, DistilBERT's missing segments, ELECTRA's heads.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn

from ..config import BertConfig

# (pattern on a parameter name without the encoder prefix, part label); the first match wins
LAYER_PARTS = (
    (r"attention\.self\.query\.", "  attention query"),
    (r"attention\.self\.key\.", "  attention key"),
    (r"attention\.self\.value\.", "  attention value"),
    (r"attention\.self\.distance_embedding\.", "  relative distance vectors (Shaw)"),
    (r"attention\.self\.disentangled\.", "  position key / query projections (DeBERTa)"),
    (r"attention\.output\.dense\.", "  attention output"),
    (r"attention\.output\.LayerNorm\.", "  attention LayerNorm"),
    (r"intermediate\.dense\.", "  FFN in"),
    (r"output\.dense\.", "  FFN out"),
    (r"output\.LayerNorm\.", "  output LayerNorm"),
)
PARTS = (
    # encoder-decoders (T5, BART, …): names under the model, stack by stack
    (r"shared\.", "shared token embeddings (V×H)"),
    (r"(en|de)coder\.encoder\.relative_attention_bias\.", "relative position bias (buckets×heads, per stack)"),
    (r"(en|de)coder\.encoder\.LayerNorm\.", "final norms (one per stack)"),
    (r"encoder\.encoder\.layer\.", "encoder stack layers"),
    (r"decoder\.encoder\.layer\.", "decoder stack layers"),
    (r"lm_head\.", "LM head (untied)"),
    (r"embeddings\.word_embeddings\.", "word embeddings (V×E)"),
    (r"embeddings\.position_embeddings\.", "position embeddings (P×E)"),
    (r"embeddings\.token_type_embeddings\.", "segment embeddings (T×E)"),
    (r"embeddings\.task_type_embeddings\.", "task-type embeddings (ERNIE)"),
    (r"embeddings\.lang_embeddings\.", "language embeddings (XLM)"),
    (r"embeddings\.LayerNorm\.", "embedding LayerNorm"),
    (r"embeddings_project\.", "embedding projection (E→H)"),
    (r"encoder\.relative_attention_bias\.", "relative position bias (buckets×heads)"),
    (r"encoder\.embed_positions\.", "rotary sinusoid table (P×head, fixed)"),
    (r"encoder\.relative\.", "relative position embeddings (2·span×H, shared; DeBERTa)"),
    (r"encoder\.conv\.", "convolution over the embeddings (DeBERTa)"),
    (r"encoder\.LayerNorm\.", "final LayerNorm (pre-LN)"),
    (r"encoder\.layer\.", "encoder layers"),
    (r"pooler\.", "pooler (H×H + H)"),
    (r"cls\.predictions\.transform\.", "MLM transform (H×E + E, LayerNorm)"),
    (r"cls\.predictions\.bias", "MLM output bias (decoder tied to word embeddings)"),
    (r"cls\.seq_relationship\.", "NSP / SOP classifier"),
    (r"discriminator_predictions\.", "ELECTRA discriminator head"),
    (r"pred_layer\.", "XLM LM output bias (projection tied to word embeddings)"),
    # ModernBERT: no position or segment table (rotary), pre-norm layers, the MLM decoder tied
    (r"embeddings\.tok_embeddings\.", "token embeddings (V×H)"),
    (r"embeddings\.norm\.", "embedding norm (no bias unless norm_bias)"),
    (r"layers\.", "ModernBERT layers (Wqkv, Wo, GeGLU Wi / Wo, pre-norms)"),
    (r"final_norm\.", "final LayerNorm"),
    (r"head\.", "MLM head (dense, activation, LayerNorm)"),
    (r"decoder\.bias", "MLM output bias (decoder tied to token embeddings)"),
    # XLNet: no position or segment table (relative sinusoids, seg_embed in each layer)
    (r"word_embedding\.", "word embeddings (V×H)"),
    (r"mask_emb", "query-stream mask embedding (XLNet)"),
    (r"layer\.", "XLNet layers (relative attention with u / v / s biases, segment encodings, FFN)"),
    (r"lm_loss\.", "XLNet LM output bias (projection tied to word embeddings)"),
)


def parameter_rows(model: nn.Module) -> list[tuple[str, int]]:
    """(part, count) rows of a model: parts in order, then one unique layer's detail (indented rows)."""
    prefix = getattr(model, "base_model_prefix", "") + "."
    totals: dict[str, int] = {}
    layer_detail: dict[str, int] = {}
    for name, tensor in model.named_parameters():  # named_parameters yields a tied tensor once
        name = name.removeprefix(prefix)
        part = next((label for pattern, label in PARTS if re.match(pattern, name)), "other")
        totals[part] = totals.get(part, 0) + tensor.numel()
        if name.startswith("encoder.layer.0."):
            inner = name.removeprefix("encoder.layer.0.")
            label = next(label for pattern, label in LAYER_PARTS if re.match(pattern, inner))
            layer_detail[label] = layer_detail.get(label, 0) + tensor.numel()
    config: BertConfig = model.config
    rows = []
    for _, label in PARTS:
        if label in totals:
            shown = label
            if label == "encoder layers":
                shown = (f"encoder: {config.num_unique_layers} unique layer(s), applied {config.num_hidden_layers} "
                         "times" if config.num_hidden_groups else f"encoder: one layer × {config.num_hidden_layers} "
                         "layers")
            rows.append((shown, totals[label]))
            if label == "encoder layers":
                rows += [(label, count) for label, count in layer_detail.items()]
    if "other" in totals:
        rows.append(("other", totals["other"]))
    return rows


def build_on_meta(config: BertConfig, with_heads: bool = False) -> nn.Module:
    """The model a config describes (with its pretraining heads if asked), shapes only; an encoder-decoder with its
    LM head, as its published sizes are counted."""
    from .auto import AutoModel, AutoModelForPreTraining, AutoModelForSeq2SeqLM

    auto = AutoModelForPreTraining if with_heads else AutoModel
    if config.model_type in AutoModelForSeq2SeqLM.classes:
        auto = AutoModelForSeq2SeqLM
    with torch.device("meta"):
        return auto.from_config(config)


def parameter_breakdown(config: BertConfig, with_heads: bool = False) -> list[tuple[str, int]]:
    """(part, count) rows of the model a config describes; indented rows detail one layer."""
    return parameter_rows(build_on_meta(config, with_heads))


def total_parameters(config: BertConfig, with_heads: bool = False) -> int:
    """Total count: the rows that are not the single-layer detail."""
    return sum(n for name, n in parameter_breakdown(config, with_heads) if not name.startswith("  "))


def format_breakdown(config: BertConfig, with_heads: bool = False) -> str:
    """The breakdown as a table with shares of the total."""
    model = build_on_meta(config, with_heads)
    rows = parameter_rows(model)
    total = sum(n for name, n in rows if not name.startswith("  "))
    header = (f"{config.model_type}: V={config.vocab_size} E={config.embedding_width} H={config.hidden_size} "
              f"L={config.num_hidden_layers} heads={config.num_attention_heads} I={config.intermediate_size} "
              f"P={config.max_position_embeddings} T={config.type_vocab_size}")
    width = max(len(name) for name, _ in rows)
    lines = [header]
    for name, count in rows:
        share = "" if name.startswith("  ") else f"{100 * count / total:6.1f}%"
        lines.append(f"{name:<{width}}  {count:>13,}  {share}")
    if with_heads:
        encoder = build_on_meta(config)
        lines.append(f"{'total (' + type(encoder).__name__ + ')':<{width}}  {encoder.num_parameters():>13,}")
    lines.append(f"{'total (' + type(model).__name__ + ')':<{width}}  {total:>13,}")
    return "\n".join(lines)


def plot_breakdown(config: BertConfig, path: str | Path, with_heads: bool = False) -> Path:
    """A horizontal bar chart of where the parameters live (parts, not the one-layer detail), saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..atomic import write_atomic

    rows = [(name, n) for name, n in parameter_breakdown(config, with_heads) if not name.startswith("  ")]
    total = sum(n for _, n in rows)
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(rows) + 1.5))
    names, counts = zip(*reversed(rows), strict=True)
    bars = ax.barh(names, [c / 1e6 for c in counts], color="#4c72b0")
    for bar, count in zip(bars, counts, strict=True):
        label = f" {count / 1e6:,.2f}M ({100 * count / total:.1f}%)"
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, label, va="center", fontsize=8)
    ax.set_xlabel("parameters (millions)")
    ax.set_title(f"{config.model_type}: {total:,} parameters (L={config.num_hidden_layers}, H={config.hidden_size}, "
                 f"E={config.embedding_width})")
    ax.set_xlim(0, max(counts) / 1e6 * 1.35)
    fig.tight_layout()
    path = Path(path)
    write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)
    return path
