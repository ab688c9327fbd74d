"""``bertkit demo``: a short tour of what the toolkit does, on the installed real model."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .assets import chinese_vocab_file
from .config import BertConfig
from .encoding import SentenceEncoder
from .finetuning.demo import finetune_demo
from .model.parameters import format_breakdown
from .tokenization import BertTokenizer
from .tokenization.display import format_tokens

ENGLISH = "Tokenizers split unaffable, unseen words into WordPiece units."
CHINESE = "自然语言处理很有趣。"
SENTENCES = ["First do it", "then do it right", "then do it better"]


def similarity_table(texts: list[str], vectors: np.ndarray) -> str:
    """Cosine similarities of normalised vectors as an aligned table."""
    sims = vectors @ vectors.T
    width = max(map(len, texts))
    head = " " * width + "".join(f"{i:>8}" for i in range(len(texts)))
    rows = [f"{t:<{width}}" + "".join(f"{s:8.3f}" for s in row) + f"  [{i}]" for i, (t, row) in
            enumerate(zip(texts, sims, strict=True))]
    return "\n".join([head, *rows])


def section(title: str) -> None:
    print(f"\n== {title} " + "=" * max(0, 70 - len(title)))


def run_demo(model_dir: Path, quick: bool = False) -> None:
    """Tokenization, embeddings' similarities, fine-tuning, parameter counts and pretraining; ``quick`` shrinks the
    two training steps to a few seconds (the tests use it)."""
    started = time.perf_counter()
    encoder = SentenceEncoder.from_pretrained(model_dir)
    config = encoder.model.config
    print(f"model: {model_dir}\n  {config.num_hidden_layers} layers, hidden {config.hidden_size}, "
          f"{config.num_attention_heads} heads, vocab {config.vocab_size}")

    section("Tokenization (English, the model's uncased vocab)")
    tokenizer = encoder.tokenizer
    print(ENGLISH)
    print(format_tokens(tokenizer.convert_ids_to_tokens(tokenizer.encode(ENGLISH)), tokenizer.encode(ENGLISH)))

    try:
        chinese = BertTokenizer(chinese_vocab_file())
        vocab_name = "bert-base-chinese vocab"
    except FileNotFoundError:
        chinese, vocab_name = tokenizer, "the model's vocab (cn-clip not installed)"
    section(f"Tokenization (Chinese, {vocab_name}: one token per character)")
    ids = chinese.encode(CHINESE)
    print(CHINESE)
    print(format_tokens(chinese.convert_ids_to_tokens(ids), ids))

    section("Sentence embeddings (mean pooling, L2-normalised) and cosine similarity")
    vectors = encoder.encode(SENTENCES, pooling="mean", normalize=True)
    print(f"{len(SENTENCES)} sentences → array {vectors.shape}, float32")
    print(similarity_table(SENTENCES, vectors))

    finetune_demo(model_dir, train=64, dev=64, epochs=1) if quick else finetune_demo(model_dir)

    for preset in ("base", "large"):
        section(f"Parameters of BERT-{preset}")
        print(format_breakdown(BertConfig.preset(preset), with_heads=True))

    section("Pretraining: a tiny BERT learns masked-LM (MLM + NSP) on real reviews")
    from .pretraining.demo import run_pretraining_demo

    run_pretraining_demo(model_dir, minutes=0.1 if quick else 1.0)
    print(f"\ndone in {time.perf_counter() - started:.1f}s")
