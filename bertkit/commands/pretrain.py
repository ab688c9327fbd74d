"""``bertkit pretrain``, ``bertkit corpus`` and ``bertkit fill-mask``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def cmd_pretrain(args: argparse.Namespace) -> None:
    """Pretrain (or continue pretraining) from a YAML config, with command-line overrides."""
    from ..pretraining import PretrainingConfig, run_pretraining
    from ..training import distributed
    from ..training.options import flag_values, parse_overrides

    # `--max-steps 200` and `max_steps=200` both work, as in every command; flags win over key=value
    overrides = parse_overrides(args.overrides, PretrainingConfig) | flag_values(args, PretrainingConfig)
    # --resume: the run's own settings, the given ones over them (one that changes the run is refused by name)
    config = (PretrainingConfig.resumed if args.resume else PretrainingConfig.from_yaml)(args.config, overrides)
    if not config.corpus:
        raise ValueError("no corpus: give `corpus:` in the config file or --corpus FILE [FILE ...]")
    summary = run_pretraining(config, resume=args.resume)
    final = summary["final_eval"] or summary["final_train"] or {}
    shown = ", ".join(f"{k} {v:.4g}" for k, v in final.items() if isinstance(v, float))
    if distributed.is_main():  # under torchrun every rank returns the summary; one prints it
        print(f"pretrained {summary['steps']} steps → {Path(config.output_dir) / 'model'}; {shown}")


def cmd_fill_mask(args: argparse.Namespace) -> None:
    """Print the top-k tokens for every [MASK] of each text (every text checked before any is predicted)."""
    from ..assets import default_model_dir
    from ..checkpoint import has_mlm_head
    from ..model import AutoModelForMaskedLM
    from ..pretraining.fill_mask import fill_mask
    from ..tokenization import AutoTokenizer

    folder = Path(args.model) if args.model else default_model_dir()
    if not has_mlm_head(folder):  # before loading: no warning about fresh weights ahead of the real answer
        hint = " (the installed MiniLM is a sentence-embedding model without one)" if not args.model else ""
        generator = folder.parent / "generator"  # where `pretrain objective=electra` writes the generator
        config = folder / "config.json"
        if config.is_file() and json.loads(config.read_text(encoding="utf-8")).get("model_type") == "electra":
            where = f"--model {generator}" if (generator / "config.json").is_file() else "the run's generator/ folder"
            raise ValueError(f"{folder} is an ELECTRA discriminator: it tells replaced tokens from real ones and has "
                             f"no masked-LM head; its generator fills masks: give {where}")
        raise ValueError(f"{folder} has no masked-LM head{hint}: its guesses would be random; pretrain a model "
                         "(make pretrain-en) and give --model out/en/pretrain/model")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    for number, text in enumerate(args.texts, 1):
        if tokenizer.mask_token not in text:
            raise ValueError(f"text {number} ({text[:40]!r}) has no {tokenizer.mask_token} to fill")
    model = AutoModelForMaskedLM.from_pretrained(folder)
    for text in args.texts:
        print(text)
        for number, candidates in enumerate(fill_mask(model, tokenizer, text, args.top_k), start=1):
            shown = "  ".join(f"{c.token} {c.probability:.3g}" for c in candidates)
            print(f"  [MASK] {number}: {shown}")


def cmd_corpus(args: argparse.Namespace) -> None:
    """Write the installed real corpora of a language as pretraining text (a sentence a line)."""
    from ..pretraining.sources import LANGUAGES, write_corpus

    sources = args.source or list(LANGUAGES[args.language])
    documents, sentences = write_corpus(sources, args.output)
    print(f"wrote {documents:,} documents, {sentences:,} sentences from {', '.join(sources)} to {args.output}")


def register(sub: argparse._SubParsersAction) -> None:
    """Add the pretraining subcommands."""
    from ..pretraining import PretrainingConfig
    from ..training.options import add_option_flags

    p = sub.add_parser("pretrain", help="pretrain a BERT (MLM + NSP/SOP) from text files",
                       description="Settings come from --config FILE.yaml; every field can be overridden here.")
    p.add_argument("--config", help="YAML file of PretrainingConfig fields")
    p.add_argument("--resume", action="store_true", help="continue from output_dir's latest checkpoint")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="settings over the file's, as `bertkit finetune`")
    add_option_flags(p, PretrainingConfig)
    p.set_defaults(run=cmd_pretrain)

    from ..pretraining.sources import LANGUAGES, SOURCES

    p = sub.add_parser("corpus", help="write installed real corpora as pretraining text (en, zh)")
    p.add_argument("language", choices=sorted(LANGUAGES))
    p.add_argument("--source", action="append", choices=sorted(SOURCES), help="instead of the language's defaults")
    p.add_argument("--output", "-o", required=True)
    p.set_defaults(run=cmd_corpus)

    p = sub.add_parser("fill-mask", help="top-k predictions for [MASK] (a model with an MLM head)")
    p.add_argument("texts", nargs="+")
    p.add_argument("--model", help="a model folder with a masked-LM head (default: the installed MiniLM, which has "
                   "none: it says so)")
    p.add_argument("--top-k", type=int, default=5)
    p.set_defaults(run=cmd_fill_mask)
