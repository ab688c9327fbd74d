"""``bertkit train-tokenizer``: learn a WordPiece, BPE or byte-level BPE vocabulary from text files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT_LIMIT_ALPHABET = 1000
# Options of BERT's vocabulary training that byte-level BPE has no use for (its alphabet is the 256 bytes, and it
# keeps text as it is), and the reverse: a given one is an error rather than silently ignored.
WORDPIECE_ONLY = {"limit_alphabet": "--limit-alphabet", "cased": "--cased", "keep_accents": "--keep-accents",
                  "pre_tokenize": "--pre-tokenize", "base_vocab": "--base-vocab"}
BYTE_BPE_ONLY = {"style": "--style", "add_prefix_space": "--add-prefix-space"}
UNIGRAM_ONLY = {"family": "--family", "character_coverage": "--character-coverage",
                "normalizer_from": "--normalizer-from", "byte_fallback": "--byte-fallback",
                "normalization": "--normalization"}
# every tokenizer file a folder may hold: a new vocabulary replaces them all (a stale vocab.json beside a new
# vocab.txt would make the folder two tokenizers)
TOKENIZER_FILES = ("vocab.txt", "vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json",
                   "special_tokens_map.json", "spiece.model", "sentencepiece.bpe.model", "spm.model")


def check_options(args: argparse.Namespace) -> None:
    """Refuse options that do not apply to the chosen ``--model-type``."""
    byte_level = args.model_type == "byte-bpe"
    if args.model_type in ("unigram", "sp-bpe"):
        given = [flag for name, flag in {**WORDPIECE_ONLY, **BYTE_BPE_ONLY}.items()
                 if getattr(args, name) not in (None, False)]
        if given or args.min_frequency is not None:
            raise ValueError(f"{', '.join(given + ['--min-frequency'] * (args.min_frequency is not None))} do(es) "
                             f"not apply to --model-type {args.model_type}: SentencePiece's trainers")
        return
    given = [flag for name, flag in (WORDPIECE_ONLY if byte_level else BYTE_BPE_ONLY).items()
             if getattr(args, name) not in (None, False)]
    given += [flag for name, flag in UNIGRAM_ONLY.items() if getattr(args, name) not in (None, False)]
    if given:
        kind = "byte-level BPE (it keeps text as it is, over the 256 bytes)" if byte_level else "byte-bpe only"
        raise ValueError(f"{', '.join(given)} {'do' if len(given) > 1 else 'does'} not apply to --model-type "
                         f"{args.model_type}: {kind}")


def run(args: argparse.Namespace) -> None:
    """Train, save, and say where the files went."""
    check_options(args)
    from ..atomic import claim_output_folder

    if args.base_vocab and Path(args.base_vocab).resolve().parent == Path(args.output).resolve():
        raise ValueError(f"--base-vocab {args.base_vocab} is inside --output {args.output}, which the new vocabulary "
                         "replaces: write it to another folder")
    missing = [path for path in args.files if not Path(path).is_file()]
    if missing:  # before the output folder is claimed (with --overwrite, emptied): a typo loses nothing
        raise FileNotFoundError(f"training file not found: {', '.join(map(str, missing))}")
    claim_output_folder(args.output, args.overwrite, TOKENIZER_FILES)
    if args.model_type in ("unigram", "sp-bpe"):
        from ..tokenization.unigram_training import train_unigram_folder

        tokenizer = train_unigram_folder(args.files, args.output, args.vocab_size, args.family or "albert",
                                         0.9995 if args.character_coverage is None else args.character_coverage,
                                         model_type="bpe" if args.model_type == "sp-bpe" else "unigram",
                                         normalizer_from=args.normalizer_from, byte_fallback=args.byte_fallback,
                                         normalization=args.normalization)
        files = tokenizer.vocab_file.name
    elif args.model_type == "byte-bpe":
        from ..tokenization.byte_bpe_training import train_byte_bpe

        tokenizer = train_byte_bpe(args.files, args.output, vocab_size=args.vocab_size,
                                   min_frequency=2 if args.min_frequency is None else args.min_frequency,
                                   style=args.style or "roberta", add_prefix_space=args.add_prefix_space)
        files = "vocab.json + merges.txt"
    else:
        from ..tokenization.training import train_tokenizer

        limit = DEFAULT_LIMIT_ALPHABET if args.limit_alphabet is None else args.limit_alphabet
        tokenizer = train_tokenizer(
            args.files, args.output, vocab_size=args.vocab_size, model_type=args.model_type,
            min_frequency=args.min_frequency, limit_alphabet=limit or None, lower_case=not args.cased,
            strip_accents=False if args.keep_accents else None, pre_tokenize=args.pre_tokenize,
            base_vocab=args.base_vocab,
        )
        files = "vocab.txt"
    print(f"wrote {args.output}/{files} ({len(tokenizer)} tokens) and tokenizer_config.json", file=sys.stderr)
    if len(tokenizer) < args.vocab_size:
        frequency = f"--min-frequency {args.min_frequency}" if args.min_frequency else "the default --min-frequency"
        print(f"note: {len(tokenizer)} tokens, fewer than --vocab-size {args.vocab_size}: no further pair or word "
              f"occurs often enough for {frequency} (lower it, or add text, for a larger vocabulary)",
              file=sys.stderr)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``train-tokenizer`` to the ``bertkit`` command line."""
    p = subparsers.add_parser("train-tokenizer", help="learn a WordPiece / BPE / byte-level BPE vocabulary")
    p.add_argument("files", nargs="+", help="UTF-8 text files")
    p.add_argument("--output", "-o", required=True,
                   help="folder for vocab.txt (vocab.json + merges.txt for byte-bpe) + tokenizer_config.json")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the tokenizer files already in --output (else: refused)")
    p.add_argument("--vocab-size", type=int, default=30000)
    p.add_argument("--model-type", default="wordpiece", choices=["wordpiece", "bpe", "byte-bpe", "unigram", "sp-bpe"],
                   help="wordpiece: merge the pair with the best freq(ab)/(freq(a)·freq(b)); bpe: the most frequent; "
                        "byte-bpe: GPT-2 / RoBERTa byte-level BPE (merges as tokenizers' ByteLevelBPETokenizer); "
                        "unigram: SentencePiece's Unigram language model (seeds, EM, pruning), a .model file; "
                        "sp-bpe: SentencePiece's BPE, a .model file")
    p.add_argument("--family", choices=["albert", "xlnet", "t5", "xlm-roberta", "deberta-v2"],
                   help="unigram / sp-bpe: the special pieces and tokenizer_config.json of this model family (default "
                        "albert)")
    p.add_argument("--normalizer-from", metavar="MODEL",
                   help="unigram / sp-bpe: take this SentencePiece .model's normaliser (e.g. nmt_nfkc) instead of "
                        "identity")
    p.add_argument("--normalization", choices=["identity", "nfkc", "nmt_nfkc"],
                   help="unigram / sp-bpe: the normaliser bertkit builds into the .model (SentencePiece's "
                        "normalization_rule_name; default identity)")
    p.add_argument("--byte-fallback", action="store_true",
                   help="unigram / sp-bpe: 256 byte pieces, so characters outside the vocabulary are spelled in bytes")
    p.add_argument("--character-coverage", type=float,
                   help="unigram / sp-bpe: keep the characters covering this share of the text (default 0.9995; "
                        "the rest are unknown)")
    p.add_argument("--min-frequency", type=int,
                   help="a merge (or added word) must occur this often; default 10 for wordpiece, 2 for bpe and "
                        "byte-bpe")
    p.add_argument("--limit-alphabet", type=int,
                   help=f"keep this many most frequent characters (0: all; default {DEFAULT_LIMIT_ALPHABET}); raise "
                        "it for Chinese")
    p.add_argument("--cased", action="store_true", help="keep case (and accents); default: lower-case")
    p.add_argument("--keep-accents", action="store_true", help="lower-case but keep accents")
    p.add_argument("--pre-tokenize", choices=["jieba"],
                   help="jieba: add frequent Chinese words and tokenize word-first (WoBERT)")
    p.add_argument("--base-vocab", help="with --pre-tokenize jieba: extend this vocab.txt (ids kept) with words")
    p.add_argument("--style", choices=["roberta", "gpt2"],
                   help="byte-bpe: roberta (default; <s> A </s>, with <pad> <unk> <mask>) or gpt2 (<|endoftext|>)")
    p.add_argument("--add-prefix-space", action="store_true",
                   help="byte-bpe: add a space before each text, so its first word is spelled as inside a sentence")
    p.set_defaults(run=run)
