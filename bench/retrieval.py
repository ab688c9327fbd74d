"""Retrieval on real text: Python docs section titles → their opening prose, with MiniLM pooled three ways, with and
without BERT-whitening, and after a short bi-encoder training on pages the test never sees.

    .venv/bin/python bench/retrieval.py [--threads 2] [--fit-texts 2000] [--train-steps 0 (= one epoch)]

Pairs come from bertkit.encoding.pairs (the Python 3.11 docs, fetched with apt-get download on first use); 30 % of
the pages (by a hash of their name) are the test set, the rest trains (whitening is fitted on their titles and
passages; the bi-encoder trains on 85 % of their pairs, with the other 15 % as its dev set). Each test title ranks
all test passages by cosine; recall@1, recall@10 and MRR@10 of its own passage are printed as a Markdown table.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from machine import cpu_name  # noqa: E402  (bench/ is the script's own folder)

from bertkit.encoding import SentenceEncoder, fit_whitening  # noqa: E402
from bertkit.encoding.pairs import python_docs_pairs, split_by_source  # noqa: E402
from bertkit.encoding.retrieval import retrieval_metrics  # noqa: E402
from bertkit.encoding.training import EmbeddingTrainConfig, train_embeddings  # noqa: E402


def row(name: str, metrics: dict[str, float], seconds: float) -> str:
    return (f"| {name} | {metrics['recall@1']:.3f} | {metrics['recall@10']:.3f} | {metrics['mrr@10']:.3f} "
            f"| {seconds:.0f} |")


def compare_precisions(precisions: list[str], queries: list[str], passages: list[str], model: str | None) -> None:
    """Retrieval metrics of the model (MiniLM by default) in each precision, and each as a share of fp32's."""
    print("| MiniLM precision | recall@1 | recall@10 | MRR@10 | seconds | share of fp32 (r@1 / r@10 / MRR) |")
    print("|---|---|---|---|---|---|")
    baseline = None
    for precision in ["fp32", *[p for p in precisions if p != "fp32"]]:
        encoder = SentenceEncoder.from_pretrained(model, precision=precision)
        started = time.perf_counter()
        q, p = (encoder.encode(texts, batch_size=32) for texts in (queries, passages))
        metrics = retrieval_metrics(q, p)
        baseline = baseline or metrics
        share = " / ".join(f"{metrics[k] / baseline[k]:.2%}" for k in ("recall@1", "recall@10", "mrr@10"))
        label = precision if encoder.precision == precision else f"{precision} (fell back to {encoder.precision})"
        print(f"{row(label, metrics, time.perf_counter() - started)} {share} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", default=None, help="a sentence-transformers or model folder of any supported "
                                                      "architecture (default: all-MiniLM-L6-v2)")
    parser.add_argument("--fit-texts", type=int, default=2000, help="training-page texts whitening is fitted on")
    parser.add_argument("--train-steps", type=int, default=0, help="bi-encoder steps (0: one epoch)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--only-training", action="store_true", help="skip the pooling / whitening rows")
    parser.add_argument("--precisions", default=None,
                        help="only compare these precisions (e.g. fp32,int8): each row's metrics and their share "
                             "of fp32's")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    pairs = python_docs_pairs()
    train, test = split_by_source(pairs)
    queries, passages = [p.query for p in test], [p.passage for p in test]
    fit_corpus = [t for p in train for t in (p.query, p.passage)][: args.fit_texts]
    print(f"{len(pairs)} pairs from {len({p.source for p in pairs})} pages: {len(train)} on training pages, "
          f"{len(test)} test queries over {len(test)} passages; whitening fitted on {len(fit_corpus)} texts")
    print(f"CPU: {cpu_name()}, {args.threads} threads, torch {torch.__version__}\n")
    if args.precisions:
        compare_precisions(args.precisions.split(","), queries, passages, args.model)
        return
    name = args.model or "MiniLM (all-MiniLM-L6-v2)"
    print(f"| {name} | recall@1 | recall@10 | MRR@10 | seconds |")
    print("|---|---|---|---|---|")

    encoder = SentenceEncoder.from_pretrained(args.model)
    for pooling in () if args.only_training else ("mean", "cls", "max"):
        started = time.perf_counter()
        encoder.pooling = pooling
        q, p = (encoder.encode(texts, normalize=False, batch_size=32) for texts in (queries, passages))
        label = f"{pooling} pooling" + (" (the model's own)" if pooling == "mean" else "")
        print(row(label, retrieval_metrics(q, p), time.perf_counter() - started), flush=True)
        started = time.perf_counter()
        fit_vectors = encoder.encode(fit_corpus, normalize=False, batch_size=32)
        encoding_seconds = time.perf_counter() - started
        for k in (128, 256):
            started = time.perf_counter()
            # the module encode() runs after pooling, applied here to the vectors already computed above
            whitening = fit_whitening(fit_vectors, k)
            with torch.no_grad():
                wq, wp = (whitening(torch.from_numpy(v)).numpy() for v in (q, p))
            seconds = encoding_seconds + time.perf_counter() - started
            print(row(f"{pooling} pooling + whitening k={k}", retrieval_metrics(wq, wp), seconds), flush=True)

    with tempfile.TemporaryDirectory() as out:
        config = EmbeddingTrainConfig(dataset="python_docs", loss="mnrl", batch_size=args.batch_size, epochs=1,
                                      **({"model": args.model} if args.model else {}),
                                      max_steps=args.train_steps or None, learning_rate=2e-5, output_dir=out,
                                      threads=args.threads, progress=False)
        started = time.perf_counter()
        result = train_embeddings(config)
        trained = SentenceEncoder.from_pretrained(Path(out) / "model")
        q, p = (trained.encode(texts, batch_size=32) for texts in (queries, passages))
        seconds = time.perf_counter() - started
        print(row(f"mean pooling after mnrl training ({result['steps']} steps of {args.batch_size} pairs, "
                  f"{result['sizes']['train']} training pairs)", retrieval_metrics(q, p), seconds), flush=True)
    print(f"\nbi-encoder dev MRR@10 at the end of training: {result['dev']['mrr@10']:.3f}" if result["dev"] else "")
    np.set_printoptions(precision=3)


if __name__ == "__main__":
    main()
