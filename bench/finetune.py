"""Fine-tuning throughput: bertkit vs transformers' BertForSequenceClassification, same reviews, same run.

    .venv/bin/python bench/finetune.py [--steps 30] [--batch-size 32] [--max-length 64] [--threads 1]

Both fine-tune all-MiniLM-L6-v2 (fp32, AdamW, CPU) on real Rotten Tomatoes reviews. Two comparisons, each
interleaved so both sides see the same machine load:
  same batches   the very same padded batches through both models: the model and optimizer step alone;
  pipelines      bertkit's batches (length-bucketed: each batch holds reviews of similar length) against the usual
                 transformers set-up (shuffled batches padded to their longest review, DataCollatorWithPadding).
Speed is real (non-padding) tokens per second of training; the median over --repeats rounds counts.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bertkit.assets import default_model_dir  # noqa: E402
from bertkit.finetuning.config import FinetuneConfig  # noqa: E402
from bertkit.finetuning.data import LabelMap  # noqa: E402
from bertkit.finetuning.datasets import load_dataset  # noqa: E402
from bertkit.finetuning.tasks import build_task  # noqa: E402
from bertkit.finetuning.train import build_model  # noqa: E402
from bertkit.tokenization import BertTokenizer  # noqa: E402
from bertkit.training.batches import EpochBatches  # noqa: E402
from bertkit.training.optim import build_optimizer  # noqa: E402


def train_steps(model, batches) -> tuple[float, float]:
    """Seconds and real tokens for one optimizer step per batch."""
    optimizer = build_optimizer(model, 2e-5)
    model.train()
    tokens = 0.0
    start = time.perf_counter()
    for batch in batches:
        out = model(**batch)
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        tokens += float(batch["attention_mask"].sum())
    return time.perf_counter() - start, tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import transformers

    folder = default_model_dir()
    config = FinetuneConfig(dataset="rotten_tomatoes", max_length=args.max_length, batch_size=args.batch_size,
                            progress=False)
    train = load_dataset("rotten_tomatoes")["train"]
    labels = LabelMap.from_examples(train, "classification")
    task = build_task(config, BertTokenizer.from_pretrained(folder), labels)
    features = task.features(train)
    bucketed = EpochBatches(features, args.batch_size, task.collate, seed=0, bucket_size=50, length=task.length)
    shuffled = EpochBatches(features, args.batch_size, task.collate, seed=0)
    ours_batches = [bucketed.next_batch() for _ in range(args.steps)]
    usual_batches = [shuffled.next_batch() for _ in range(args.steps)]
    padding = {name: 1 - sum(float(b["attention_mask"].sum()) for b in bs) / sum(b["attention_mask"].numel()
                                                                               for b in bs)
               for name, bs in (("bucketed", ours_batches), ("shuffled", usual_batches))}

    ours = build_model(config, labels)
    theirs = transformers.BertForSequenceClassification.from_pretrained(folder, num_labels=len(labels),
                                                                        attn_implementation="sdpa")
    speeds: dict[str, list[float]] = {k: [] for k in ("ours_same", "hf_same", "ours_pipeline", "hf_pipeline")}
    train_steps(ours, usual_batches[:3])  # warm-up
    train_steps(theirs, usual_batches[:3])
    for _ in range(args.repeats):
        for key, model, batches in (("ours_same", ours, usual_batches), ("hf_same", theirs, usual_batches),
                                    ("ours_pipeline", ours, ours_batches), ("hf_pipeline", theirs, usual_batches)):
            seconds, tokens = train_steps(model, batches)
            speeds[key].append(tokens / seconds)
    median = {k: statistics.median(v) for k, v in speeds.items()}
    print(f"MiniLM-L6 fine-tuning, {args.steps} steps × batch {args.batch_size}, max_length {args.max_length}, "
          f"{args.threads} thread(s), fp32; padding: bucketed {padding['bucketed']:.0%}, "
          f"shuffled {padding['shuffled']:.0%}")
    print(f"same batches : bertkit {median['ours_same']:8.0f} tokens/s   transformers {median['hf_same']:8.0f}   "
          f"ratio {median['ours_same'] / median['hf_same']:.2f}x")
    print(f"pipelines    : bertkit {median['ours_pipeline']:8.0f} tokens/s   transformers {median['hf_pipeline']:8.0f}"
          f"   ratio {median['ours_pipeline'] / median['hf_pipeline']:.2f}x")


if __name__ == "__main__":
    main()
