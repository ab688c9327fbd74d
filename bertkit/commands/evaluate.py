"""``bertkit evaluate build-cloze`` (a cloze set from held-out text) and ``bertkit evaluate fill-mask`` (a
masked-LM's top-1 / top-5 accuracy on it, overall and per part of speech)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..atomic import write_text_atomic


def cmd_build_cloze(args: argparse.Namespace) -> None:
    """Write a cloze set (JSON lines) from a corpus file's held-out sentences, for the model folder's tokenizer."""
    from ..pretraining.cloze import build_cloze, cloze_jsonl, held_out_sentences
    from ..tokenization import AutoTokenizer

    sentences = held_out_sentences(args.corpus, args.held_out_fraction)
    tokenizer = AutoTokenizer.from_pretrained(Path(args.model))
    items = build_cloze(sentences, tokenizer, n=args.n, seed=args.seed)
    write_text_atomic(args.output, cloze_jsonl(items))
    counts = {pos: sum(i.pos == pos for i in items) for pos in sorted({i.pos for i in items})}
    shown = ", ".join(f"{pos} {count}" for pos, count in counts.items())
    print(f"wrote {len(items)} cloze items ({shown}) from {len(sentences):,} sentences to {args.output}")


def check_mlm_folder(folder: Path) -> None:
    """Refuse, before loading, a folder whose checkpoint has no masked-LM head (its guesses would be random)."""
    from ..checkpoint import has_mlm_head

    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder} is not a model folder (no config.json)")
    if not has_mlm_head(folder):
        raise ValueError(f"{folder} has no masked-LM head: its guesses would be random; pretrain a model "
                         "(make pretrain-en) and give --model out/en/pretrain/model")


def cmd_fill_mask(args: argparse.Namespace) -> None:
    """Score a masked-LM on a cloze set: print top-1 / top-5 overall and per part of speech, write them as JSON."""
    from ..model import AutoModelForMaskedLM
    from ..pretraining.cloze import read_cloze, score_cloze
    from ..tokenization import AutoTokenizer

    folder = Path(args.model)
    check_mlm_folder(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForMaskedLM.from_pretrained(folder)
    items = read_cloze(args.cloze, tokenizer, model.config.max_tokens)  # every line checked before any is scored
    scores = {"model": str(folder), "cloze": str(args.cloze), **score_cloze(model, tokenizer, items)}
    output = Path(args.output) if args.output else Path(args.cloze).with_suffix(".scores.json")
    write_text_atomic(output, json.dumps(scores, indent=1, ensure_ascii=False) + "\n")
    print(f"{'':12} {'items':>6} {'top-1':>7} {'top-5':>7}")
    for name, row in [("all", scores), *scores["by_pos"].items()]:
        print(f"{name:12} {row['items']:>6} {row['top1']:>7.1%} {row['top5']:>7.1%}")
    print(f"wrote {output}")


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``bertkit evaluate`` and its evaluations."""
    p = sub.add_parser("evaluate", help="evaluate a model: a cloze set built from held-out text (build-cloze), "
                       "fill-mask accuracy on it (fill-mask)")
    evaluations = p.add_subparsers(dest="evaluation", required=True)

    e = evaluations.add_parser("build-cloze", help="sentences of held-out text with one content word masked")
    e.add_argument("--corpus", required=True, help="a corpus file: a sentence a line, blank lines between documents")
    e.add_argument("--model", required=True, help="the model folder whose tokenizer the answers are tokens of")
    e.add_argument("--output", "-o", required=True, help="the cloze set, FILE.jsonl")
    e.add_argument("--n", type=int, default=500, help="items to build (default 500)")
    e.add_argument("--seed", type=int, default=0, help="which sentences and words (default 0)")
    e.add_argument("--held-out-fraction", type=float, default=0.0,
                   help="read only the documents pretraining holds out with this eval_fraction (0.05 for "
                        "configs/pretrain-en.yaml); default 0: every document of the file")
    e.set_defaults(run=cmd_build_cloze)

    e = evaluations.add_parser("fill-mask", help="top-1 / top-5 accuracy of a masked-LM on a cloze set")
    e.add_argument("--model", required=True, help="a model folder with a masked-LM head")
    e.add_argument("--cloze", required=True, help="a cloze set (JSON lines of text with one mask, answer, pos)")
    e.add_argument("--output", "-o", help="the scores as JSON (default: beside the cloze file, .scores.json)")
    e.set_defaults(run=cmd_fill_mask)
