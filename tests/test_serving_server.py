"""`bertkit serve` in a subprocess, driven by the real, unmodified bert-serving-client 1.10.0 and raw ZMQ traffic."""

import json
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import torch
import zmq
from bert_serving.client import BertClient, ConcurrentBertClient
from serving_process import free_ports, port_is_free, running_server

from bertkit import SentenceEncoder
from bertkit.serving import ServerSettings
from bertkit.serving.embedding import ServingModel

SENTENCES = ["First do it", "then do it right", "then do it better"]
TIMEOUT_MS = 60_000


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Two workers (one torch thread each), batches of at most 64 texts, tokens shown, HTTP on."""
    log = tmp_path_factory.mktemp("serve") / "server.log"
    with running_server(["-num_worker", "2", "-max_batch_size", "64", "-show_tokens_to_client"], log, http=True) as s:
        yield s


@pytest.fixture(scope="module")
def local(minilm_dir):
    """The same encoding in-process: SentenceEncoder with the server's defaults (mean of layer -2, 25 tokens)."""
    encoder = SentenceEncoder.from_pretrained(minilm_dir)
    return lambda texts: encoder.encode(texts, pooling="mean", layer=-2, max_length=25, allow_empty=True)


@pytest.fixture(scope="module")
def local_serving(minilm_dir):
    """In-process ServingModel (checked against transformers in test_serving_encoding.py) for pairs and tokens."""
    return ServingModel.from_settings(ServerSettings(minilm_dir).checked())


def client(server, **kwargs) -> BertClient:
    return BertClient(port=server.port, port_out=server.port_out, timeout=TIMEOUT_MS, **kwargs)


def test_real_client_gets_the_embeddings(server, local):
    with client(server) as bc:
        vectors = bc.encode(SENTENCES)
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(vectors, local(SENTENCES), atol=1e-5)


def test_config_and_status(server, capsys):
    with client(server, show_server_config=True) as bc:
        assert "server_version" in capsys.readouterr().out  # the client printed the config it read
        config = bc.server_config
        bc.encode(SENTENCES)
        status = bc.server_status
    assert config["server_version"] == "1.10.0" and config["max_seq_len"] == 25
    assert config["pooling_strategy"] == 2 and config["pooling_layer"] == [-2] and config["num_worker"] == 2
    assert config["show_tokens_to_client"] is True and config["client"] == bc.identity.decode()
    assert status["statistic"]["num_data_request"] >= 1 and status["statistic"]["num_total_seq"] >= 3


def test_tokenized_input_pairs_and_tokens(server, local_serving):
    items = [["hello", "world", "zzzqqq"], ["first", "part", "|||", "second", "part"]]
    with client(server) as bc:
        vectors, tokens = bc.encode(items, is_tokenized=True, show_tokens=True)
        pair_vectors, pair_tokens = bc.encode(["the question ||| the answer"], show_tokens=True)
    expected, expected_tokens = local_serving.encode(items)
    np.testing.assert_allclose(vectors, expected, atol=1e-5)
    assert tokens == expected_tokens and tokens[0][3] == "[UNK]"
    assert pair_tokens == [["[CLS]", "the", "question", "[SEP]", "the", "answer", "[SEP]"]]
    np.testing.assert_allclose(pair_vectors, local_serving.encode(["the question ||| the answer"])[0], atol=1e-5)


def test_non_blocking_requests_and_a_split_request(server, local):
    texts = [f"sentence number {i} of the batch" for i in range(150)]  # > max_batch_size 64: split in three
    with client(server) as bc:
        for start in range(0, 150, 50):
            bc.encode(texts[start : start + 50], blocking=False)
        parts = bc.fetch_all()
        bc.encode(texts, blocking=False)
        bc.encode(SENTENCES, blocking=False)
        whole, small = bc.fetch_all(sort=True)
    expected = local(texts)
    assert [p.shape for p in parts] == [(50, 384)] * 3
    np.testing.assert_allclose(np.concatenate(parts), expected, atol=1e-5)
    np.testing.assert_allclose(whole, expected, atol=1e-5)
    np.testing.assert_allclose(small, local(SENTENCES), atol=1e-5)


