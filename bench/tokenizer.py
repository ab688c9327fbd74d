"""Tokenizer throughput on the 11 MB Python docs, one thread, one call per line: bertkit vs Hugging Face.

    .venv/bin/python bench/tokenizer.py [--lines N] [--repeats 3] [--vocab FOLDER]
    .venv/bin/python bench/tokenizer.py --unigram [--lines N]     # the SentencePiece Unigram rows instead

Measured in the same run: bertkit's pure-Python ``BertTokenizer.encode``, transformers' pure-Python
``BertTokenizerLegacy``, transformers' Rust-backed ``BertTokenizer`` (one call per line), and — for context — the
Rust ``tokenizers`` library called directly on the whole corpus in batches. Tokens are counted as ids produced
(no special tokens). bertkit starts every run with a fresh tokenizer, so its word cache starts cold.

``--unigram``: a Unigram model (4,000 pieces, nmt_nfkc) that SentencePiece's trainer makes from the first 20,000
lines, then bertkit's pure-Python ``SentencePieceProcessor`` cold (a fresh one) and warm (its word cache full)
against the ``sentencepiece`` library (C++) and the Rust ``tokenizers`` Unigram transformers builds from the same
file (``T5Tokenizer``), one call per line. The ids are checked equal to the library's first.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ["RAYON_NUM_THREADS"] = "1"  # the Rust tokenizer's thread pool: one thread, like the others
os.environ["TOKENIZERS_PARALLELISM"] = "false"
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import transformers  # noqa: E402

from bertkit import corpora  # noqa: E402
from bertkit.assets import default_model_dir  # noqa: E402
from bertkit.tokenization import BertTokenizer  # noqa: E402


def rate(run: Callable[[], int], repeats: int) -> tuple[float, float]:
    """Median tokens/s over ``repeats`` runs of ``run`` (which returns the number of tokens it produced)."""
    speeds, seconds = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        tokens = run()
        seconds.append(time.perf_counter() - start)
        speeds.append(tokens / seconds[-1])
    return statistics.median(speeds), statistics.median(seconds)


def unigram_rows(lines: list[str], repeats: int) -> None:
    """The Unigram rows: bertkit cold / warm vs sentencepiece (C++) and tokenizers (Rust), on one trained model."""
    import shutil
    import tempfile

    import sentencepiece

    from bertkit.tokenization.sentencepiece import SentencePieceProcessor

    folder = Path(tempfile.mkdtemp(prefix="bench-unigram-"))
    try:
        (folder / "train.txt").write_text("\n".join(lines[:20000]) + "\n", encoding="utf-8")
        sentencepiece.SentencePieceTrainer.train(input=str(folder / "train.txt"), model_prefix=str(folder / "spiece"),
                                                 vocab_size=4000, hard_vocab_limit=False, minloglevel=2, num_threads=1)
        model_file = str(folder / "spiece.model")
        library = sentencepiece.SentencePieceProcessor(model_file=model_file)
        rust = transformers.T5Tokenizer.from_pretrained(folder)
        warm = SentencePieceProcessor(model_file)
        sample = lines[:: max(1, len(lines) // 5000)]
        assert all(warm.encode(x) == library.encode(x) for x in sample)

        def bertkit_cold() -> int:
            fresh = SentencePieceProcessor(model_file)
            return sum(len(fresh.encode(line)) for line in lines)

        results = {
            "bertkit Unigram, cold (pure Python)": rate(bertkit_cold, repeats),
            "bertkit Unigram, warm (pure Python)": rate(lambda: sum(len(warm.encode(x)) for x in lines), repeats),
            "sentencepiece (C++)": rate(lambda: sum(len(library.encode(x)) for x in lines), repeats),
            "HF Rust tokenizer via transformers": rate(
                lambda: sum(len(rust.encode(x, add_special_tokens=False)) for x in lines), repeats),
        }
    finally:
        shutil.rmtree(folder)
    print(f"{'Unigram (1 thread, one call per line)':<40}{'tokens/s':>12}{'seconds':>10}")
    for name, (speed, seconds) in results.items():
        print(f"{name:<40}{speed:>12,.0f}{seconds:>10.2f}")
    for state in ("cold", "warm"):
        speed = results[f"bertkit Unigram, {state} (pure Python)"][0]
        for reference in ("sentencepiece (C++)", "HF Rust tokenizer via transformers"):
            goal = " (goal >= 1.0)" if state == "cold" and reference.startswith("HF Rust") else ""
            print(f"bertkit {state} / {reference}: {speed / results[reference][0]:.3f}x{goal}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, help="only the first N lines")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--vocab", type=Path, default=default_model_dir(), help="a folder with vocab.txt")
    parser.add_argument("--unigram", action="store_true", help="the SentencePiece Unigram rows instead")
    args = parser.parse_args()

    lines = list(corpora.python_docs_lines())[: args.lines]
    if args.unigram:
        print(f"Python 3.11 docs: {len(lines):,} lines, {sum(map(len, lines)) / 1e6:.1f}M characters")
        unigram_rows(lines, args.repeats)
        return
    print(f"Python 3.11 docs: {len(lines):,} lines, {sum(map(len, lines)) / 1e6:.1f}M characters; vocab {args.vocab}")
    legacy = transformers.BertTokenizerLegacy.from_pretrained(args.vocab)
    rust = transformers.BertTokenizer.from_pretrained(args.vocab)

    def bertkit_run() -> int:
        tokenizer = BertTokenizer.from_pretrained(args.vocab)  # cold cache every run
        return sum(len(tokenizer.encode(line, add_special_tokens=False)) for line in lines)

    def legacy_run() -> int:
        return sum(len(legacy.encode(line, add_special_tokens=False)) for line in lines)

    def rust_run() -> int:
        return sum(len(rust.encode(line, add_special_tokens=False)) for line in lines)

    def rust_batch_run() -> int:
        encodings = rust.backend_tokenizer.encode_batch(lines, add_special_tokens=False)
        return sum(len(e.ids) for e in encodings)

    # Same ids, or the speeds would not be comparable.
    ours = BertTokenizer.from_pretrained(args.vocab)
    sample = lines[:: max(1, len(lines) // 20000)]
    assert all(ours.encode(x, add_special_tokens=False) == legacy.encode(x, add_special_tokens=False) for x in sample)

    results = {
        "bertkit BertTokenizer (pure Python)": rate(bertkit_run, args.repeats),
        "HF Rust tokenizer via transformers": rate(rust_run, args.repeats),
        "HF Rust tokenizers, batched, direct": rate(rust_batch_run, args.repeats),
        "HF BertTokenizerLegacy (pure Python)": rate(legacy_run, 1),  # ~1 minute a run
    }
    print(f"{'tokenizer (1 thread, one call per line)':<40}{'tokens/s':>12}{'seconds':>10}")
    for name, (speed, seconds) in results.items():
        print(f"{name:<40}{speed:>12,.0f}{seconds:>10.2f}")
    ours_speed = results["bertkit BertTokenizer (pure Python)"][0]
    print(f"bertkit / Rust via transformers: {ours_speed / results['HF Rust tokenizer via transformers'][0]:.2f}x "
          "(goal >= 1.0)")
    print(f"bertkit / HF pure Python:        {ours_speed / results['HF BertTokenizerLegacy (pure Python)'][0]:.2f}x "
          "(goal >= 3.0)")
    print(f"bertkit / Rust batched direct:   {ours_speed / results['HF Rust tokenizers, batched, direct'][0]:.2f}x")


if __name__ == "__main__":
    main()
