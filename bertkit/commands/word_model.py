"""``bertkit word-model``: a character-level model folder + a word vocabulary → a word-level model folder."""

from __future__ import annotations

import argparse
import sys


def run(args: argparse.Namespace) -> None:
    """Grow the model's vocabulary (new words start as the mean of their characters) and save it."""
    from ..word_model import make_word_model

    folder = make_word_model(args.model, args.tokenizer, args.output)
    print(f"wrote the word-level model to {folder}", file=sys.stderr)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``word-model`` to the ``bertkit`` command line."""
    p = subparsers.add_parser("word-model", help="char-level model + word vocabulary → word-level model (WoBERT)")
    p.add_argument("model", help="the character-level model folder (config.json, weights, vocab.txt)")
    p.add_argument("--tokenizer", required=True,
                   help="folder from `bertkit train-tokenizer --pre-tokenize jieba --base-vocab MODEL/vocab.txt`")
    p.add_argument("--output", "-o", required=True)
    p.set_defaults(run=run)
