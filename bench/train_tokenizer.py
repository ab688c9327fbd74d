"""Vocabulary training against the `tokenizers` library's WordPieceTrainer (and, for byte-level BPE, its
ByteLevelBPETokenizer), same corpus, same vocabulary size.

Corpus: the Python 3.11 docs + the English Debian handbook (bertkit.corpora); every 10th line is held out.
Reports tokens per word on the held-out lines (words = BERT's basic tokenization; every vocabulary is applied with
bertkit's greedy WordPiece, so only the vocabularies differ) and training time. `tokenizers` is Rust and
multi-threaded; bertkit is pure Python, one thread. On a shared machine timings are noisy.

    .venv/bin/python bench/train_tokenizer.py [--vocab-size 20000] [--min-frequency 2] [--model-types byte-bpe]

Byte-level BPE (``--model-types byte-bpe``) is compared with tokenizers' ByteLevelBPETokenizer trained on the same
file: the merges must be identical, so the row reports that and the two training times (one thread each:
RAYON_NUM_THREADS=1 is set for it unless the environment says otherwise).

The vocabulary size is 20k because the WordPiece score needs min_frequency=10 (see training.DEFAULT_MIN_FREQUENCY),
and on this 11 MB corpus only ~20.8k tokens reach it.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("RAYON_NUM_THREADS", "1")  # before tokenizers is imported: one thread, like bertkit
import tempfile
import time
from pathlib import Path

from bertkit.corpora import debian_handbook_lines, python_docs_lines
from bertkit.tokenization import BasicTokenizer, BertTokenizer
from bertkit.tokenization.byte_bpe_training import STYLES, train_byte_bpe
from bertkit.tokenization.training import SPECIAL_TOKENS, train_tokenizer


def load_corpus() -> tuple[list[str], list[str]]:
    """Non-blank lines of the English corpora, split 9:1 into training and held-out lines."""
    lines = [line for line in python_docs_lines() if line.strip()]
    lines += [line for line in debian_handbook_lines("en-US") if line.strip()]
    train = [line for i, line in enumerate(lines) if i % 10]
    held_out = [line for i, line in enumerate(lines) if not i % 10]
    return train, held_out


def train_with_tokenizers_library(path: Path, vocab_size: int, min_frequency: int, limit_alphabet: int) -> dict:
    """The reference: tokenizers' WordPieceTrainer with BERT's normaliser and pre-tokenizer."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                        limit_alphabet=limit_alphabet, special_tokens=list(SPECIAL_TOKENS),
                                        show_progress=False)
    tokenizer.train([str(path)], trainer)
    return tokenizer.get_vocab()


def tokens_per_word(vocab: dict[str, int], held_out: list[str]) -> tuple[float, float]:
    """Tokens per basic-tokenizer word on the held-out lines, and the share of [UNK] tokens."""
    tokenizer = BertTokenizer(vocab=vocab)
    basic = BasicTokenizer()
    words = sum(len(basic.tokenize(line)) for line in held_out)
    ids = [i for line in held_out for i in tokenizer.text_to_ids(line)]
    return len(ids) / words, ids.count(tokenizer.unk_token_id) / len(ids)


