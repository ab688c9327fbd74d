"""The HTTP API of a running server: bert-as-service's /encode, inspection endpoints against transformers, and JSON
4xx errors for bad requests (the TEI and OpenAI routes are in test_serving_tei.py)."""

import httpx
import numpy as np
import pytest
import torch
import transformers

SENTENCES = ["First do it", "then do it right", "then do it better"]


@pytest.fixture(scope="module")
def http(minilm_server):
    with httpx.Client(base_url=minilm_server.http_url, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def hf_tokenizer(minilm_dir):
    return transformers.BertTokenizer.from_pretrained(minilm_dir)


def test_encode_as_bert_as_service(http, local):
    reply = http.post("/encode", json={"id": 7, "texts": SENTENCES, "is_tokenized": False})
    assert reply.status_code == 200
    body = reply.json()
    assert body["id"] == 7 and body["status"] == 200
    np.testing.assert_allclose(np.array(body["result"]), local(SENTENCES), atol=1e-5)
    tokenized = http.post("/encode", json={"id": "t", "texts": [["first", "do", "it"]], "is_tokenized": True}).json()
    np.testing.assert_allclose(np.array(tokenized["result"]), local(["first do it"]), atol=1e-5)


def test_tokenize_matches_transformers(http, hf_tokenizer):
    body = http.post("/tokenize", json={"text": "Tokenizers split unaffable words.", "text_pair": "Yes."}).json()
    expected = hf_tokenizer("Tokenizers split unaffable words.", "Yes.")
    assert body["ids"] == expected["input_ids"] and body["segment_ids"] == expected["token_type_ids"]
    assert body["tokens"] == hf_tokenizer.convert_ids_to_tokens(expected["input_ids"])
    assert body["tokens"][4] == "split" and body["offsets"][4] == [11, 16]


def test_similarity_is_the_cosine_of_the_folders_embeddings_whatever_the_body(http, minilm_dir):
    """One route, one number: {"texts"} and TEI's {"inputs"} both embed as the folder does (as encode / demo)."""
    from bertkit import SentenceEncoder

    body = http.post("/similarity", json={"texts": SENTENCES}).json()
    vectors = SentenceEncoder.from_pretrained(minilm_dir).encode(SENTENCES)  # mean, unit length, 256 tokens
    np.testing.assert_allclose(np.array(body["matrix"]), vectors @ vectors.T, atol=1e-5)
    assert body["pooling"] == "mean" and body["max_seq_length"] == 256 and body["truncated_inputs"] == 0
    tei = http.post("/similarity", json={"inputs": {"source_sentence": SENTENCES[0], "sentences": SENTENCES[1:]}})
    np.testing.assert_allclose(tei.json(), body["matrix"][0][1:], atol=1e-5)
    assert [round(x, 3) for x in body["matrix"][0][1:]] == [0.624, 0.598]  # bertkit demo's numbers


def test_inspection_says_where_it_cut_the_text(http):
    long_text = " ".join(["word"] * 40)
    for route in ("/tokenize", "/attention"):
        body = http.post(route, json={"text": long_text}).json()
        assert (body["max_tokens"], body["total_tokens"], len(body["tokens"])) == (25, 42, 25), route


def test_attention_matches_transformers(http, minilm_dir, hf_tokenizer):
    text = "The cat sat on the mat."
    model = transformers.BertModel.from_pretrained(minilm_dir, attn_implementation="eager").eval()
    with torch.no_grad():
        expected = model(**hf_tokenizer(text, return_tensors="pt"), output_attentions=True).attentions
    one = http.post("/attention", json={"text": text, "layer": 2, "head": 3}).json()
    assert one["tokens"][:3] == ["[CLS]", "the", "cat"] and (one["num_layers"], one["num_heads"]) == (6, 12)
    np.testing.assert_allclose(np.array(one["attention"])[0, 0], expected[2][0, 3].numpy(), atol=1e-4)
    every = np.array(http.post("/attention", json={"text": text}).json()["attention"])
    assert every.shape == (6, 12, 9, 9)
    np.testing.assert_allclose(every.sum(-1), 1.0, atol=1e-4)
    np.testing.assert_allclose(every[-1], expected[-1][0].numpy(), atol=1e-4)


def test_fill_mask_matches_transformers(tiny_server, tiny_mlm, hf_tokenizer):
    folder, model = tiny_mlm
    text = "the cat sat on the [MASK] and the [MASK] barked ."
    with httpx.Client(base_url=tiny_server.http_url, timeout=60) as http:
        body = http.post("/fill-mask", json={"text": text, "top_k": 4}).json()
        missing = http.post("/fill-mask", json={"text": "no mask here"})
    inputs = hf_tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        probabilities = model(**inputs).logits[0].softmax(-1)
    positions = (inputs["input_ids"][0] == hf_tokenizer.mask_token_id).nonzero().flatten().tolist()
    assert [m["position"] for m in body["masks"]] == positions
    for found, position in zip(body["masks"], positions, strict=True):
        top = probabilities[position].topk(4)
        assert [c["id"] for c in found["candidates"]] == top.indices.tolist()
        assert [c["token"] for c in found["candidates"]] == hf_tokenizer.convert_ids_to_tokens(top.indices.tolist())
        np.testing.assert_allclose([c["score"] for c in found["candidates"]], top.values.numpy(), atol=1e-5)
    assert missing.status_code == 400 and "[MASK]" in missing.json()["error"]["message"]


def test_health_status_openapi_and_page(http):
    assert http.get("/healthz").json() == {"status": "ok", "server_version": "1.10.0", "num_worker": 2}
    status = http.get("/status").json()
    assert status["statistic"]["num_data_request"] >= 1 and status["pooling_strategy"] == 2
    paths = http.get("/openapi.json").json()["paths"]
    assert {"/encode", "/v1/embeddings", "/tokenize", "/similarity", "/fill-mask", "/attention"} <= set(paths)
    assert http.get("/docs").status_code == 200
    page = http.get("/")
    assert page.status_code == 200 and "<title>" in page.text


@pytest.mark.parametrize("method, path, body, status, message", [
    ("post", "/encode", b"{not json", 400, "invalid JSON body"),
    ("post", "/encode", {"texts": []}, 422, "texts"),
    ("post", "/encode", {"texts": ["a"] * 2049}, 413, "batch size 2049 > maximum allowed batch size 2048"),
    ("post", "/encode", {"texts": "just a string"}, 422, "texts"),
    ("post", "/encode", {"texts": ["a"], "is_tokenized": True}, 400, "is_tokenized"),
    ("post", "/v1/embeddings", {"input": []}, 422, "`inputs` cannot be empty"),
    ("post", "/v1/embeddings", {"input": [1.5, 2]}, 422, "input"),
    ("post", "/v1/embeddings", {"input": "x", "encoding_format": "int8"}, 422, "encoding_format"),
    ("post", "/attention", {"text": "a cat", "layer": 9}, 400, "layer must lie in [-6, 5]"),
    ("post", "/attention", {"text": "a cat", "head": 12}, 400, "head must lie in [0, 11]"),
    ("post", "/attention", {"text": ""}, 422, "text"),
    ("post", "/tokenize", {}, 422, "text"),
    ("post", "/similarity", {"texts": ["a"] * 300}, 422, "texts"),
    ("post", "/fill-mask", {"text": "a [MASK] b"}, 422, "has no masked-LM head"),
    ("get", "/no/such/page", None, 404, "Not Found"),
    ("get", "/encode", None, 405, "Method Not Allowed"),
])
def test_bad_requests_get_json_errors(http, method, path, body, status, message):
    if isinstance(body, bytes):
        reply = http.post(path, content=body, headers={"content-type": "application/json"})
    else:
        reply = getattr(http, method)(path, **({"json": body} if body is not None else {}))
    assert reply.status_code == status
    error = reply.json()
    assert error["status"] == status and message in error["error"]["message"]
