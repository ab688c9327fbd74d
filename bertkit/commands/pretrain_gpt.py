"""``bertkit pretrain-gpt``: train a GPT (causal LM) from text files, with held-out perplexity against n-gram
baselines and samples before / after."""

from __future__ import annotations

import argparse
from pathlib import Path


def cmd_pretrain_gpt(args: argparse.Namespace) -> None:
    """Train from a YAML config with command-line overrides; print the held-out perplexities."""
    from ..pretraining.causal import CausalPretrainingConfig, run_causal_pretraining
    from ..training.options import flag_values, parse_overrides

    overrides = parse_overrides(args.overrides, CausalPretrainingConfig) | flag_values(args, CausalPretrainingConfig)
    config = CausalPretrainingConfig.from_yaml(args.config, overrides)
    if not config.corpus:
        raise ValueError("no corpus: give `corpus:` in the config file or --corpus FILE [FILE ...]")
    summary = run_causal_pretraining(config)
    final = summary["final_eval"] or {}
    shown = ", ".join(f"{k} {final[k]:.4g}" for k in ("perplexity", "bigram_perplexity", "unigram_perplexity")
                      if k in final)
    print(f"\ntrained {summary['steps']} steps → {Path(config.output_dir) / 'model'}; held-out {shown}")


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``pretrain-gpt``."""
    from ..pretraining.causal import CausalPretrainingConfig
    from ..training.options import add_option_flags

    p = sub.add_parser("pretrain-gpt", help="pretrain a GPT (next-token prediction) from text files",
                       description="Settings come from --config FILE.yaml (see configs/gpt-en.yaml); every field "
                                   "can be overridden here. Reports held-out perplexity beside unigram and bigram "
                                   "baselines and prints samples before and after training.")
    p.add_argument("--config", help="YAML file of CausalPretrainingConfig fields")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="settings over the file's")
    add_option_flags(p, CausalPretrainingConfig)
    p.set_defaults(run=cmd_pretrain_gpt)
