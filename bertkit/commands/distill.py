"""``bertkit distill --config FILE.yaml [key=value ...]``: a smaller student from a teacher, scored beside it."""

from __future__ import annotations

import argparse
import json


def run(args: argparse.Namespace) -> None:
    from ..distillation import DistillConfig, distill
    from ..training.options import flag_values, parse_overrides

    overrides = parse_overrides(args.overrides, DistillConfig) | flag_values(args, DistillConfig)
    config = DistillConfig.from_yaml(args.config, overrides)
    result = distill(config)
    print(json.dumps({k: v for k, v in result.items() if k != "config"}, indent=2))


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("distill", help="distil a fine-tuned classifier or a sentence encoder into a student",
                              description="mode: task (a fine-tuned classifier → a student trained on KL(T) + task "
                                          "loss, optional TinyBERT hidden / attention losses) or embedding (a "
                                          "sentence encoder → a student matching its vectors on unlabeled text). "
                                          "Options come from --config (YAML), then KEY=VALUE overrides or --key "
                                          "value flags (see bertkit.distillation.config.DistillConfig).")
    p.add_argument("--config", help="a YAML file of DistillConfig options")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="options over the file's (or as --key value)")
    from ..distillation.config import DistillConfig
    from ..training.options import add_option_flags

    add_option_flags(p, DistillConfig)
    p.set_defaults(run=run)
