"""``bertkit explain masks``: the three masks of an encoder-decoder batch and the sinusoidal position encodings, drawn
from the masks the model itself builds (``encoder.additive_padding_mask``, the decoder stack's ``attention_mask``).

- **padding** (encoder self-attention): every source token sees every real source token, never padding;
- **causal + padding** (decoder self-attention): target position i sees target positions 0 … i — teacher forcing
  trains all positions at once without letting one peek at the token it must predict;
- **cross-attention**: every target position sees every real source token (queries from the decoder, keys and
  values from the encoder's output);
- **sinusoids**: PE(pos, 2i) = sin(pos / 10000^(2i/d)), PE(pos, 2i+1) = cos(…): each pair of columns a clock of
  its own period, so that a fixed offset is a fixed rotation.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from ..config import Seq2SeqConfig
from ..model.embeddings import sinusoidal_table
from ..model.encoder import Encoder, additive_padding_mask


def mask_batch(pairs: list[tuple[list[str], list[str]]], pad: str = "[PAD]") -> dict:
    """Right-padded source and target tokens of a batch, with 1/0 masks."""
    width = max(len(s) for s, _ in pairs)
    length = max(len(t) for _, t in pairs)
    sources = [s + [pad] * (width - len(s)) for s, _ in pairs]
    targets = [t + [pad] * (length - len(t)) for _, t in pairs]
    return {"sources": sources, "targets": targets,
            "source_mask": torch.tensor([[int(tok != pad) for tok in row] for row in sources]),
            "target_mask": torch.tensor([[int(tok != pad) for tok in row] for row in targets])}


def masks_of(batch: dict, row: int, target_row: int) -> dict[str, torch.Tensor]:
    """The boolean "may attend" matrices of one row (the decoder's: of ``target_row``), as the blocks compute them
    (True: attended)."""
    tiny = Seq2SeqConfig(vocab_size=8, hidden_size=8, num_attention_heads=2, num_hidden_layers=1, intermediate_size=8)
    decoder = Encoder(tiny.decoder_config())
    target_len = batch["target_mask"].shape[1]
    x = torch.zeros(1, target_len, 8)
    self_mask = decoder.attention_mask(batch["target_mask"][target_row:target_row + 1], x)[0, 0]
    source = additive_padding_mask(batch["source_mask"][row:row + 1], torch.float32)
    source_len = batch["source_mask"].shape[1]
    encoder = torch.zeros(source_len, source_len) if source is None else source[0, 0].expand(source_len, -1)
    cross = torch.zeros(target_len, source_len) if source is None else source[0, 0].expand(target_len, -1)
    return {"encoder": encoder == 0, "decoder": self_mask == 0, "cross": cross == 0}


def draw_masks(batch: dict, output: str | Path, width: int = 128, positions: int = 64) -> Path:
    """One PNG: the batch's padding mask, one row's three attention masks, the sinusoidal table."""
    import matplotlib.pyplot as plt

    from ..atomic import write_atomic

    figure = masks_figure(batch, width, positions)
    path = write_atomic(output, lambda tmp: figure.savefig(tmp, format="png", dpi=80))
    plt.close(figure)
    return path


def masks_figure(batch: dict, width: int = 128, positions: int = 64):
    """The figure :func:`draw_masks` writes; every axis counts whole rows, positions or dimensions."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, MaxNLocator

    row = int(batch["source_mask"].sum(1).argmin())  # the most padded source shows the most
    lengths = batch["target_mask"].sum(1)  # a long but padded target shows both the triangle and the padding
    padded = [i for i in range(len(lengths)) if lengths[i] < lengths.max()]
    target_row = max(padded, key=lambda i: int(lengths[i])) if padded else int(lengths.argmax())
    masks = masks_of(batch, row, target_row)
    figure, axes = plt.subplots(2, 3, figsize=(16, 9.5))
    panels = [
        (batch["source_mask"], "source padding mask of the batch (1 real, 0 pad)", None, None),
        (masks["encoder"], f"encoder self-attention, row {row}: padding only", batch["sources"][row],
         batch["sources"][row]),
        (masks["decoder"], f"decoder self-attention, row {target_row}: causal + padding",
         batch["targets"][target_row], batch["targets"][target_row]),
        (masks["cross"], f"cross-attention, row {row}: decoder queries → real source keys", batch["sources"][row],
         batch["targets"][row]),
    ]
    for axis, (matrix, title, xs, ys) in zip(axes.flat, panels, strict=False):
        axis.imshow(matrix.float().numpy(), cmap="Greens", vmin=0, vmax=1)
        axis.set_title(title, fontsize=10)
        if xs is not None:
            axis.set_xticks(range(len(xs)), xs, rotation=90, fontsize=7)
            axis.set_yticks(range(len(ys)), ys, fontsize=7)
            axis.set_xlabel("key (attended)")
            axis.set_ylabel("query")
        else:
            axis.set_xlabel("position")
            axis.set_ylabel("batch row")
    table = sinusoidal_table(positions, width)
    axis = axes.flat[4]
    image = axis.imshow(table.numpy(), cmap="RdBu", aspect="auto", vmin=-1, vmax=1)
    axis.set_title(f"sinusoidal positions (d = {width}): sin on even, cos on odd columns", fontsize=10)
    axis.set_xlabel("dimension")
    axis.set_ylabel("position")
    figure.colorbar(image, ax=axis, fraction=0.04)
    axis = axes.flat[5]
    for column in (0, 1, 8, 32, 64):
        axis.plot(table[:, column].numpy(), label=f"column {column}")
    axis.set_title("a few columns: each a wave of its own period", fontsize=10)
    axis.set_xlabel("position")
    axis.legend(fontsize=8)
    figure.suptitle("what each attention may see (green) in one encoder-decoder batch, and the position code")
    counted = [a for axis in axes.flat[:5] for a in (axis.xaxis, axis.yaxis)] + [axes.flat[5].xaxis]
    for scale in counted:  # rows, positions, dimensions: no 0.5 of a row (the last panel's y is a sine's value)
        if not isinstance(scale.get_major_locator(), FixedLocator):  # the token-labelled axes keep their tokens
            scale.set_major_locator(MaxNLocator(integer=True))
    figure.tight_layout()
    return figure


def cmd_explain_masks(args: argparse.Namespace) -> None:
    """``explain masks "SOURCE => TARGET" …``: tokenize each pair (no ``=>``: the target is the source, BART's
    reconstruction) with the model's tokenizer and draw the masks."""
    from ..assets import default_model_dir
    from ..tokenization import AutoTokenizer

    texts = [t for t in args.text if t.strip()]
    if not texts:
        raise ValueError("nothing to draw: give texts, e.g. `bertkit explain masks \"12 => twelve\" \"7 => seven\"`")
    tokenizer = AutoTokenizer.from_pretrained(args.model or default_model_dir())
    pairs = []
    for text in texts:
        source, _, target = text.partition("=>")
        target = target if target.strip() else source
        pairs.append((tokenizer.tokenize(source.strip()) + ["[SEP]"], ["[BOS]"] + tokenizer.tokenize(target.strip())))
    path = draw_masks(mask_batch(pairs), args.output or "masks.png")
    print(f"{len(pairs)} pairs; padding, causal and cross-attention masks and the sinusoids written to {path}")
