"""``bertkit train-tokenizer``: learn a WordPiece or BPE vocabulary from text files."""

from __future__ import annotations

import argparse
import sys


def run(args: argparse.Namespace) -> None:
    """Train, save, and say where the files went."""
    from ..tokenization.training import train_tokenizer

    tokenizer = train_tokenizer(
        args.files, args.output, vocab_size=args.vocab_size, model_type=args.model_type,
        min_frequency=args.min_frequency, limit_alphabet=args.limit_alphabet or None, lower_case=not args.cased,
        strip_accents=False if args.keep_accents else None, pre_tokenize=args.pre_tokenize,
        base_vocab=args.base_vocab,
    )
    print(f"wrote {args.output}/vocab.txt ({len(tokenizer)} tokens) and tokenizer_config.json", file=sys.stderr)
    if len(tokenizer) < args.vocab_size:
        frequency = f"--min-frequency {args.min_frequency}" if args.min_frequency else "the default --min-frequency"
        print(f"note: {len(tokenizer)} tokens, fewer than --vocab-size {args.vocab_size}: no further pair or word "
              f"occurs often enough for {frequency} (lower it, or add text, for a larger vocabulary)",
              file=sys.stderr)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``train-tokenizer`` to the ``bertkit`` command line."""
    p = subparsers.add_parser("train-tokenizer", help="learn a WordPiece / BPE vocabulary from text files")
    p.add_argument("files", nargs="+", help="UTF-8 text files")
    p.add_argument("--output", "-o", required=True, help="folder for vocab.txt + tokenizer_config.json")
    p.add_argument("--vocab-size", type=int, default=30000)
    p.add_argument("--model-type", default="wordpiece", choices=["wordpiece", "bpe"],
                   help="wordpiece: merge the pair with the best freq(ab)/(freq(a)·freq(b)); bpe: the most frequent")
    p.add_argument("--min-frequency", type=int,
                   help="a merge (or added word) must occur this often; default 10 for wordpiece, 2 for bpe")
    p.add_argument("--limit-alphabet", type=int, default=1000,
                   help="keep this many most frequent characters (0: all); raise it for Chinese")
    p.add_argument("--cased", action="store_true", help="keep case (and accents); default: lower-case")
    p.add_argument("--keep-accents", action="store_true", help="lower-case but keep accents")
    p.add_argument("--pre-tokenize", choices=["jieba"],
                   help="jieba: add frequent Chinese words and tokenize word-first (WoBERT)")
    p.add_argument("--base-vocab", help="with --pre-tokenize jieba: extend this vocab.txt (ids kept) with words")
    p.set_defaults(run=run)
