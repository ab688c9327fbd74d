"""``bertkit pretrain``, ``bertkit corpus``, ``bertkit fill-mask`` and ``bertkit explain masking``."""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from pathlib import Path


def _field_type(field: dataclasses.Field):
    """The argparse converter of a config field (``int | None`` → int; lists take several values)."""
    hint = field.type if not isinstance(field.type, str) else eval(field.type, vars(typing), {})  # noqa: S307
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and args:
        hint = args[0]
    return hint


def _bool(value: str) -> bool:
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def add_config_options(parser: argparse.ArgumentParser, config_class: type) -> None:
    """One ``--field-name`` option per dataclass field, all defaulting to 'not given' so the YAML file stands."""
    for field in dataclasses.fields(config_class):
        hint = _field_type(field)
        option = "--" + field.name.replace("_", "-")
        if typing.get_origin(hint) is list:
            parser.add_argument(option, dest=field.name, nargs="+", default=argparse.SUPPRESS)
        else:
            convert = _bool if hint is bool else hint
            parser.add_argument(option, dest=field.name, type=convert, default=argparse.SUPPRESS,
                                metavar=field.name.upper())


def config_overrides(args: argparse.Namespace, config_class: type) -> dict:
    """The config fields given on the command line."""
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(config_class) if hasattr(args, f.name)}


def cmd_pretrain(args: argparse.Namespace) -> None:
    """Pretrain (or continue pretraining) from a YAML config, with command-line overrides."""
    from ..finetuning.config import parse_overrides
    from ..pretraining import PretrainingConfig, run_pretraining

    # `--max-steps 200` and fine-tuning's `max_steps=200` spellings both work; flags win over key=value
    overrides = parse_overrides(args.overrides) | config_overrides(args, PretrainingConfig)
    if args.config:
        config = PretrainingConfig.from_yaml(args.config, **overrides)
    else:
        config = PretrainingConfig.from_dict(overrides)
    if not config.corpus:
        raise ValueError("no corpus: give `corpus:` in the config file or --corpus FILE [FILE ...]")
    summary = run_pretraining(config, resume=args.resume)
    final = summary["final_eval"] or summary["final_train"] or {}
    shown = ", ".join(f"{k} {v:.4g}" for k, v in final.items() if isinstance(v, float))
    print(f"pretrained {summary['steps']} steps → {Path(config.output_dir) / 'model'}; {shown}")


def cmd_fill_mask(args: argparse.Namespace) -> None:
    """Print the top-k tokens for every [MASK] of each text."""
    from ..model import AutoModelForMaskedLM
    from ..pretraining.fill_mask import fill_mask
    from ..tokenization import AutoTokenizer

    model = AutoModelForMaskedLM.from_pretrained(args.model)
    if model.loading_report and any(n.startswith("cls.predictions") for n in model.loading_report.missing):
        raise ValueError(f"{args.model} has no masked-LM head (cls.predictions.*): its predictions would be random")
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    for text in args.texts:
        print(text)
        for number, candidates in enumerate(fill_mask(model, tokenizer, text, args.top_k), start=1):
            shown = "  ".join(f"{c.token} {c.probability:.3g}" for c in candidates)
            print(f"  [MASK] {number}: {shown}")


def cmd_explain(args: argparse.Namespace) -> None:
    """Show one masked training instance, position by position (or draw the attention kernels' patterns)."""
    if args.what == "attention-cost":
        from .attention_cost import cmd_attention_cost

        return cmd_attention_cost(args)
    from ..assets import default_model_dir
    from ..pretraining import MaskingConfig
    from ..pretraining.explain import explain_masking
    from ..tokenization import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(args.model or default_model_dir())
    masking = MaskingConfig(strategy=args.strategy, mlm_probability=args.mlm_probability)
    print(explain_masking(" ".join(args.text), tokenizer, masking, seed=args.seed))


def cmd_corpus(args: argparse.Namespace) -> None:
    """Write the installed real corpora of a language as pretraining text (a sentence a line)."""
    from ..pretraining.sources import LANGUAGES, write_corpus

    sources = args.source or list(LANGUAGES[args.language])
    documents, sentences = write_corpus(sources, args.output)
    print(f"wrote {documents:,} documents, {sentences:,} sentences from {', '.join(sources)} to {args.output}")


def register(sub: argparse._SubParsersAction) -> None:
    """Add the pretraining subcommands."""
    from ..pretraining import PretrainingConfig
    from ..pretraining.masking import STRATEGIES

    p = sub.add_parser("pretrain", help="pretrain a BERT (MLM + NSP/SOP) from text files",
                       description="Settings come from --config FILE.yaml; every field can be overridden here.")
    p.add_argument("--config", help="YAML file of PretrainingConfig fields")
    p.add_argument("--resume", action="store_true", help="continue from output_dir's latest checkpoint")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="settings over the file's, as `bertkit finetune`")
    add_config_options(p, PretrainingConfig)
    p.set_defaults(run=cmd_pretrain)

    from ..pretraining.sources import LANGUAGES, SOURCES

    p = sub.add_parser("corpus", help="write installed real corpora as pretraining text (en, zh)")
    p.add_argument("language", choices=sorted(LANGUAGES))
    p.add_argument("--source", action="append", choices=sorted(SOURCES), help="instead of the language's defaults")
    p.add_argument("--output", "-o", required=True)
    p.set_defaults(run=cmd_corpus)

    p = sub.add_parser("fill-mask", help="top-k predictions for [MASK] (a model with an MLM head)")
    p.add_argument("texts", nargs="+")
    p.add_argument("--model", required=True, help="model folder with cls.predictions weights and vocab.txt")
    p.add_argument("--top-k", type=int, default=5)
    p.set_defaults(run=cmd_fill_mask)

    p = sub.add_parser("explain", help="explain a pretraining step on your text: `explain masking TEXT`; "
                       "`explain attention-cost TEXT`: each attention kernel's pattern as a PNG")
    p.add_argument("what", choices=["masking", "attention-cost"])
    p.add_argument("text", nargs="+")
    p.add_argument("--strategy", default="token", choices=STRATEGIES)
    p.add_argument("--mlm-probability", type=float, default=0.15)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model", help="whose vocab.txt to use; default: the installed MiniLM")
    p.add_argument("--output", default="attention-patterns.png", help="attention-cost: the PNG to write")
    p.set_defaults(run=cmd_explain)
