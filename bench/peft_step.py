"""Training-step time of each PEFT method against full fine-tuning, side by side in one process.

    .venv/bin/python bench/peft_step.py [--methods full,lora,bitfit] [--rounds 5] [--steps 4] [--threads 1]
        [--lora-r 4] [--lora-dropout 0.1,0.0] [--targets query,key,value,dense]

MiniLM (the installed all-MiniLM-L6-v2) under a 2-label head with mean pooling, the same Rotten Tomatoes batches
(32 reviews, max_length 64) for every method, AdamW over the trainable parameters: one step = forward, backward,
optimizer step. Methods alternate round by round, so that a load that comes and goes slows all alike; the median of
each method's rounds is kept. Several ``--lora-dropout`` values give one LoRA run each. Whole fine-tuning runs
(`bench/peft_methods.py`) also time data handling and the dev evaluations, which every method shares, and two runs
side by side disturb each other; this isolates the step.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from compare_commits import cpu_model  # noqa: E402

from bertkit import corpora  # noqa: E402
from bertkit.assets import default_model_dir  # noqa: E402
from bertkit.config import BertConfig  # noqa: E402
from bertkit.finetuning.models import BertForSequenceClassification, TaskConfig  # noqa: E402
from bertkit.peft import PeftConfig, apply_peft  # noqa: E402
from bertkit.tokenization import AutoTokenizer  # noqa: E402


def build(method: str, args: argparse.Namespace, dropout: float) -> BertForSequenceClassification:
    """MiniLM with a fresh 2-label head, wrapped by ``method`` (``full``: every weight trains)."""
    folder = default_model_dir()
    base = BertConfig.from_json_file(folder / "config.json")
    shape = {field.name: getattr(base, field.name) for field in dataclasses.fields(BertConfig)}
    config = TaskConfig(**shape, id2label={0: "rotten", 1: "fresh"}, pooling="mean")
    torch.manual_seed(0)
    model = BertForSequenceClassification.from_pretrained(folder, config=config).train()
    if method != "full":
        apply_peft(model, PeftConfig(method, r=args.lora_r, lora_dropout=dropout,
                                     target_modules=args.targets.split(",")))
    return model


def batches(count: int, size: int) -> list[dict[str, torch.Tensor]]:
    """``count`` batches of ``size`` real reviews, tokenized and padded as fine-tuning does."""
    tokenizer = AutoTokenizer.from_pretrained(default_model_dir())
    reviews = corpora.rotten_tomatoes_reviews()[: count * size]
    out = []
    for start in range(0, len(reviews), size):
        chunk = reviews[start:start + size]
        encoded = tokenizer([text for _, text in chunk], padding=True, truncation=True, max_length=64,
                            return_tensors="pt")
        out.append({"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"],
                    "labels": torch.tensor([int(label == "fresh") for label, _ in chunk])})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--methods", default="full,lora")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=4, help="steps per method per round")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--lora-r", type=int, default=4)
    parser.add_argument("--lora-dropout", default="0.1", help="comma-separated: a LoRA run per value")
    parser.add_argument("--targets", default="query,key,value,dense")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    runs = {}  # name → (method, LoRA dropout)
    for method in args.methods.split(","):
        for dropout in map(float, args.lora_dropout.split(",")) if method == "lora" else [0.0]:
            runs[f"lora p={dropout:g}" if method == "lora" else method] = (method, dropout)
    methods = list(runs)
    data = batches(args.steps, 32)
    models = {name: build(method, args, dropout) for name, (method, dropout) in runs.items()}
    optimizers = {method: torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
                  for method, model in models.items()}

    def step(method: str, batch: dict[str, torch.Tensor]) -> None:
        models[method](**batch).loss.backward()
        optimizers[method].step()
        optimizers[method].zero_grad(set_to_none=True)

    for method in methods:  # warm-up: first-call allocations and the optimizer's state
        step(method, data[0])
    seconds: dict[str, list[float]] = {method: [] for method in methods}
    for _ in range(args.rounds):
        for method in methods:
            started = time.perf_counter()
            for batch in data:
                step(method, batch)
            seconds[method].append((time.perf_counter() - started) / len(data))
    print(f"{cpu_model()}, {args.threads} thread(s), torch {torch.__version__}; batch 32 reviews, max_length 64; "
          f"LoRA r {args.lora_r} on {args.targets}; median of {args.rounds} rounds")
    reference = statistics.median(seconds[methods[0]])
    for method in methods:
        median = statistics.median(seconds[method])
        trainable = sum(p.numel() for p in models[method].parameters() if p.requires_grad)
        print(f"{method:<12} {median * 1000:8.1f} ms / step  {reference / median:5.2f}× {methods[0]}  "
              f"(rounds {min(seconds[method]) * 1000:.0f}–{max(seconds[method]) * 1000:.0f} ms; "
              f"{trainable:,} trainable)")


if __name__ == "__main__":
    main()
