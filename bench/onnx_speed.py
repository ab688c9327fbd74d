"""ONNX Runtime vs bertkit on the exported MiniLM: same sentences, same threads, same vectors.

    .venv/bin/python bench/onnx_speed.py [--sentences 256] [--threads 2] [--repeats 3] [--batch-size 32]

Exports all-MiniLM-L6-v2 with ``bertkit export onnx`` (encoder + mean pooling + normalisation in the graph),
then embeds the Rotten Tomatoes reviews of bench/encode.py with ``SentenceEncoder.encode`` and with an ONNX Runtime
session fed the same padded batches (sorted by length, as the encoder batches). Passes alternate; the median of
``--repeats`` counts. Prints sentences/s of each, their ratio and the largest difference between the vectors.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from encode import rotten_tomatoes_reviews  # noqa: E402

from bertkit import SentenceEncoder  # noqa: E402
from bertkit.assets import default_model_dir  # noqa: E402
from bertkit.export.onnx import export_onnx  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sentences", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    import onnxruntime  # test / bench dependency only

    torch.set_num_threads(args.threads)
    texts = rotten_tomatoes_reviews(args.sentences)
    encoder = SentenceEncoder.from_pretrained()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        path = export_onnx(default_model_dir(), Path(tmp) / "minilm-onnx")
        print(f"export: {time.perf_counter() - started:.1f} s, {path.stat().st_size / 1e6:.1f} MB")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = args.threads, 1
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    max_length = encoder.max_length
    order = sorted(range(len(texts)), key=lambda i: -len(encoder.tokenizer.encode(texts[i], truncation=True,
                                                                                   max_length=max_length)))

    def with_onnx() -> np.ndarray:
        out = np.empty((len(texts), encoder.dimension), dtype=np.float32)
        for start in range(0, len(order), args.batch_size):
            chosen = order[start : start + args.batch_size]
            batch = encoder.tokenizer([texts[i] for i in chosen], padding=True, truncation=True,
                                      max_length=max_length, return_tensors="np")
            feeds = {k: np.asarray(batch[k], dtype=np.int64) for k in ("input_ids", "attention_mask",
                                                                     "token_type_ids")}
            out[chosen] = session.run(["sentence_embedding"], feeds)[0]
        return out

    def with_bertkit() -> np.ndarray:
        return encoder.encode(texts, pooling="mean", normalize=True, batch_size=args.batch_size)

    times = {"onnxruntime": [], "bertkit": []}
    results = {}
    for _ in range(args.repeats):
        for name, run in (("bertkit", with_bertkit), ("onnxruntime", with_onnx)):
            started = time.perf_counter()
            results[name] = run()
            times[name].append(time.perf_counter() - started)
    rates = {name: len(texts) / statistics.median(t) for name, t in times.items()}
    diff = float(np.abs(results["onnxruntime"] - results["bertkit"]).max())
    print(f"{len(texts)} reviews, {args.threads} thread(s), batches of {args.batch_size}, fp32 CPU: "
          f"bertkit {rates['bertkit']:.1f} sentences/s, ONNX Runtime {onnxruntime.__version__} "
          f"{rates['onnxruntime']:.1f} sentences/s = {rates['onnxruntime'] / rates['bertkit']:.2f}x; "
          f"max abs diff {diff:.1e}")


if __name__ == "__main__":
    main()