def test_concurrent_bert_client(server, local):
    bc = ConcurrentBertClient(max_concurrency=4, port=server.port, port_out=server.port_out, timeout=TIMEOUT_MS)
    results, errors = {}, []

    def work(i):
        try:
            for j in range(5):
                texts = [f"thread {i} request {j}", "then do it right"]
                results[i, j] = (texts, bc.encode(texts=texts))
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    bc.close()
    assert not errors and len(results) == 20
    for texts, vectors in results.values():
        np.testing.assert_allclose(vectors, local(texts), atol=1e-5)


def test_malformed_traffic_is_dropped_and_the_server_keeps_serving(server, local):
    """3- and 5-frame messages, non-digit ids, bad JSON, non-lists are dropped; odd but valid requests answered."""
    context = zmq.Context()
    push = context.socket(zmq.PUSH)
    sub = context.socket(zmq.SUB)
    identity = b"raw-traffic-client-0000000000000000000"
    for s in (push, sub):
        s.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, identity)
    sub.setsockopt(zmq.RCVTIMEO, TIMEOUT_MS)
    sub.connect(f"tcp://127.0.0.1:{server.port_out}")
    push.connect(f"tcp://127.0.0.1:{server.port}")
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
        [],
    ]
    big = " ".join(["a long text"] * 90_000)  # ~1 MB
    pool = [f"text {i}" for i in range(100)]
    many = [pool[i % 100] for i in range(10_000)]
    answered = {b"101": [], b"102": ["", "   "], b"103": many, b"104": [big]}
    try:
        for frames in dropped:
            if frames:
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
    assert replies[b"101"].shape == (0, 384)
    np.testing.assert_allclose(replies[b"102"], local(["", ""]), atol=1e-5)  # [CLS] [SEP] alone
    assert replies[b"103"].shape == (10_000, 384)
    np.testing.assert_allclose(replies[b"103"], local(pool)[np.arange(10_000) % 100], atol=1e-5)
    np.testing.assert_allclose(replies[b"104"], local([big]), atol=1e-5)
    with client(server) as bc:  # a normal request still gets the right answer
        np.testing.assert_allclose(bc.encode(SENTENCES), local(SENTENCES), atol=1e-5)
        assert bc.server_status["statistic"]["num_dropped_request"] >= len(dropped) - 1
    assert server.log.count("dropped a malformed request") >= len(dropped) - 1
    assert server.process.poll() is None


def serve_error(*args: str) -> subprocess.CompletedProcess:
    port, port_out = free_ports(2)
    return subprocess.run([sys.executable, "-m", "bertkit", "serve", "-port", str(port), "-port_out", str(port_out),
                           *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args, message", [
    (["-model_dir", "/nonexistent/model"], "no such model folder: /nonexistent/model"),
    (["-pooling_strategy", "REDUCE_MEDIAN"], "unknown pooling_strategy 'REDUCE_MEDIAN'"),
    (["-pooling_strategy", "CLASSIFICATION"], "the fine-tuning issue has not landed"),
    (["-max_seq_len", "1000"], "max_seq_len=1000 must lie in [3, 512]"),
    (["--max-seq-len", "NONE", "--pooling-layer", "-7"], "pooling_layer [-7] must be encoder layers in [-6, 5]"),
])
def test_bad_start_up_input_is_one_clear_line(args, message):
    result = serve_error(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bertkit serve: error: ") and message in lines[0], result.stderr


def test_a_port_in_use_is_one_clear_line():
    busy = __import__("socket").socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        port = busy.getsockname()[1]
        result = serve_error("-port", str(port))  # the later -port wins over serve_error's own
        started = time.monotonic()
        while not port_is_free(free_ports(1)[0]) and time.monotonic() - started < 1:
            pass
    finally:
        busy.close()
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [f"bertkit serve: error: port {port} on 127.0.0.1 is already in use (another server?)"]
