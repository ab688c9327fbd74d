"""Operations: API keys, payload and batch limits, back-pressure (429 + Retry-After), bad input of every kind,
slow partial requests, the access log, and the drain on SIGTERM: clear 4xx JSON errors, nothing lost, the server
keeps serving. The server runs the tiny random checkpoint; its vectors are checked against transformers."""

import asyncio
import json
import signal
import socket
import threading
import time

import httpx
import numpy as np
import pytest
import torch
import transformers
from serving_process import running_server

KEY = "s3cret-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
TEXTS = [f"the cat sat on mat number {i}" for i in range(8)]


@pytest.fixture(scope="module")
def guarded(tiny_mlm, tmp_path_factory):
    log = tmp_path_factory.mktemp("guarded") / "server.log"
    args = ["-model_dir", str(tiny_mlm[0]), "--torch-threads", "1", "--api-key", KEY, "--payload-limit", "20000",
            "--max-client-batch-size", "8", "--max-concurrent-requests", "2"]
    with running_server(args, log, http=True) as server:
        yield server


@pytest.fixture(scope="module")
def expected(tiny_mlm, minilm_dir):
    """Mean of the last layer, unit length (the folder has no sentence-transformers files: the defaults)."""
    tokenizer = transformers.BertTokenizer.from_pretrained(minilm_dir)
    model = transformers.BertModel.from_pretrained(tiny_mlm[0]).eval()

    def embed(texts: list[str]) -> np.ndarray:
        batch = tokenizer(texts, padding=True, return_tensors="pt")
        with torch.no_grad():
            hidden = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
        mean = ((hidden * mask).sum(1) / mask.sum(1)).numpy()
        return mean / np.linalg.norm(mean, axis=1, keepdims=True)

    return embed


def test_api_key_is_required_except_for_liveness_and_the_page(guarded, expected):
    with httpx.Client(base_url=guarded.http_url, timeout=60) as http:
        missing = http.post("/embed", json={"inputs": TEXTS})
        wrong = http.post("/embed", json={"inputs": TEXTS}, headers={"Authorization": "Bearer s3cret-kez"})
        openai = http.post("/v1/embeddings", json={"input": "x"})
        right = http.post("/embed", json={"inputs": TEXTS}, headers=AUTH)
        assert http.get("/health").status_code == 200 and http.get("/").status_code == 200
        assert http.get("/metrics").status_code == 401 and http.get("/metrics", headers=AUTH).status_code == 200
    assert missing.status_code == wrong.status_code == openai.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert missing.json() == {"error": "missing API key: send the header 'Authorization: Bearer <key>'",
                              "error_type": "unauthorized"}
    assert wrong.json()["error"].startswith("wrong API key") and openai.json()["error"]["code"] == 401
    np.testing.assert_allclose(right.json(), expected(TEXTS), atol=1e-5)


@pytest.mark.parametrize("name, content, status, message", [
    ("10 MB payload", json.dumps({"inputs": ["a" * 1000] * 10_000}).encode(), 413, "over the 20000-byte limit"),
    ("100k inputs", json.dumps({"inputs": ["a"] * 100_000}).encode(), 413, "over the 20000-byte limit"),
    ("9 inputs", json.dumps({"inputs": ["a"] * 9}).encode(), 413, "batch size 9 > maximum allowed batch size 8"),
    ("malformed JSON", b'{"inputs": ["a",', 400, "invalid JSON body"),
    ("non-UTF-8", b'{"inputs": "\xff\xfe"}', 400, ""),
    ("wrong type", b'{"inputs": {"a": 1}}', 422, "inputs"),
    ("empty inputs", b'{"inputs": []}', 422, "`inputs` cannot be empty"),
    ("empty text", b'{"inputs": ["   "]}', 422, "inputs[0] is an empty text"),
])
def test_bad_input_gets_a_clear_4xx(guarded, name, content, status, message):
    with httpx.Client(base_url=guarded.http_url, timeout=60, headers=AUTH) as http:
        reply = http.post("/embed", content=content, headers={"content-type": "application/json"})
        assert reply.status_code == status, reply.text
        assert reply.json()["error_type"] and message in reply.json()["error"]
        assert http.post("/embed", json={"inputs": TEXTS[:2]}).status_code == 200  # still serving


def test_a_chunked_body_over_the_limit_is_refused_without_reading_it_all(guarded):
    def chunks():
        yield b'{"inputs": ["'
        for _ in range(100):
            yield b"a" * 1000
        yield b'"]}'

    with httpx.Client(base_url=guarded.http_url, timeout=60, headers=AUTH) as http:
        reply = http.post("/embed", content=chunks(), headers={"content-type": "application/json"})
    assert reply.status_code == 413 and "over the 20000-byte limit" in reply.json()["error"]


