"""Serving throughput: the real BertClient against `bertkit serve` vs in-process SentenceEncoder.encode, same run.

    .venv/bin/python bench/serve.py [--sentences 640] [--max-seq-len 128] [--threads 2] [--repeats 3]

Both sides compute the same thing (all-MiniLM-L6-v2, mean of layer -2 — bert-as-service's default — over at most
``--max-seq-len`` tokens, fp32, CPU) on the same Rotten Tomatoes reviews as bench/encode.py. The server runs one
worker with ``--threads`` torch threads, the in-process encoder the same number. Passes alternate between the two
so that load from other processes on a shared machine hits both alike; the median of ``--repeats`` passes counts.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from encode import rotten_tomatoes_reviews  # noqa: E402

from bertkit import SentenceEncoder  # noqa: E402


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def start_server(args: argparse.Namespace, port: int, port_out: int, log: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "bertkit", "serve", "-port", str(port), "-port_out", str(port_out),
               "-max_seq_len", str(args.max_seq_len), "-num_worker", "1", "--torch-threads", str(args.threads)]
    server = subprocess.Popen(command, stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=ROOT)
    deadline = time.monotonic() + 300
    while "bertkit.serving: serving " not in log.read_text(errors="replace"):
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            sys.exit(f"the server did not start:\n{log.read_text()}")
        time.sleep(0.2)
    return server


def concurrent_rate(make_client, texts: list[str], clients: int) -> tuple[float, np.ndarray]:
    """Sentences/s when ``clients`` clients each encode all ``texts`` (one request each) at the same time."""
    bcs = [make_client() for _ in range(clients)]
    results: list = [None] * clients
    barrier = threading.Barrier(clients + 1)

    def work(i: int) -> None:
        barrier.wait()
        results[i] = bcs[i].encode(texts)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    for bc in bcs:
        bc.close()
    return clients * len(texts) / elapsed, results[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sentences", type=int, default=640)
    parser.add_argument("--max-seq-len", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--latency-requests", type=int, default=200)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(args.threads)
    from bert_serving.client import BertClient

    texts = rotten_tomatoes_reviews(args.sentences)
    encoder = SentenceEncoder.from_pretrained()
    tokens = [min(len(encoder.tokenizer.encode(t)), args.max_seq_len) for t in texts]
    print(f"{len(texts)} reviews, {np.mean(tokens):.1f} tokens on average (max_seq_len {args.max_seq_len}), "
          f"{args.threads} torch threads on each side, fp32, torch {torch.__version__}")

    def in_process(batch: list[str]) -> np.ndarray:
        return encoder.encode(batch, pooling="mean", layer=-2, max_length=args.max_seq_len, batch_size=32)

    port, port_out = free_ports(2)
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"bertkit-bench-serve-{os.getpid()}.log"
    server = start_server(args, port, port_out, log)
    try:
        def make_client() -> BertClient:
            return BertClient(port=port, port_out=port_out, check_length=False, timeout=600_000)

        in_process(texts[:64])
        concurrent_rate(make_client, texts[:64], 1)  # warm-up
        local_rates, one_rates, four_rates = [], [], []
        for _ in range(args.repeats):
            start = time.perf_counter()
            reference = in_process(texts)
            local_rates.append(len(texts) / (time.perf_counter() - start))
            rate, served = concurrent_rate(make_client, texts, 1)
            one_rates.append(rate)
            four_rates.append(concurrent_rate(make_client, texts, 4)[0])
        diff = float(np.abs(served - reference).max())

        latencies, local_latencies = [], []
        with make_client() as bc:
            for text in texts[: args.latency_requests]:
                start = time.perf_counter()
                bc.encode([text])
                latencies.append(time.perf_counter() - start)
                start = time.perf_counter()
                in_process([text])
                local_latencies.append(time.perf_counter() - start)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)
        log.unlink(missing_ok=True)

    local_rate, one, four = (statistics.median(r) for r in (local_rates, one_rates, four_rates))
    print(f"{'in-process SentenceEncoder.encode':<44}{local_rate:>9.1f} sentences/s")
    print(f"{'BertClient -> bertkit serve, 1 client':<44}{one:>9.1f} sentences/s  ({one / local_rate:.2f}x)")
    print(f"{'BertClient -> bertkit serve, 4 clients':<44}{four:>9.1f} sentences/s  ({four / local_rate:.2f}x)")
    print("ratio goal: >= 0.9x of in-process")

    def pct(values: list[float], q: float) -> float:
        return 1000 * float(np.percentile(values, q))

    print(f"single-sentence requests ({len(latencies)}, one client, sequential): p50 {pct(latencies, 50):.1f} ms, "
          f"p99 {pct(latencies, 99):.1f} ms (in-process encode of one sentence: p50 {pct(local_latencies, 50):.1f} "
          f"ms, p99 {pct(local_latencies, 99):.1f} ms)")
    print(f"parity: max abs diff server vs in-process {diff:.1e}")


if __name__ == "__main__":
    main()
