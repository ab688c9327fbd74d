"""``bertkit finetune --config FILE.yaml [key=value ...]``: fine-tune, keep the best model, print the scores."""

from __future__ import annotations

import argparse
import json


def run(args: argparse.Namespace) -> None:
    from ..finetuning.config import FinetuneConfig
    from ..finetuning.train import finetune
    from ..training.options import flag_values, parse_overrides

    overrides = parse_overrides(args.overrides, FinetuneConfig) | flag_values(args, FinetuneConfig)
    # --resume: the run's own settings, the given ones over them (one that changes the run is refused by name)
    config = (FinetuneConfig.resumed if args.resume else FinetuneConfig.from_yaml)(args.config, overrides)
    result = finetune(config, resume=args.resume)
    summary = {"output_dir": result.output_dir, "metric": result.metric, "dev": result.dev, "test": result.test,
               "train_seconds": round(result.train_seconds, 1), "epochs_run": result.epochs_run,
               "stopped_early": result.stopped_early, "tokens_per_second": round(result.tokens_per_second, 1)}
    if config.self_training:  # each round's score: what the rounds of teacher → student bought
        summary["rounds"] = [{k: r[k] for k in ("round", "split", result.metric)} for r in result.history]
    print(json.dumps(summary, indent=2))


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("finetune", help="fine-tune a BERT on a classification / NER / pair / QA task",
                              description="Options come from --config (YAML), then KEY=VALUE overrides or "
                                          "--key value flags, e.g. lr=3e-5 --epochs 2 (see "
                                          "bertkit.finetuning.config.FinetuneConfig).")
    p.add_argument("--config", help="a YAML file of FinetuneConfig options")
    p.add_argument("--resume", action="store_true", help="continue from output_dir's latest checkpoint (save_steps)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="options over the file's (or as --key value)")
    from ..finetuning.config import FinetuneConfig
    from ..training.options import add_option_flags

    add_option_flags(p, FinetuneConfig)  # --lr 3e-5 --epochs 2 --bf16 --train-head-only …
    p.set_defaults(run=run)
