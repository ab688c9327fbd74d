"""The pretraining step of ``bertkit demo``: a tiny BERT learns masked-LM on real reviews in about a minute."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from ..atomic import write_text_atomic
from ..corpora import rotten_tomatoes_reviews
from ..tokenization import BertTokenizer
from .config import PretrainingConfig
from .fill_mask import fill_mask
from .run import build_model, run_pretraining

PROBES = ["the movie is [MASK] .", "one of the best [MASK] of the year .", "the [MASK] is funny and smart ."]


def show_fill_mask(model: torch.nn.Module, tokenizer: BertTokenizer, top_k: int = 4) -> None:
    for text in PROBES:
        (candidates,) = fill_mask(model, tokenizer, text, top_k)
        print(f"  {text:<40} → " + "  ".join(f"{c.token} {c.probability:.2f}" for c in candidates))


def run_pretraining_demo(model_dir: Path, out_dir: Path = Path("out/demo"), minutes: float = 1.0) -> Path:
    """Pretrain a 2-layer BERT on Rotten Tomatoes reviews (MiniLM's vocab) for ``minutes``; print fill-mask before
    and after; returns the folder holding the model, ``metrics.jsonl`` and the loss curve ``metrics.png``."""
    reviews = [text for _, text in rotten_tomatoes_reviews()]
    corpus = out_dir / "reviews.txt"
    write_text_atomic(corpus, "\n\n".join("\n".join(reviews[i:i + 6]) for i in range(0, len(reviews), 6)) + "\n")
    config = PretrainingConfig(corpus=[str(corpus)], tokenizer=str(model_dir), output_dir=str(out_dir / "pretrain"),
                               model_preset="tiny", max_seq_length=64, batch_size=32, max_steps=400,
                               learning_rate=1e-3, warmup_steps=30, logging_steps=10, eval_steps=100,
                               eval_batches=5, max_minutes=minutes, bf16=True, overwrite=True)  # the tour owns it
    tokenizer = BertTokenizer.from_pretrained(model_dir)
    torch.manual_seed(config.seed)
    print(f"corpus: {len(reviews):,} Rotten Tomatoes reviews; model: 2 layers, hidden 128; "
          f"≤ {config.max_steps} steps or {minutes:g} min\nfill-mask before training (random weights):")
    show_fill_mask(build_model(config, tokenizer), tokenizer)
    logging.getLogger("bertkit.training.loop").setLevel(logging.ERROR)  # the time budget is the plan here
    summary = run_pretraining(config)
    folder = Path(config.output_dir)
    final = summary["final_eval"] or {}
    print(f"trained {summary['steps']} steps: held-out MLM accuracy {final.get('mlm_accuracy', 0):.3f} "
          f"(always predicting the most frequent token: {final.get('unigram_baseline_accuracy', 0):.3f})")
    print("fill-mask after training:")
    from ..model import AutoModelForMaskedLM

    show_fill_mask(AutoModelForMaskedLM.from_pretrained(folder / "model"), tokenizer)
    print(f"loss curve: {folder / 'metrics.png'}")
    return folder