def compare_byte_level(corpus: Path, work: Path, held_out: list[str], vocab_size: int, min_frequency: int) -> None:
    """Byte-level BPE: tokenizers' ByteLevelBPETokenizer and bertkit on the same file; same merges, two times."""
    from tokenizers import ByteLevelBPETokenizer

    start = time.perf_counter()
    reference = ByteLevelBPETokenizer()
    reference.train([str(corpus)], vocab_size=vocab_size, min_frequency=min_frequency,
                    special_tokens=list(STYLES["roberta"]), show_progress=False)
    reference_seconds = time.perf_counter() - start
    (work / "reference-byte-bpe").mkdir()
    reference.save_model(str(work / "reference-byte-bpe"))
    start = time.perf_counter()
    ours = train_byte_bpe([corpus], work / "byte-bpe", vocab_size=vocab_size, min_frequency=min_frequency,
                          progress=False)
    seconds = time.perf_counter() - start
    same = ((work / "byte-bpe" / "merges.txt").read_bytes() == (work / "reference-byte-bpe" / "merges.txt").read_bytes()
            and ours.vocab == reference.get_vocab())
    basic = BasicTokenizer(do_lower_case=False)
    words = sum(len(basic.tokenize(line)) for line in held_out)
    tokens = sum(len(ours.text_to_ids(line)) for line in held_out)
    print(f"{'tokenizers ByteLevelBPE (1 th)':<30} vocab {len(reference.get_vocab()):>6}  {reference_seconds:7.1f} s")
    print(f"{'bertkit byte-bpe':<30} vocab {len(ours):>6}  {tokens / words:.4f} tokens/word  {seconds:7.1f} s   "
          f"identical vocab and merges: {same}, {seconds / reference_seconds:.1f}× time")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vocab-size", type=int, default=20000)
    parser.add_argument("--min-frequency", type=int, default=2, help="for tokenizers and bertkit bpe")
    parser.add_argument("--wordpiece-min-frequencies", default="10,2", help="bertkit wordpiece runs, one per value")
    parser.add_argument("--limit-alphabet", type=int, default=1000)
    parser.add_argument("--model-types", default="wordpiece,bpe,byte-bpe")
    args = parser.parse_args()

    train, held_out = load_corpus()
    with tempfile.TemporaryDirectory() as work:
        corpus = Path(work) / "train.txt"
        corpus.write_text("\n".join(train) + "\n", encoding="utf-8")
        size_mb = os.path.getsize(corpus) / 1e6
        print(f"corpus: {size_mb:.1f} MB, {len(train):,} training lines, {len(held_out):,} held-out lines; "
              f"vocab_size={args.vocab_size} min_frequency={args.min_frequency} limit_alphabet={args.limit_alphabet}")

        if "byte-bpe" in args.model_types.split(","):
            compare_byte_level(corpus, Path(work), held_out, args.vocab_size, args.min_frequency)
        if not {"wordpiece", "bpe"} & set(args.model_types.split(",")):
            return
        start = time.perf_counter()
        reference = train_with_tokenizers_library(corpus, args.vocab_size, args.min_frequency, args.limit_alphabet)
        reference_seconds = time.perf_counter() - start
        reference_tpw, reference_unk = tokens_per_word(reference, held_out)
        print(f"{'tokenizers WordPieceTrainer':<30} vocab {len(reference):>6}  {reference_tpw:.4f} tokens/word  "
              f"[UNK] {100 * reference_unk:.3f}%  {reference_seconds:7.1f} s")

        runs = [("bpe", args.min_frequency)] if "bpe" in args.model_types.split(",") else []
        if "wordpiece" in args.model_types.split(","):
            runs += [("wordpiece", int(k)) for k in args.wordpiece_min_frequencies.split(",")]
        for model_type, min_frequency in runs:
            start = time.perf_counter()
            ours = train_tokenizer([corpus], Path(work) / model_type, vocab_size=args.vocab_size,
                                   model_type=model_type, min_frequency=min_frequency,
                                   limit_alphabet=args.limit_alphabet, progress=False)
            seconds = time.perf_counter() - start
            tpw, unk = tokens_per_word(ours.vocab, held_out)
            name = f"bertkit {model_type} (min {min_frequency})"
            print(f"{name:<30} vocab {len(ours):>6}  {tpw:.4f} tokens/word  [UNK] {100 * unk:.3f}%  "
                  f"{seconds:7.1f} s   ratio {tpw / reference_tpw:.3f}× tokens/word, "
                  f"{seconds / reference_seconds:.1f}× time")


if __name__ == "__main__":
    main()
