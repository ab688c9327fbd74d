"""The fine-tuning step of ``bertkit demo``: MiniLM on a few hundred Rotten Tomatoes reviews, dev accuracy before
(a fresh head) and after a short fine-tuning run."""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

from ..tokenization import BertTokenizer
from ..training.threads import cpu_threads
from .config import FinetuneConfig
from .data import LabelMap
from .tasks import build_task
from .train import build_model, finetune, load_splits, seed_everything


def finetune_demo(model_dir: Path, train: int = 480, dev: int = 200, epochs: int = 2) -> dict[str, float]:
    """Fine-tune on ``train`` reviews; print and return dev accuracy before and after."""
    loading = logging.getLogger("bertkit.checkpoint")  # "classifier.* freshly initialised" is expected here
    level = loading.level
    loading.setLevel(logging.ERROR)
    try:
        return _demo(model_dir, train, dev, epochs)
    finally:
        loading.setLevel(level)


def _demo(model_dir: Path, train: int, dev: int, epochs: int) -> dict[str, float]:
    title = "Fine-tuning MiniLM on Rotten Tomatoes reviews (sentiment)"
    print(f"\n== {title} " + "=" * max(0, 70 - len(title)))
    with tempfile.TemporaryDirectory() as out:
        config = FinetuneConfig(dataset="rotten_tomatoes", model=str(model_dir), limit_train=train, limit_eval=dev,
                                epochs=epochs, batch_size=32, max_length=48, learning_rate=1e-4, pooling="mean",
                                output_dir=out, progress=False, threads=1)
        try:
            splits = load_splits(config)
        except FileNotFoundError as error:
            print(f"skipped: {error}")
            return {}
        with cpu_threads(1):
            seed_everything(config.seed)
            labels = LabelMap.from_examples(splits["train"], config.task)
            task = build_task(config, BertTokenizer.from_pretrained(model_dir), labels)
            before = task.evaluate(build_model(config, labels), splits["dev"])["accuracy"]
        print(f"{len(splits['train'])} training reviews, {len(splits['dev'])} dev reviews (fresh / rotten), "
              f"max_length {config.max_length}, {epochs} epochs, 1 thread")
        print(f"dev accuracy before fine-tuning (random head): {before:.3f}")
        started = time.perf_counter()
        result = finetune(config)
        print(f"dev accuracy after  fine-tuning:               {result.dev['accuracy']:.3f}  "
              f"({time.perf_counter() - started:.0f}s; make finetune-rt trains on all 10,202)")
    return {"before": before, "after": result.dev["accuracy"]}
