"""Tokenizer parity report: bertkit vs Hugging Face's pure-Python and Rust BERT tokenizers on real corpora.

    .venv/bin/python bench/tokenizer_parity.py [--limit-lines N]

For the MiniLM (bert-base-uncased) vocab and the bert-base-chinese vocab, over the 11 MB Python docs and the Debian
handbook in its 26 languages: the lines where bertkit's tokens differ from transformers' ``BertTokenizerLegacy``
(the reference; expected: none), and the lines where the two Hugging Face tokenizers disagree with each other,
with examples. The test suite asserts the same on every line (tests/test_tokenizer_parity.py).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import transformers  # noqa: E402

from bertkit import corpora  # noqa: E402
from bertkit.assets import chinese_vocab_file, default_model_dir  # noqa: E402
from bertkit.tokenization import BertTokenizer  # noqa: E402


def rust_tokenizer(vocab_file: Path) -> transformers.PreTrainedTokenizerBase:
    """transformers' Rust-backed BertTokenizer for a bare vocab.txt (from_pretrained of a folder holding it)."""
    folder = Path(tempfile.mkdtemp(prefix="bertkit-vocab-"))
    (folder / "vocab.txt").write_bytes(vocab_file.read_bytes())
    (folder / "tokenizer_config.json").write_text('{"do_lower_case": true, "tokenizer_class": "BertTokenizer"}')
    return transformers.BertTokenizer.from_pretrained(folder)


def corpus_lines(limit: int | None) -> dict[str, list[str]]:
    """Non-blank lines of each corpus: the Python docs and each handbook language."""
    corpora_lines = {"python-docs": [line for line in corpora.python_docs_lines() if line.strip()]}
    for language in corpora.debian_handbook_languages():
        corpora_lines[f"handbook/{language}"] = list(corpora.debian_handbook_lines(language))
    return {name: lines[:limit] for name, lines in corpora_lines.items()}


def first_difference(a: list[str], b: list[str]) -> str:
    i = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    return f"{a[max(0, i - 2): i + 3]} vs {b[max(0, i - 2): i + 3]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit-lines", type=int, help="only the first N lines of each corpus")
    args = parser.parse_args()
    texts = corpus_lines(args.limit_lines)
    print(f"{sum(map(len, texts.values())):,} lines, {sum(len(t) for v in texts.values() for t in v):,} characters "
          f"in {len(texts)} corpora")
    for vocab_name, vocab in [("MiniLM uncased", default_model_dir() / "vocab.txt"),
                              ("bert-base-chinese", chinese_vocab_file())]:
        ours, legacy = BertTokenizer(vocab), transformers.BertTokenizerLegacy(vocab_file=str(vocab))
        rust = rust_tokenizer(vocab)
        ours_vs_legacy, rust_vs_legacy, causes = 0, 0, Counter()
        started = time.perf_counter()
        for name, lines in texts.items():
            rust_ids = rust(lines, add_special_tokens=False)["input_ids"]
            for line, rust_line in zip(lines, rust_ids, strict=True):
                reference = legacy.tokenize(line)
                mine = ours.tokenize(line)
                if mine != reference:
                    ours_vs_legacy += 1
                    print(f"  bertkit != legacy [{name}] {line[:80]!r}: {first_difference(mine, reference)}")
                theirs = legacy.convert_ids_to_tokens(rust_line)
                if theirs != reference:
                    rust_vs_legacy += 1
                    causes[name] += 1
                    if rust_vs_legacy <= 6:
                        print(f"  rust != legacy [{name}] {line[:80]!r}: {first_difference(theirs, reference)}")
        print(f"{vocab_name}: bertkit differs from legacy on {ours_vs_legacy} lines; Rust differs from legacy on "
              f"{rust_vs_legacy} lines {dict(causes)} ({time.perf_counter() - started:.0f}s)")


if __name__ == "__main__":
    main()
