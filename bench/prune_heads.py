"""Accuracy vs attention heads removed (Michel et al. 2019): a fine-tuned classifier's heads ranked by importance
(|∂loss/∂gate| summed over the dev split, normalised per layer), the least important removed for real
(``bertkit.model.pruning.prune_heads``), test accuracy and encode time measured at each step; a PNG and a table.

    .venv/bin/python bench/prune_heads.py --model out/teacher-rt/best [--steps 0,12,24,36,48,60,66] [-o out/prune-rt]

One ranking (on the unpruned model) serves every step, as in the paper's one-shot curves; a layer keeps at least
one head.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bertkit.atomic import write_atomic, write_text_atomic  # noqa: E402
from bertkit.distillation.config import DistillConfig  # noqa: E402
from bertkit.distillation.task import classifier_outputs, load_teacher, teacher_settings  # noqa: E402
from bertkit.finetuning.data import LabelMap  # noqa: E402
from bertkit.finetuning.tasks import build_task  # noqa: E402
from bertkit.finetuning.train import load_splits  # noqa: E402
from bertkit.model.pruning import head_importance, least_important, prune_heads, save_pruned  # noqa: E402
from bertkit.tokenization import AutoTokenizer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="a fine-tuned classifier folder (bertkit finetune's best/)")
    parser.add_argument("--steps", default="0,12,24,36,48,60,66", help="heads removed at each point")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--limit-eval", type=int, default=0, help="score on the first N test reviews (0: all)")
    parser.add_argument("-o", "--output", default="out/prune-rt")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    folder, out = Path(args.model), Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    model = load_teacher(folder)
    settings = teacher_settings(model, DistillConfig(teacher=str(folder)))
    splits = load_splits(settings)
    test = splits["test"][: args.limit_eval or None]
    labels = LabelMap([model.config.id2label[i] for i in range(len(model.config.id2label))])
    task = build_task(settings, AutoTokenizer.from_pretrained(folder), labels)
    dev = task.features(splits["dev"])
    batches = [task.collate(dev[start:start + 32]) for start in range(0, len(dev), 32)]

    def loss_fn(m: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return F.cross_entropy(classifier_outputs(m, batch, False, False)["logits"], batch["labels"])

    started = time.perf_counter()
    importance = head_importance(model, batches, loss_fn)
    print(f"importance over {len(dev)} dev reviews in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    rows = []
    for count in sorted({int(s) for s in args.steps.split(",")}):
        pruned = prune_heads(load_teacher(folder), least_important(importance, count, model))
        started = time.perf_counter()
        accuracy = task.evaluate(pruned, test)["accuracy"]
        seconds = time.perf_counter() - started
        remaining = sum(layer.attention.self.num_heads for layer in pruned.bert.encoder.layer)
        rows.append({"heads_removed": count, "heads_left": remaining, "accuracy": accuracy, "test_seconds": seconds,
                     "parameters": pruned.num_parameters()})
        print(f"| {count} | {remaining} | {accuracy:.4f} | {seconds:.1f} |", flush=True)
        if count == max(int(s) for s in args.steps.split(",")):
            save_pruned(pruned, out / "most-pruned", tokenizer=task.tokenizer)
    write_text_atomic(out / "pruning.json", json.dumps({"model": str(folder), "test_examples": len(test),
                                                        "threads": args.threads, "importance": importance.tolist(),
                                                        "rows": rows}, indent=2) + "\n")
    plot(rows, out / "accuracy_vs_heads.png", str(folder))


def plot(rows: list[dict], path: Path, name: str) -> None:
    """Accuracy against heads removed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5.5, 3.5))
    axis.plot([r["heads_removed"] for r in rows], [r["accuracy"] for r in rows], "o-")
    axis.set_xlabel("attention heads removed (least important first)")
    axis.set_ylabel("test accuracy")
    axis.set_title(f"head pruning: {name}")
    axis.grid(alpha=0.3)
    figure.tight_layout()
    write_atomic(path, lambda tmp: figure.savefig(tmp, format="png", dpi=90))
    plt.close(figure)


if __name__ == "__main__":
    main()
