"""Trainable parameters per PEFT method of a sequence classifier, counted from the module tree (on the meta device),
next to each method's closed-form count: L layers, d hidden width, E embedding width, r LoRA rank, m adapter width,
n virtual tokens. It sits in fine-tuning, above :mod:`bertkit.peft`: it builds the classifier, then applies PEFT."""

from __future__ import annotations

from pathlib import Path

import torch

from ..config import BertConfig
from ..peft.apply import apply_peft, trainable_parameters
from ..peft.config import METHODS, PeftConfig
from .models import BertForSequenceClassification, TaskConfig, default_pooling, has_pooler


def formula(method: str, config: BertConfig, peft: PeftConfig, num_labels: int, targets: int) -> tuple[str, int]:
    """The method's own parameters (the head aside) by formula: its text and its value."""
    L, d, E, r, m, n = (config.num_unique_layers, config.hidden_size, config.embedding_width, peft.r,
                        peft.adapter_size, peft.num_virtual_tokens)
    h = peft.encoder_hidden_size or d
    if method == "lora":  # every default target (query, value) is d → d
        return f"L·t·r·2d = {L}·{targets}·{r}·2·{d}", L * targets * r * 2 * d
    if method == "houlsby":
        return f"2L·(2dm + d + m) = 2·{L}·(2·{d}·{m} + {d} + {m})", 2 * L * (2 * d * m + d + m)
    if method == "pfeiffer":
        return f"L·(2dm + d + m) = {L}·(2·{d}·{m} + {d} + {m})", L * (2 * d * m + d + m)
    if method == "ptuning_v2":
        return f"n·2L·d = {n}·2·{L}·{d}", n * 2 * L * d
    if method == "prefix":  # trained through the MLP; n·2L·d stored
        return (f"n·d + (d+1)·h + (h+1)·2Ld = {n}·{d} + {d + 1}·{h} + {h + 1}·2·{L}·{d}  (stores n·2L·d)",
                n * d + (d + 1) * h + (h + 1) * 2 * L * d)
    if method == "prompt":
        return f"n·E = {n}·{E}", n * E
    if method == "ptuning":
        return f"n·E + (E+1)·h + (h+1)·h + (h+1)·E = {n}·{E} + MLP", n * E + (E + 1) * h + (h + 1) * h + (h + 1) * E
    if method == "bitfit":  # per layer: Q K V O, FFN in and out, two LayerNorms; embedding LayerNorm, E→H, pooler
        i, pooler = config.intermediate_size, has_pooler(config.model_type)
        extra = pooler + (E != d or config.model_type == "albert")
        return f"L·(7d + I) + E + {extra}·d = {L}·(7·{d} + {i}) + {E} + {extra}·{d}", L * (7 * d + i) + E + extra * d
    return "none (the head's (d+1)·C only)", 0


def peft_rows(config: BertConfig, methods: list[str], peft: PeftConfig, num_labels: int = 2
              ) -> list[tuple[str, int, int, str, int]]:
    """(method, trainable, total, formula, formula value) per method, for a sequence classifier of ``config``."""
    task = TaskConfig.over(config, id2label={i: str(i) for i in range(num_labels)},
                           pooling=default_pooling(config.model_type))
    rows = []
    for method in methods:
        with torch.device("meta"):
            model = BertForSequenceClassification(task)
            settings = PeftConfig(method, r=peft.r, lora_alpha=peft.lora_alpha, target_modules=peft.target_modules,
                                  adapter_size=peft.adapter_size, num_virtual_tokens=peft.num_virtual_tokens,
                                  encoder_hidden_size=peft.encoder_hidden_size)
            apply_peft(model, settings)
        trainable, total = trainable_parameters(model)
        targets = sum(1 for name, _ in model.named_modules() if name.endswith(".lora_A")) // config.num_unique_layers
        text, value = formula(method, config, settings, num_labels, targets)
        rows.append((method, trainable, total, text, value))
    return rows


def format_peft_table(config: BertConfig, methods: list[str], peft: PeftConfig, num_labels: int = 2) -> str:
    """The table ``bertkit params --peft`` prints: trainable = the method's own + the head's (d+1)·C."""
    rows = peft_rows(config, methods, peft, num_labels)
    lines = [f"{config.model_type} L={config.num_hidden_layers} d={config.hidden_size} E={config.embedding_width}; "
             f"r={peft.r}, m={peft.adapter_size}, n={peft.num_virtual_tokens}; a {num_labels}-label classifier "
             "head, always trained, is included",
             f"{'method':<11} {'trainable':>12} {'%':>8}  method's own parameters by formula"]
    for method, trainable, total, text, value in rows:
        lines.append(f"{method:<11} {trainable:>12,} {100 * trainable / total:7.3f}%  {text} = {value:,}")
    lines.append(f"{'full':<11} {rows[0][2]:>12,} {100.0:7.3f}%  every parameter")
    return "\n".join(lines)


def plot_peft_table(config: BertConfig, methods: list[str], peft: PeftConfig, path: str | Path) -> Path:
    """Bar chart of the trainable share per method (log scale), saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..atomic import write_atomic

    rows = peft_rows(config, methods, peft)
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(rows) + 1.5))
    shares = [100 * t / total for _, t, total, _, _ in rows]
    bars = ax.barh([r[0] for r in rows], shares, color="#4c72b0")
    for bar, (_, trainable, _, _, _), share in zip(bars, rows, shares, strict=True):
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {trainable:,} ({share:.3f}%)", va="center",
                fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("trainable parameters (% of the model, log scale)")
    ax.set_title(f"{config.model_type} L={config.num_hidden_layers} d={config.hidden_size}: trainable share per method")
    fig.tight_layout()
    path = Path(path)
    write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)
    return path


ALL = list(METHODS)
