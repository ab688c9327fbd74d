"""HTTP and ZMQ clients together for a few seconds (bench/serve_load.py runs it for a minute): every reply arrives
and is the client's own; a worker killed under HTTP load is replaced, its requests answered or failed cleanly."""

import os
import random
import signal
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch
import transformers
from bert_serving.client import BertClient
from serving_process import child_pids, running_server

POOL = [f"sentence number {i} about a cat" if i % 2 else f"a dog ran {i} times" for i in range(60)]


@pytest.fixture(scope="module")
def oracle(tiny_mlm, minilm_dir):
    """Mean of the last layer, unit length (TEI route) and mean of layer -2 over 25 tokens (bert-as-service)."""
    tokenizer = transformers.BertTokenizer.from_pretrained(minilm_dir)
    model = transformers.BertModel.from_pretrained(tiny_mlm[0]).eval()
    batch = tokenizer(POOL, padding=True, return_tensors="pt")
    short = tokenizer(POOL, padding=True, truncation=True, max_length=25, return_tensors="pt")
    with torch.no_grad():
        last = model(**batch).last_hidden_state
        second = model(**short, output_hidden_states=True).hidden_states[-2]

    def mean(hidden, mask):
        mask = mask.unsqueeze(-1).float()
        return ((hidden * mask).sum(1) / mask.sum(1)).numpy()

    tei = mean(last, batch["attention_mask"])
    tei /= np.linalg.norm(tei, axis=1, keepdims=True)
    return dict(zip(POOL, tei, strict=True)), dict(zip(POOL, mean(second, short["attention_mask"]), strict=True))


def test_http_and_bert_clients_together_get_their_own_answers(tiny_mlm, tmp_path, oracle):
    tei, bas = oracle
    tally, lock = {"sent": 0, "answered": 0, "mismatched": 0}, threading.Lock()
    args = ["-model_dir", str(tiny_mlm[0]), "-num_worker", "2", "--torch-threads", "1", "-max_batch_size", "16"]
    with running_server(args, tmp_path / "server.log", http=True) as server:
        stop_at = time.monotonic() + 3

        def record(texts, vectors, expected) -> None:
            good = vectors is not None and np.allclose(vectors, np.stack([expected[t] for t in texts]), atol=1e-5)
            with lock:
                tally["sent"] += 1
                tally["answered"] += vectors is not None
                tally["mismatched"] += vectors is not None and not good

        def http_client(index: int) -> None:
            rng = random.Random(index)
            with httpx.Client(base_url=server.http_url, timeout=60) as http:
                while time.monotonic() < stop_at:
                    texts = rng.sample(POOL, rng.randint(1, 8))
                    reply = http.post("/embed", json={"inputs": texts})
                    record(texts, np.array(reply.json()) if reply.status_code == 200 else None, tei)

        def bert_client(index: int) -> None:
            rng = random.Random(100 + index)
            with BertClient(port=server.port, port_out=server.port_out, timeout=60_000) as bc:
                while time.monotonic() < stop_at:
                    texts = rng.sample(POOL, rng.randint(1, 8))
                    record(texts, bc.encode(texts), bas)

        threads = [threading.Thread(target=http_client, args=(i,)) for i in range(8)]
        threads += [threading.Thread(target=bert_client, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    print(f"\nmixed load: 8 HTTP + 4 BertClients for 3 s: {tally}")
    assert tally["sent"] > 24 and tally["answered"] == tally["sent"] and tally["mismatched"] == 0


def test_a_worker_killed_under_http_load_is_replaced(tiny_mlm, tmp_path, oracle):
    tei, _ = oracle
    args = ["-model_dir", str(tiny_mlm[0]), "-num_worker", "2", "--torch-threads", "1", "-max_batch_size", "4"]
    with running_server(args, tmp_path / "server.log", http=True) as server:
        workers = [pid for pid in child_pids(server.process.pid)
                   if "spawn_main" in Path(f"/proc/{pid}/cmdline").read_text()]
        replies = []

        def post(texts) -> None:
            replies.append((texts, httpx.post(server.http_url + "/embed", json={"inputs": texts}, timeout=60)))

        threads = [threading.Thread(target=post, args=(POOL[i : i + 8],)) for i in range(0, 48, 8)]
        for t in threads:
            t.start()
        os.kill(workers[0], signal.SIGKILL)
        for t in threads:
            t.join(60)
        assert len(replies) == 6
        for texts, reply in replies:  # requeued and answered, or refused with TEI's backend error
            assert reply.status_code in (200, 424), reply.text
            if reply.status_code == 200:
                np.testing.assert_allclose(reply.json(), np.stack([tei[t] for t in texts]), atol=1e-5)
            else:
                assert reply.json()["error_type"] == "backend"
        deadline = time.monotonic() + 60
        while "starting a new one" not in server.log and time.monotonic() < deadline:
            time.sleep(0.1)
        after = httpx.post(server.http_url + "/embed", json={"inputs": POOL[:8]}, timeout=60)
        assert after.status_code == 200
        np.testing.assert_allclose(after.json(), np.stack([tei[t] for t in POOL[:8]]), atol=1e-5)
    assert f"worker 0 died (exit code -{signal.SIGKILL})" in server.log or "worker 1 died" in server.log