def test_requests_over_the_concurrency_limit_get_429_and_the_rest_are_answered(guarded, expected):
    async def burst(count: int) -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=guarded.http_url, timeout=60, headers=AUTH) as http:
            return await asyncio.gather(*[http.post("/embed", json={"inputs": TEXTS[i % 8 :] + TEXTS[: i % 8]})
                                          for i in range(count)])

    refused, answered = [], 0
    for _ in range(5):  # the burst must overlap on the server; it does within a round or two
        for i, reply in enumerate(asyncio.run(burst(24))):
            if reply.status_code == 429:
                refused.append(reply)
            else:
                assert reply.status_code == 200
                np.testing.assert_allclose(reply.json(), expected(TEXTS[i % 8 :] + TEXTS[: i % 8]), atol=1e-5)
                answered += 1
        if refused:
            break
    assert refused and answered
    assert refused[0].headers["retry-after"] == "1" and refused[0].json()["error_type"] == "overloaded"
    metrics = httpx.get(guarded.http_url + "/metrics", headers=AUTH).text
    assert 'te_request_failure_total{err="overloaded"}' in metrics


def test_slow_partial_requests_do_not_stop_the_others(guarded, expected):
    """Slowloris: 40 connections that send half a request and stall; a normal request is still answered."""
    stalled = []
    try:
        for i in range(40):
            sock = socket.create_connection(("127.0.0.1", guarded.http_port))
            partial = b"POST /embed HTTP/1.1\r\nHost: x\r\n" if i % 2 else \
                b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{\"inputs\": "
            sock.sendall(partial)
            stalled.append(sock)
        started = time.monotonic()
        reply = httpx.post(guarded.http_url + "/embed", json={"inputs": TEXTS}, headers=AUTH, timeout=30)
        assert reply.status_code == 200 and time.monotonic() - started < 10
        np.testing.assert_allclose(reply.json(), expected(TEXTS), atol=1e-5)
    finally:
        for sock in stalled:
            sock.close()
    assert guarded.process.poll() is None


def test_access_log_has_one_json_line_per_request(guarded):
    body = b'{"inputs": ["logged for the access log test"]}'
    httpx.post(guarded.http_url + "/embed", content=body, headers=AUTH, timeout=30)
    deadline = time.monotonic() + 10
    while f'"bytes": {len(body)}' not in guarded.log and time.monotonic() < deadline:
        time.sleep(0.1)
    lines = [json.loads(line.split("bertkit.serving.access: ", 1)[1]) for line in guarded.log.splitlines()
             if "bertkit.serving.access: " in line]
    assert {"client": "127.0.0.1", "method": "POST", "path": "/embed", "status": 200, "bytes": len(body)} in [
        {k: v for k, v in line.items() if k != "ms"} for line in lines]
    assert {line["status"] for line in lines} >= {200, 401, 413, 400, 422, 429}
    assert KEY not in guarded.log


def test_sigterm_answers_requests_in_flight_then_stops(tiny_mlm, tmp_path, expected):
    """A batch waits 1.5 s for company (-batch_wait_ms), so the request is in flight when SIGTERM arrives."""
    args = ["-model_dir", str(tiny_mlm[0]), "--torch-threads", "1", "-batch_wait_ms", "1500"]
    with running_server(args, tmp_path / "server.log", http=True) as server:
        reply = {}
        request = threading.Thread(target=lambda: reply.update(r=httpx.post(
            server.http_url + "/embed", json={"inputs": TEXTS}, timeout=60)))
        request.start()
        time.sleep(0.5)
        server.process.send_signal(signal.SIGTERM)
        request.join(30)
        assert server.process.wait(30) == 0
    assert reply["r"].status_code == 200
    np.testing.assert_allclose(reply["r"].json(), expected(TEXTS), atol=1e-5)
    assert "SIGTERM: answering the requests in flight" in server.log and "server stopped" in server.log


def test_ctrl_c_is_logged_as_sigint(tiny_mlm, tmp_path):
    with running_server(["-model_dir", str(tiny_mlm[0]), "--torch-threads", "1"], tmp_path / "server.log") as server:
        server.process.send_signal(signal.SIGINT)
        assert server.process.wait(30) == 0
    assert "SIGINT: answering the requests in flight" in server.log and "SIGTERM" not in server.log
