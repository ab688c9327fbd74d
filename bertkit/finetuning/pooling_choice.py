"""``pooling: auto`` (the default): the sentence vector a classifier reads is the one the folder's model was trained
to give. A sentence-transformers folder pools as its ``1_Pooling`` says (MiniLM: the mean); BERT's pooler
([CLS] → dense → tanh) only where a checkpoint trained it, with its sentence-pair head (NSP / SOP); anything else
(a plain encoder, ELECTRA, DistilBERT, a BERT pretrained without a pair task) the mean of its tokens. A pooler that
was never trained starts a small data set from noise: MiniLM with ``pooled`` stayed at ~0.5 probabilities where
``mean`` reached 1.0 on dev."""

from __future__ import annotations

import json
from pathlib import Path

from ..checkpoint import stored_names
from ..encoding.modules import MODULES_FILE, read_layout
from .models import POOLINGS

AUTO = "auto"
PAIR_HEADS = ("seq_relationship.", "sop_classifier.")  # NSP (BERT), SOP (ALBERT): they train the pooler


def folder_pooling(folder: str | Path) -> tuple[str, str]:
    """(pooling, why) for fine-tuning the model in ``folder`` when the config leaves ``pooling: auto``."""
    folder = Path(folder)
    saved = json.loads((folder / "config.json").read_text(encoding="utf-8")) if (folder / "config.json").is_file() \
        else {}
    if saved.get("pooling") in POOLINGS:  # a model bertkit fine-tuned: go on as it was trained
        return saved["pooling"], "the fine-tuned folder's own (config.json pooling)"
    if saved.get("model_type") == "xlnet":  # the only head XLNet's classifiers have
        return "pooled", "XLNet's sequence summary of the last token (transformers' XLNetForSequenceClassification)"
    if (folder / MODULES_FILE).is_file():
        modes = read_layout(folder).pooling.modes
        extra = f", the first of {'+'.join(modes)}" if len(modes) > 1 else ""
        return modes[0], f"the sentence-transformers folder's own pooling (1_Pooling{extra})"
    try:
        names = stored_names(folder)
    except FileNotFoundError:  # no weights (init: random from a config): nothing was trained
        names = []
    pooler = any("pooler.dense." in name for name in names)
    pair_head = any(head in name for name in names for head in PAIR_HEADS)
    if pooler and pair_head:  # BERT's NSP, ALBERT's SOP (and the BERT-shaped ERNIE / NEZHA)
        return "pooled", "BERT's pooler, trained with the checkpoint's sentence-pair head (NSP / SOP)"
    if pooler:
        return "mean", "the mean of the tokens: the folder's pooler has no sentence-pair head that trained it"
    return "mean", "the mean of the tokens: the folder has no pooler"
