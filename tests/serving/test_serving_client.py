"""`bertkit serve` in a subprocess, driven by the real, unmodified bert-serving-client 1.10.0 and raw ZMQ traffic."""

import threading

import numpy as np
import pytest
from bert_serving.client import BertClient, ConcurrentBertClient

from bertkit.serving import ServerSettings
from bertkit.serving.embedding import ServingModel

SENTENCES = ["First do it", "then do it right", "then do it better"]
TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def server(minilm_server):
    return minilm_server


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
    assert config["host"] == "127.0.0.1" and config["max_batch_size"] == 64 and config["priority_batch_size"] == 16
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
