"""Parameter-efficient fine-tuning on Rotten Tomatoes with MiniLM: every method against full fine-tuning.

    .venv/bin/python bench/peft_methods.py [--methods full,lora,...] [--limit-train N] [--epochs 2] [--out out/peft-rt]
        [--set lora_r=4 "target_modules=[query,key,value,dense]" learning_rate=2e-3 --name lora-all-2e-3]

Each method runs `configs/rotten_tomatoes.yaml` (the data, epochs, seed, max_length, batch and pooling of
`make finetune-rt`, 0.838 test accuracy with full fine-tuning) with `peft=METHOD` and the method's learning rate
(LEARNING_RATES: usual values from the papers, not tuned here), in its own process with OMP_NUM_THREADS=1, one at
a time. Reported: test accuracy, trainable share, seconds per epoch, median training tokens/s, peak RSS.
`--table` prints every run under --out (its results.json, plus peak RSS where bench.json has it) as a Markdown table.
`--set` adds config overrides (a variant of one method, saved under `--name`); rows accumulate in bench.json by name,
so runs made separately (e.g. two side by side) end in one table.
`--seeds full,lora-all-head1` prints each run's mean ± sd over its repeats (folders NAME, NAME-s1, NAME-s2, …).
`--limit-train N` keeps N training reviews (a speed check, not the accuracy of the full run).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

METHODS = ["full", "lora", "houlsby", "pfeiffer", "prefix", "ptuning_v2", "prompt", "ptuning", "bitfit", "head"]
LEARNING_RATES = {"full": 4e-5, "lora": 5e-4, "houlsby": 5e-4, "pfeiffer": 5e-4, "prefix": 5e-4, "ptuning_v2": 5e-3,
                  "prompt": 3e-2, "ptuning": 1e-3, "bitfit": 1e-3, "head": 1e-3}


def run_one(method: str, name: str, out: Path, limit_train: int | None, epochs: int, extra: list[str]) -> dict:
    """Fine-tune with one method in this process; its figures as a dict."""
    from bertkit.finetuning.config import FinetuneConfig
    from bertkit.finetuning.train import finetune

    overrides = [f"output_dir={out / name}", f"learning_rate={LEARNING_RATES[method]}", f"epochs={epochs}",
                 "progress=false", "overwrite=true"]
    if method != "full":
        overrides.append(f"peft={method}")
    if limit_train:
        overrides.append(f"limit_train={limit_train}")
    config = FinetuneConfig.from_yaml(ROOT / "configs" / "rotten_tomatoes.yaml", overrides + extra)
    result = finetune(config)
    summary = json.loads((out / name / "results.json").read_text())
    shares = summary["trainable_parameters"]
    return {"method": method, "name": name, "overrides": extra,
            "test_accuracy": result.test["accuracy"], "dev_accuracy": result.dev["accuracy"],
            "trainable": shares["count"], "trainable_percent": 100 * shares["fraction"],
            "seconds_per_epoch": result.train_seconds / max(result.epochs_run, 1e-9),
            "tokens_per_second": result.tokens_per_second, "learning_rate": config.learning_rate,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "train_reviews": summary["sizes"]["train"], "epochs": result.epochs_run}


def save_rows(path: Path, rows: list[dict]) -> None:
    """Merge rows into bench.json by name (another process may have added its own since), atomically."""
    kept = {row.get("name", row["method"]): row for row in (json.loads(path.read_text()) if path.exists() else [])}
    kept |= {row["name"]: row for row in rows}
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(json.dumps(list(kept.values()), indent=2) + "\n")
    temporary.replace(path)


def percent(value: float) -> str:
    """Two decimals, or two significant digits below 0.1 (a head-only share is thousandths of a percent)."""
    return f"{value:.2f}" if value >= 0.1 else f"{value:.2g}"


def table(out: Path) -> str:
    """A Markdown row per run folder under ``out``: method, settings, trainable share, accuracy, speed, memory."""
    rss = {row.get("name", row["method"]): row["peak_rss_mb"]
           for row in (json.loads((out / "bench.json").read_text()) if (out / "bench.json").exists() else [])}
    lines = ["| run | method, settings | trainable | test acc | dev acc | s / epoch | tokens / s | peak RSS |",
             "|---|---|---|---|---|---|---|---|"]
    for path in sorted(out.glob("*/results.json")):
        run, name = json.loads(path.read_text()), path.parent.name
        config, shares = run["config"], run["trainable_parameters"]
        method = config["peft"] or "full"
        settings = [f"lr {config['learning_rate']:g}"]
        if method == "lora":
            settings.insert(0, f"r {config['lora_r']} on {', '.join(config['target_modules'])}")
        if config["head_lr_scale"] != 10:
            settings.append(f"head lr × {config['head_lr_scale']:g}")
        if method == "lora" and config["lora_dropout"]:
            settings.append(f"dropout {config['lora_dropout']:g}")
        memory = f"{rss[name]:,.0f} MB" if name in rss else "—"
        accuracy = f"{run['test']['accuracy']:.3f} | {run['dev']['accuracy']:.3f}"
        lines.append(f"| {name} | {method}: {', '.join(settings)} | {shares['count']:,} "
                     f"({percent(100 * shares['fraction'])} %) | {accuracy} "
                     f"| {run['train_seconds'] / run['epochs_run']:.0f} | {run['tokens_per_second']:.0f} | {memory} |")
    return "\n".join(lines)


def seed_summary(out: Path, names: list[str]) -> str:
    """Mean ± sample standard deviation of test and dev accuracy over the seeds of each run name: the folder NAME
    (the config's seed) and NAME-s1, NAME-s2, … (``--set seed=K --name NAME-sK``)."""
    lines = ["| run | seeds | test acc, each | test mean ± sd | dev mean ± sd |", "|---|---|---|---|---|"]
    for name in names:
        runs = [json.loads((folder / "results.json").read_text())
                for folder in sorted(out.iterdir())
                if (folder.name == name or re.fullmatch(rf"{re.escape(name)}-s\d+", folder.name))
                and (folder / "results.json").is_file()]
        if not runs:
            raise SystemExit(f"no finished run named {name} or {name}-sK under {out}")
        test = [run["test"]["accuracy"] for run in runs]
        dev = [run["dev"]["accuracy"] for run in runs]
        seeds = ", ".join(str(run["config"]["seed"]) for run in runs)
        lines.append(f"| {name} | {seeds} | {', '.join(f'{a:.3f}' for a in test)} | {mean_sd(test)} | {mean_sd(dev)} |")
    return "\n".join(lines)


def mean_sd(values: list[float]) -> str:
    """``mean ± sd`` to three decimals (sd: the sample standard deviation; 0 for one value)."""
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values) if len(values) > 1 else 0.0:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--limit-train", type=int)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--out", default="out/peft-rt")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides for every method")
    parser.add_argument("--name", help="the row's name and folder (one method only; default: the method)")
    parser.add_argument("--table", action="store_true", help="print the runs under --out as a Markdown table")
    parser.add_argument("--seeds", metavar="NAME,NAME", help="print each run's mean ± sd over its seeded repeats")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # the child process: run one method, print its JSON
    args = parser.parse_args()
    out = Path(args.out)
    if args.table:
        print(table(out))
        return
    if args.seeds:
        print(seed_summary(out, args.seeds.split(",")))
        return
    if args.one:
        print(json.dumps(run_one(args.one, args.name or args.one, out, args.limit_train, args.epochs, args.set)))
        return
    methods = args.methods.split(",")
    if unknown := [method for method in methods if method not in METHODS]:
        parser.error(f"unknown method(s) {unknown}; choose from {', '.join(METHODS)}")
    if args.name and len(methods) > 1:
        parser.error("--name names one run: give one method")
    rows = []
    for method in methods:
        command = [sys.executable, __file__, "--one", method, "--out", str(out), "--epochs", str(args.epochs),
                   "--name", args.name or method, "--set", *args.set]
        if args.limit_train:
            command += ["--limit-train", str(args.limit_train)]
        env = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        if done.returncode:
            sys.exit(f"{args.name or method} failed:\n{done.stderr[-3000:]}")
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        row = rows[-1]
        print(f"{row['name']:<11} test acc {row['test_accuracy']:.3f}  trainable {row['trainable']:>10,} "
              f"({row['trainable_percent']:.3f} %)  {row['seconds_per_epoch']:7.1f} s/epoch  "
              f"{row['tokens_per_second']:7.0f} tok/s  peak RSS {row['peak_rss_mb']:.0f} MB", flush=True)
        out.mkdir(parents=True, exist_ok=True)
        save_rows(out / "bench.json", rows)


if __name__ == "__main__":
    main()
