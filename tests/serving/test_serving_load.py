"""Load: 16 real BertClients × 200 requests of 1–8 texts each against one server; then SIGTERM stops it cleanly.

Every reply must arrive and equal the in-process encoding of the texts that client sent (SentenceEncoder, mean of
layer -2 at the server's max_seq_len): no loss, and no mix-up between clients batched together. The server runs a
tiny random checkpoint (MiniLM's vocabulary, hidden size 32), so the test measures the serving machinery rather
than the shared CPU's BERT speed; bench/serve.py measures MiniLM throughput.
"""

import os
import random
import signal
import threading
import time
from pathlib import Path

import numpy as np
from bert_serving.client import BertClient
from serving_process import ServerProcess, child_pids, port_is_free

from bertkit import SentenceEncoder

CLIENTS, REQUESTS, MAX_SEQ_LEN = 16, 200, 16
WORDS = ("the a cat dog sat ran on under mat rug quickly slowly red blue big small house garden "
         "today yesterday bright dark river stone").split()


def sentence_pool(count: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return sorted({" ".join(rng.choices(WORDS, k=rng.randint(2, 9))) for _ in range(count * 2)})[:count]


def run_client(server, index: int, pool: list[str], expected: dict, tally: dict, lock: threading.Lock) -> None:
    rng = random.Random(index)
    sent = answered = mismatched = 0
    with BertClient(port=server.port, port_out=server.port_out, timeout=120_000, check_length=False) as bc:
        request = 0
        while request < REQUESTS:
            if request % 20 == 19:  # now and then, four requests in flight at once (blocking=False + fetch_all)
                batches = [rng.sample(pool, rng.randint(1, 8)) for _ in range(min(4, REQUESTS - request))]
                for texts in batches:
                    bc.encode(texts, blocking=False)
                replies = bc.fetch_all(sort=True)
            else:
                batches = [rng.sample(pool, rng.randint(1, 8))]
                replies = [bc.encode(batches[0])]
            for texts, vectors in zip(batches, replies or [], strict=False):
                answered += 1
                if vectors.shape != (len(texts), 32) or not np.allclose(
                        vectors, np.stack([expected[t] for t in texts]), atol=1e-5):
                    mismatched += 1
            sent += len(batches)
            request += len(batches)
    with lock:
        for key, value in (("sent", sent), ("answered", answered), ("mismatched", mismatched)):
            tally[key] += value


def test_sixteen_clients_get_their_own_answers_then_sigterm_stops_cleanly(tmp_path, tiny_mlm):
    pool = sentence_pool(300)
    local = SentenceEncoder.from_pretrained(tiny_mlm[0]).encode(pool, pooling="mean", layer=-2, max_length=MAX_SEQ_LEN)
    expected = dict(zip(pool, local, strict=True))
    server = ServerProcess(["-model_dir", str(tiny_mlm[0]), "-num_worker", "2", "--torch-threads", "1",
                            "-max_seq_len", str(MAX_SEQ_LEN)], Path(tmp_path) / "server.log")
    try:
        server.wait_until_serving()
        tally, lock = {"sent": 0, "answered": 0, "mismatched": 0}, threading.Lock()
        threads = [threading.Thread(target=run_client, args=(server, i, pool, expected, tally, lock))
                   for i in range(CLIENTS)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        elapsed = time.perf_counter() - started
        print(f"\nload: {CLIENTS} clients sent {tally['sent']} requests, {tally['answered']} answered, "
              f"{tally['mismatched']} mismatched, in {elapsed:.1f} s")
        assert not any(t.is_alive() for t in threads)
        assert tally == {"sent": CLIENTS * REQUESTS, "answered": CLIENTS * REQUESTS, "mismatched": 0}

        children = child_pids(server.process.pid)
        assert server.stop(signal.SIGTERM) == 0  # SIGTERM: a clean shutdown, exit code 0
    finally:
        server.stop(signal.SIGKILL)
    assert "server stopped" in server.log
    assert port_is_free(server.port) and port_is_free(server.port_out)
    deadline = time.monotonic() + 10
    while [pid for pid in children if os.path.exists(f"/proc/{pid}")] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in children if os.path.exists(f"/proc/{pid}")]
