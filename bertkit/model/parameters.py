"""Where BERT's parameters are: the breakdown derived from the config by formula, as the paper's 110M / 340M."""

from __future__ import annotations

from ..config import BertConfig


def parameter_breakdown(config: BertConfig, with_heads: bool = False) -> list[tuple[str, int]]:
    """(part, count) rows; per-layer rows are for one layer, the "× layers" row multiplies them out."""
    V, H, I = config.vocab_size, config.hidden_size, config.intermediate_size  # noqa: E741, N806
    P, T, L = config.max_position_embeddings, config.type_vocab_size, config.num_hidden_layers  # noqa: N806
    dense = lambda n_in, n_out: n_in * n_out + n_out  # noqa: E731 — weight + bias
    layer = [
        ("  attention query (H×H + H)", dense(H, H)),
        ("  attention key (H×H + H)", dense(H, H)),
        ("  attention value (H×H + H)", dense(H, H)),
        ("  attention output (H×H + H)", dense(H, H)),
        ("  attention LayerNorm (2H)", 2 * H),
        ("  FFN in (H×I + I)", dense(H, I)),
        ("  FFN out (I×H + H)", dense(I, H)),
        ("  output LayerNorm (2H)", 2 * H),
    ]
    rows = [
        ("word embeddings (V×H)", V * H),
        ("position embeddings (P×H)", P * H),
        ("segment embeddings (T×H)", T * H),
        ("embedding LayerNorm (2H)", 2 * H),
        *layer,
        (f"encoder: one layer × {L} layers", L * sum(n for _, n in layer)),
        ("pooler (H×H + H)", dense(H, H)),
    ]
    if with_heads:
        rows += [
            ("MLM transform (H×H + H) + LayerNorm (2H)", dense(H, H) + 2 * H),
            ("MLM decoder: tied to word embeddings, bias V", V),
            ("NSP classifier (H×2 + 2)", dense(H, 2)),
        ]
    return rows


def total_parameters(config: BertConfig, with_heads: bool = False) -> int:
    """Total count: the rows that are not the single-layer detail."""
    return sum(n for name, n in parameter_breakdown(config, with_heads) if not name.startswith("  "))


def format_breakdown(config: BertConfig, with_heads: bool = False) -> str:
    """The breakdown as a table with shares of the total."""
    rows = parameter_breakdown(config, with_heads)
    total = total_parameters(config, with_heads)
    header = (f"V={config.vocab_size} H={config.hidden_size} L={config.num_hidden_layers} "
              f"heads={config.num_attention_heads} I={config.intermediate_size} P={config.max_position_embeddings} "
              f"T={config.type_vocab_size}")
    width = max(len(name) for name, _ in rows)
    lines = [header]
    for name, count in rows:
        share = "" if name.startswith("  ") else f"{100 * count / total:6.1f}%"
        lines.append(f"{name:<{width}}  {count:>13,}  {share}")
    encoder_only = total_parameters(config, with_heads=False)
    lines.append(f"{'total (BertModel)':<{width}}  {encoder_only:>13,}")
    if with_heads:
        lines.append(f"{'total (BertForPreTraining)':<{width}}  {total:>13,}")
    return "\n".join(lines)
