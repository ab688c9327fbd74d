"""Self-training with 1 % of Rotten Tomatoes' labels: how much of the gap to all labels do pseudo-labels recover?

    .venv/bin/python bench/self_training.py [--seeds 3] [--unlabeled 3000] [--rounds 1] [--threshold 0.8]

The encoder is the real all-MiniLM-L6-v2 (bertkit's installed default). Three runs per seed, all scored on the same
test reviews:
  1 %         fine-tuning on a seeded, stratified 1 % of the training reviews (round 0 of the self-training run);
  self-train  that model labels --unlabeled other training reviews (their gold labels unused), and a student of the
              same size learns from the 1 % + the pseudo-labelled rows (soft labels, noisy inputs), --rounds times;
  100 %       fine-tuning on every training review, configs/rotten_tomatoes.yaml (make finetune-rt), once: it does
              not depend on the 1 % drawn; --full-accuracy gives a figure measured before instead.
Gap recovered = (self-train − 1 %) / (100 % − 1 %), per seed, then mean ± standard error over seeds. Dev: --dev
reviews of the dev split pick each run's best epoch.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from machine import cpu_name  # noqa: E402  (bench/ is the script's own folder)

from bertkit.finetuning.config import FinetuneConfig  # noqa: E402
from bertkit.finetuning.datasets import load_dataset  # noqa: E402
from bertkit.finetuning.train import finetune  # noqa: E402


def stratified_sample(examples: list[dict], fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    """A seeded ``fraction`` of each label's examples, and the rest."""
    by_label: dict[str, list[dict]] = defaultdict(list)
    for example in examples:
        by_label[example["label"]].append(example)
    rng = random.Random(seed)
    chosen, rest = [], []
    for label in sorted(by_label):
        group = by_label[label][:]
        rng.shuffle(group)
        n = max(1, round(fraction * len(group)))
        chosen += group[:n]
        rest += group[n:]
    rng.shuffle(chosen)
    rng.shuffle(rest)
    return chosen, rest


def write_jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return str(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=1, help="draws of the 1 %% (and seeds of its runs)")
    parser.add_argument("--first-seed", type=int, default=0, help="seeds run: first-seed … first-seed + seeds − 1")
    parser.add_argument("--fraction", type=float, default=0.01)
    parser.add_argument("--unlabeled", type=int, default=3000, help="unlabeled training reviews the teacher labels")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--threshold", type=float, default=0.8, help="confidence_threshold")
    parser.add_argument("--dev", type=int, default=500, help="dev reviews that pick the best epoch")
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--few-epochs", type=int, default=10, help="epochs on the 1 %%")
    parser.add_argument("--student-epochs", type=int, default=2)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--threads", type=int, default=1, help="1 is fastest on a busy machine")
    parser.add_argument("--full-accuracy", type=float, default=None,
                        help="the 100 %% test accuracy measured before (the README: make finetune-rt); else run it")
    args = parser.parse_args()
    splits = load_dataset("rotten_tomatoes")
    folder = Path(tempfile.mkdtemp(prefix="bench-self-training-"))
    dev = write_jsonl(folder / "dev.jsonl", splits["dev"][:args.dev])
    test = write_jsonl(folder / "test.jsonl", splits["test"])
    common = dict(dev_file=dev, test_file=test, max_length=args.max_length, learning_rate=args.lr,
                  threads=args.threads, progress=False, overwrite=True)
    started = time.perf_counter()
    results: dict[str, list[float]] = defaultdict(list)
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        labelled, rest = stratified_sample(splits["train"], args.fraction, seed)
        train = write_jsonl(folder / f"train-{seed}.jsonl", labelled)
        unlabeled = write_jsonl(folder / f"unlabeled-{seed}.jsonl", [{"text": e["text"]} for e in
                                                                     rest[:args.unlabeled]])
        config = FinetuneConfig(**common, train_file=train, seed=seed, epochs=args.few_epochs, batch_size=16,
                                unlabeled_file=unlabeled, self_training=args.rounds,
                                confidence_threshold=args.threshold, student_epochs=args.student_epochs,
                                output_dir=str(folder / f"self-{seed}"))
        run = finetune(config)
        by_round = [r for r in run.history if r["split"] == "test"]
        results["1 %"].append(by_round[0]["accuracy"])
        results["self-train"].append(by_round[-1]["accuracy"])
        kept = [r["pseudo_labelled"] for r in run.history if r["split"] == "test" and r["round"] > 0]
        print(f"seed {seed}: {len(labelled)} labelled, test accuracy by round "
              f"{[round(r['accuracy'], 4) for r in by_round]}, pseudo-labelled rows kept {kept}", flush=True)
    if args.full_accuracy is None:  # make finetune-rt's run: the README's MiniLM row
        recipe = Path(__file__).resolve().parents[1] / "configs" / "rotten_tomatoes.yaml"
        full = finetune(FinetuneConfig.from_yaml(recipe, {"output_dir": str(folder / "full"), "threads": args.threads,
                                                          "progress": False, "overwrite": True}))
        full_accuracy = full.test["accuracy"]
    else:
        full_accuracy = args.full_accuracy
    gaps = [(s - f) / (full_accuracy - f) for s, f in zip(results["self-train"], results["1 %"], strict=True)]
    print(f"\nRotten Tomatoes, all-MiniLM-L6-v2, max_length {args.max_length}, {cpu_name()}, {args.threads} "
          f"thread(s), {time.perf_counter() - started:.0f} s; test {len(splits['test'])} reviews, dev "
          f"{min(args.dev, len(splits['dev']))}")
    print(f"1 % = {len(labelled)} labelled reviews (stratified), {min(args.unlabeled, len(rest))} unlabeled, "
          f"{args.rounds} round(s), confidence_threshold {args.threshold}, {args.seeds} seed(s)")
    for name, values in (("supervised 1 %", results["1 %"]), ("self-training", results["self-train"])):
        print(f"{name:16s} accuracy {mean_se(values)}")
    print(f"{'supervised 100 %':16s} accuracy {full_accuracy:.4f}" + (" (given)" if args.full_accuracy else ""))
    print(f"gap recovered    {mean_se(gaps)}")


def mean_se(values: list[float]) -> str:
    """Mean, with its standard error when there are several values."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return f"{mean:.4f}"
    spread = statistics.stdev(values) / len(values) ** 0.5
    return f"{mean:.4f} ± {spread:.4f} (per seed {[round(v, 4) for v in values]})"


if __name__ == "__main__":
    main()
