"""Load: HTTP clients (TEI ``/embed``) and real BertClients together against one `bertkit serve`, for a while.

    .venv/bin/python bench/serve_load.py [--seconds 60] [--http-clients 32] [--bert-clients 16] [--workers 1]

Each client sends requests of 1-8 texts drawn from a pool of Rotten Tomatoes reviews, back to back, and checks every
reply against the in-process encoding of the texts it sent (SentenceEncoder with the folder's settings for
``/embed``, bert-as-service's mean of layer -2 over 25 tokens for BertClient): no reply may be lost or mismatched.
Prints requests, texts/s, and p50 / p99 latency per protocol.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from encode import rotten_tomatoes_reviews  # noqa: E402
from serve import free_ports  # noqa: E402

from bertkit import SentenceEncoder  # noqa: E402


def start_server(args: argparse.Namespace, ports: list[int], log: Path):
    import subprocess

    command = [sys.executable, "-m", "bertkit", "serve", "-port", str(ports[0]), "-port_out", str(ports[1]),
               "--http-port", str(ports[2]), "-num_worker", str(args.workers), "--max-concurrent-requests", "1024"]
    server = subprocess.Popen(command, stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=ROOT)
    deadline = time.monotonic() + 300
    while "bertkit.serving: serving " not in log.read_text(errors="replace"):
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            sys.exit(f"the server did not start:\n{log.read_text()}")
        time.sleep(0.2)
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--http-clients", type=int, default=32)
    parser.add_argument("--bert-clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--pool", type=int, default=400)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from bert_serving.client import BertClient

    torch.set_num_threads(max(1, len(os.sched_getaffinity(0))))
    pool = rotten_tomatoes_reviews(args.pool)
    encoder = SentenceEncoder.from_pretrained()
    tei = dict(zip(pool, encoder.encode(pool, pooling="mean", normalize=True, max_length=256), strict=True))
    bas = dict(zip(pool, encoder.encode(pool, pooling="mean", layer=-2, max_length=25), strict=True))
    ports = free_ports(3)
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"bertkit-bench-load-{os.getpid()}.log"
    server = start_server(args, ports, log)
    stop_at = time.monotonic() + args.seconds
    tally = {kind: {"sent": 0, "answered": 0, "mismatched": 0, "texts": 0, "latency": []} for kind in ("http", "zmq")}
    lock = threading.Lock()

    def record(kind: str, texts: list[str], vectors: np.ndarray | None, expected: dict, seconds: float) -> None:
        good = vectors is not None and np.allclose(vectors, np.stack([expected[t] for t in texts]), atol=1e-4)
        with lock:
            entry = tally[kind]
            entry["sent"] += 1
            entry["answered"] += vectors is not None
            entry["mismatched"] += vectors is not None and not good
            entry["texts"] += len(texts)
            entry["latency"].append(seconds)

    def http_client(index: int) -> None:
        rng = random.Random(index)
        with httpx.Client(base_url=f"http://127.0.0.1:{ports[2]}", timeout=300) as http:
            while time.monotonic() < stop_at:
                texts = rng.sample(pool, rng.randint(1, 8))
                started = time.perf_counter()
                reply = http.post("/embed", json={"inputs": texts})
                vectors = np.array(reply.json(), dtype=np.float32) if reply.status_code == 200 else None
                record("http", texts, vectors, tei, time.perf_counter() - started)

    def bert_client(index: int) -> None:
        rng = random.Random(1000 + index)
        with BertClient(port=ports[0], port_out=ports[1], timeout=300_000, check_length=False) as bc:
            while time.monotonic() < stop_at:
                texts = rng.sample(pool, rng.randint(1, 8))
                started = time.perf_counter()
                record("zmq", texts, bc.encode(texts), bas, time.perf_counter() - started)

    threads = [threading.Thread(target=http_client, args=(i,)) for i in range(args.http_clients)]
    threads += [threading.Thread(target=bert_client, args=(i,)) for i in range(args.bert_clients)]
    started = time.perf_counter()
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        server.send_signal(signal.SIGTERM)
        code = server.wait(120)
    elapsed = time.perf_counter() - started
    print(f"{args.http_clients} HTTP clients (/embed) + {args.bert_clients} BertClients for {args.seconds:.0f} s, "
          f"MiniLM, {args.workers} worker(s), {len(os.sched_getaffinity(0))} cores; server exit code {code}")
    for kind, entry in tally.items():
        latency = np.array(entry["latency"]) * 1000
        print(f"  {kind}: {entry['sent']} requests, {entry['answered']} answered, {entry['mismatched']} mismatched, "
              f"{entry['texts'] / elapsed:.1f} texts/s, latency p50 {np.percentile(latency, 50):.0f} ms "
              f"p99 {np.percentile(latency, 99):.0f} ms")
    log.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
