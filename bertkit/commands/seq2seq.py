"""``bertkit seq2seq``: train the encoder-decoder Transformer on numbers ↔ words and report held-out exact match."""

from __future__ import annotations

import argparse


def cmd_seq2seq(args: argparse.Namespace) -> None:
    """Run a numbers ↔ words training from a YAML config with overrides; print greedy and beam exact match."""
    from ..seq2seq.config import NumbersConfig
    from ..seq2seq.run import run_numbers
    from ..training.options import flag_values, parse_overrides

    overrides = parse_overrides(args.overrides, NumbersConfig) | flag_values(args, NumbersConfig)
    config = NumbersConfig.from_yaml(args.config, overrides)
    results = run_numbers(config)
    if config.objective == "span_corruption":
        for name, scores in results["trained"].items():
            print(f"{name}: held-out loss {scores['heldout_loss']:.3f} (untrained "
                  f"{results['untrained']['heldout_loss']:.3f}), spans restored exactly in "
                  f"{scores['span_exact_match']:.3f} of {results['heldout_texts']} held-out texts")
        print(f"trained {results['steps']} steps in {results['train_minutes']} minutes → {config.output_dir}")
        return
    for name, scores in results["exact_match"].items():
        shown = ", ".join(f"{k} {v:.3f}" for k, v in scores.items() if k != "seconds")
        print(f"{name}: exact match on {results['heldout_pairs']} held-out pairs: {shown}")
    print(f"trained {results['steps']} steps in {results['train_minutes']} minutes → {config.output_dir}")


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``bertkit seq2seq``."""
    from ..seq2seq.config import NumbersConfig
    from ..training.options import add_option_flags

    p = sub.add_parser("seq2seq", help="train an encoder-decoder Transformer on numbers ↔ words (num2words)",
                       description="Settings come from --config FILE.yaml; every field can be overridden here.")
    p.add_argument("--config", help="YAML file of NumbersConfig fields (configs/seq2seq-numbers.yaml)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="settings over the file's")
    add_option_flags(p, NumbersConfig)
    p.set_defaults(run=cmd_seq2seq)
