"""Long-text strategies compared: head / tail / head+tail / sliding (mean, max) on reviews longer than the window.

    .venv/bin/python bench/long_text.py --model out/finetune-rt/best [--docs 300] [--per-doc 6] [--max-length 64]

No long labelled English set installs offline, so long documents are BUILT here: ``--per-doc`` Rotten Tomatoes
test reviews of the same label, concatenated (≈ 6 × 25 tokens ≫ the 62 tokens a 64-token window holds). The
classifier (fine-tuned on single reviews) reads each document with each strategy at prediction time.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bertkit.finetuning.datasets import load_dataset  # noqa: E402
from bertkit.finetuning.predict import SequenceClassifier  # noqa: E402
from bertkit.finetuning.tasks import build_task  # noqa: E402


def long_documents(count: int, per_doc: int) -> list[dict]:
    """``count`` documents of ``per_doc`` same-label test reviews each."""
    test = load_dataset("rotten_tomatoes")["test"]
    by_label: dict[str, list[str]] = {}
    for example in test:
        by_label.setdefault(example["label"], []).append(example["text"])
    docs = []
    for label, texts in sorted(by_label.items()):
        for i in range(0, len(texts) - per_doc + 1, per_doc):
            docs.append({"text": " ".join(texts[i:i + per_doc]), "label": label})
    rng = np.random.default_rng(0)
    return [docs[i] for i in rng.permutation(len(docs))[:count]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="a fine-tuned classifier folder (make finetune-rt's best/)")
    parser.add_argument("--docs", type=int, default=300)
    parser.add_argument("--per-doc", type=int, default=6)
    parser.add_argument("--max-length", type=int, default=64)
    args = parser.parse_args()
    classifier = SequenceClassifier.from_pretrained(args.model)
    docs = long_documents(args.docs, args.per_doc)
    lengths = [len(classifier.tokenizer.text_to_ids(d["text"])) for d in docs]
    budget = args.max_length - 2
    print(f"{len(docs)} documents of {args.per_doc} reviews: {np.mean(lengths):.0f} tokens on average "
          f"(min {min(lengths)}), window {args.max_length} tokens")
    head_tokens = max(1, round(budget * 128 / 510))  # the paper's 128 : 382 split, scaled to the window
    runs = [("head", {}), ("tail", {}), ("head+tail", {"head_tokens": head_tokens}),
            ("sliding", {"window_aggregation": "mean"}), ("sliding", {"window_aggregation": "max"})]
    gold = [d["label"] for d in docs]
    for strategy, extra in runs:
        settings = dataclasses.replace(classifier.settings, max_length=args.max_length, long_text=strategy,
                                       window_stride=budget // 2, **extra)
        classifier.task = build_task(settings, classifier.tokenizer, classifier.labels)
        start = time.perf_counter()
        predicted = [p["label"] for p in classifier.predict([d["text"] for d in docs])]
        seconds = time.perf_counter() - start
        accuracy = np.mean([p == g for p, g in zip(predicted, gold, strict=True)])
        name = strategy + (f" ({extra['window_aggregation']})" if strategy == "sliding" else "")
        name += f" ({head_tokens} + {budget - head_tokens})" if strategy == "head+tail" else ""
        print(f"{name:<22} accuracy {accuracy:.3f}   {seconds:5.1f}s")


if __name__ == "__main__":
    main()
