"""Faults: malformed ZMQ traffic, bad start-up input, and the TERMINATION request (ports freed, no orphans).

The traffic runs against a server of a tiny random checkpoint so that 10,000 texts take seconds; its answers are
compared with the same encoding in-process (ServingModel, itself checked against transformers).
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import zmq
from bert_serving.client import BertClient
from serving_process import child_pids, free_ports, port_is_free, running_server

from bertkit.serving import ServerSettings
from bertkit.serving.embedding import ServingModel

TIMEOUT_MS = 60_000
SENTENCES = ["First do it", "then do it right", "then do it better"]


@pytest.fixture(scope="module")
def tiny_local(tiny_mlm):
    model = ServingModel.from_settings(ServerSettings(tiny_mlm[0]).checked())
    return lambda items: model.encode(items)[0]


def test_malformed_traffic_is_dropped_and_the_server_keeps_serving(tiny_server, tiny_local):
    """3- and 5-frame messages, non-digit ids, bad JSON, non-lists are dropped; odd but valid requests answered."""
    context = zmq.Context()
    push, sub = context.socket(zmq.PUSH), context.socket(zmq.SUB)
    identity = b"raw-traffic-client-0000000000000000000"
    for s in (push, sub):
        s.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, identity)
    sub.setsockopt(zmq.RCVTIMEO, TIMEOUT_MS)
    sub.connect(f"tcp://127.0.0.1:{tiny_server.port_out}")
    push.connect(f"tcp://127.0.0.1:{tiny_server.port}")
    dropped = [
        [identity, b'["a"]', b"1"],
        [identity, b'["a"]', b"1", b"1", b"extra"],
        [identity, b'["a"]', b"x1", b"1"],
        [identity, b'["a"]', b"1", b"-1"],
        [identity, b'["unterminated', b"1", b"1"],
        [identity, b"\xff\xfe\xfd", b"1", b"1"],
        [identity, b'{"texts": ["a"]}', b"1", b"1"],
        [identity, b"42", b"1", b"1"],
        [identity, b"[1, 2, 3]", b"1", b"3"],
        [identity, b'[["ok"], 7]', b"1", b"2"],
    ]
    big = " ".join(["a long text"] * 90_000)  # ~1 MB
    pool = [f"text {i}" for i in range(100)]
    many = [pool[i % 100] for i in range(10_000)]
    answered = {b"101": [], b"102": ["", "   "], b"103": many, b"104": [big]}
    try:
        for frames in dropped:
            push.send_multipart(frames)
        for req_id, texts in answered.items():
            push.send_multipart([identity, json.dumps(texts).encode(), req_id, b"%d" % len(texts)])
        replies = {}
        while len(replies) < len(answered):
            frames = sub.recv_multipart()
            assert len(frames) == 4 and frames[0] == identity
            meta = json.loads(frames[1])
            replies[frames[3]] = np.frombuffer(frames[2], dtype=meta["dtype"]).reshape(meta["shape"])
    finally:
        context.destroy(linger=0)
    assert replies[b"101"].shape == (0, 32)
    np.testing.assert_allclose(replies[b"102"], tiny_local(["", ""]), atol=1e-5)  # [CLS] [SEP] alone
    assert replies[b"103"].shape == (10_000, 32)
    np.testing.assert_allclose(replies[b"103"], tiny_local(pool)[np.arange(10_000) % 100], atol=1e-5)
    np.testing.assert_allclose(replies[b"104"], tiny_local([big]), atol=1e-5)
    with BertClient(port=tiny_server.port, port_out=tiny_server.port_out, timeout=TIMEOUT_MS) as bc:
        np.testing.assert_allclose(bc.encode(SENTENCES), tiny_local(SENTENCES), atol=1e-5)  # still right
        assert bc.server_status["statistic"]["num_dropped_request"] == len(dropped)
    assert tiny_server.log.count("dropped a malformed request") == len(dropped)
    assert tiny_server.process.poll() is None
    print(f"\nmalformed traffic: {len(dropped)} malformed messages dropped, {len(answered)} odd requests answered "
          "(empty list, empty strings, 10,000 texts, a 1 MB text), then a normal request answered correctly")


def test_a_killed_worker_is_replaced_then_termination_frees_the_ports(tiny_mlm, tiny_local, tmp_path):
    with running_server(["-model_dir", str(tiny_mlm[0]), "-num_worker", "2", "--torch-threads", "1",
                         "-max_batch_size", "4"], tmp_path / "server.log") as server:
        children = child_pids(server.process.pid)  # two workers and multiprocessing's resource tracker
        workers = [pid for pid in children if "spawn_main" in Path(f"/proc/{pid}/cmdline").read_text()]
        assert len(workers) == 2
        texts = [f"sentence {i} for the surviving workers" for i in range(40)]
        with BertClient(port=server.port, port_out=server.port_out, timeout=TIMEOUT_MS) as bc:
            bc.encode(texts[:2])
            os.kill(workers[0], signal.SIGKILL)  # a crash: batches in flight go back to the queue
            for start in range(0, 40, 8):
                bc.encode(texts[start : start + 8], blocking=False)
            np.testing.assert_allclose(np.concatenate(bc.fetch_all()), tiny_local(texts), atol=1e-5)
            deadline = time.monotonic() + 60
            while "starting a new one" not in server.log and time.monotonic() < deadline:
                time.sleep(0.1)
            assert f"worker 0 died (exit code -{signal.SIGKILL})" in server.log
            np.testing.assert_allclose(bc.encode(texts), tiny_local(texts), atol=1e-5)
        children = set(children) | set(child_pids(server.process.pid))
        context = zmq.Context()
        push = context.socket(zmq.PUSH)
        push.connect(f"tcp://127.0.0.1:{server.port}")
        push.send_multipart([b"0", b"TERMINATION", b"0", b"0"])  # what `bert-serving-terminate` sends
        push.close(linger=1000)
        context.term()
        assert server.process.wait(30) == 0
    assert "TERMINATION request received" in server.log and "server stopped" in server.log
    assert port_is_free(server.port) and port_is_free(server.port_out)
    deadline = time.monotonic() + 10
    while [pid for pid in children if os.path.exists(f"/proc/{pid}")] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in children if os.path.exists(f"/proc/{pid}")]


def serve_error(*args: str) -> subprocess.CompletedProcess:
    port, port_out = free_ports(2)
    return subprocess.run([sys.executable, "-m", "bertkit", "serve", "-port", str(port), "-port_out", str(port_out),
                           *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args, message", [
    (["-model_dir", "/nonexistent/model"], "no such model folder: /nonexistent/model"),
    (["-pooling_strategy", "REDUCE_MEDIAN"], "unknown pooling_strategy 'REDUCE_MEDIAN'"),
    (["-pooling_strategy", "CLASSIFICATION"], "needs a model fine-tuned for single_label_classification"),
    (["-max_seq_len", "1000"], "max_seq_len=1000 must lie in [3, 512]"),
    (["--max-seq-len", "NONE", "--pooling-layer", "-7"], "pooling_layer [-7] must be encoder layers in [-6, 5]"),
])
def test_bad_start_up_input_is_one_clear_line(args, message):
    result = serve_error(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bertkit serve: error: ") and message in lines[0], result.stderr


@pytest.mark.parametrize("flag", ["-port", "-port_out", "--http-port"])
def test_a_port_in_use_is_one_clear_line(flag):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = serve_error(flag, str(port))  # a later flag wins over serve_error's own
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f" {port} on 127.0.0.1 is" in lines[0], result.stderr
