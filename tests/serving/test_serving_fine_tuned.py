"""CLASSIFICATION / REGRESSION: a model fine-tuned by bertkit, served to the real BertClient, equals transformers."""

import json

import httpx
import numpy as np
import pytest
import torch
import transformers
from bert_serving.client import BertClient
from finetuning_fixtures import sentiment_examples, tiny_dir  # noqa: F401
from serving_process import running_server

from bertkit.finetuning.config import FinetuneConfig
from bertkit.finetuning.train import finetune

TEXTS = ["great fun", "the plot was dull and boring", "a film", "great ||| boring"]
PAIRS = ["great fun ||| a film", "dull ||| the plot", "a film ||| boring", "great ||| boring"]  # BertSim scores pairs


def fine_tuned(tmp_path, model, task, rows, **settings):
    for split, seed in (("train", 0), ("dev", 1), ("test", 2)):
        (tmp_path / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows(seed)))
    settings = {"pooling": "pooled"} | settings  # transformers' own classes are the oracles here
    config = FinetuneConfig(model=str(model), task=task, output_dir=str(tmp_path / "out"), max_length=32, epochs=1,
                            batch_size=16, learning_rate=3e-3, progress=False, threads=1, **settings,
                            **{f"{s}_file": str(tmp_path / f"{s}.jsonl") for s in ("train", "dev", "test")})
    finetune(config)
    return tmp_path / "out" / "best"


def transformers_logits(folder, texts, num_labels):
    tokenizer = transformers.BertTokenizer.from_pretrained(folder)
    model = transformers.BertForSequenceClassification.from_pretrained(folder, num_labels=num_labels).eval()
    rows = []
    for text in texts:
        first, _, second = (part.strip() for part in text.partition("|||"))
        batch = tokenizer(first, second or None, truncation=True, max_length=32, return_tensors="pt")
        with torch.no_grad():
            rows.append(model(**batch).logits[0].numpy())
    return np.stack(rows)


@pytest.mark.parametrize("strategy", ["CLASSIFICATION", "REGRESSION"])
def test_fine_tuned_model_serves_probabilities_or_scores(strategy, tmp_path, tiny_dir):  # noqa: F811
    if strategy == "CLASSIFICATION":
        best = fine_tuned(tmp_path, tiny_dir, "classification", lambda seed: sentiment_examples(64, seed))
    else:
        best = fine_tuned(tmp_path, tiny_dir, "regression", lambda seed: [
            {"text": r["text"], "text_pair": "a film", "score": float(r["label"] == "pos")}
            for r in sentiment_examples(64, seed)])
    texts = TEXTS if strategy == "CLASSIFICATION" else PAIRS
    args = ["-model_dir", str(best), "-pooling_strategy", strategy, "--torch-threads", "1", "-show_tokens_to_client"]
    with running_server(args, tmp_path / "server.log") as server:
        with BertClient(port=server.port, port_out=server.port_out, timeout=60000) as client:
            assert client.server_config["pooling_strategy"] == {"CLASSIFICATION": 7, "REGRESSION": 8}[strategy]
            served, tokens = client.encode(texts, show_tokens=True)
    logits = transformers_logits(best, texts, num_labels=2 if strategy == "CLASSIFICATION" else 1)
    if strategy == "CLASSIFICATION":
        expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        assert served.shape == (4, 2)
        np.testing.assert_allclose(served.sum(axis=1), 1.0, atol=1e-5)
    else:
        expected = logits[:, :1]
        assert served.shape == (4, 1)
    np.testing.assert_allclose(served, expected, atol=1e-4)
    assert tokens[3][0] == "[CLS]" and tokens[3].count("[SEP]") == 2


@pytest.mark.parametrize("settings", [{"pooling": "mean"}, {"pooling": "max", "classifier_head": "two_layer"}])
def test_a_classifier_with_its_own_pooling_or_head_is_served(settings, tmp_path, tiny_dir):  # noqa: F811
    """A folder ``bertkit finetune`` wrote with ``modeling_bertkit.py`` (pooling / head transformers' own class
    cannot hold) serves what transformers computes with that file (trust_remote_code)."""
    from bertkit.serving import ServerSettings
    from bertkit.serving.fine_tuned import FineTunedServingModel

    best = fine_tuned(tmp_path, tiny_dir, "classification", lambda seed: sentiment_examples(32, seed), **settings)
    assert json.loads((best / "config.json").read_text())["architectures"] == ["BertkitForSequenceClassification"]
    served = FineTunedServingModel.from_settings(ServerSettings(best, pooling_strategy="CLASSIFICATION").checked())
    probabilities, _ = served.encode(TEXTS)
    tokenizer = transformers.BertTokenizer.from_pretrained(best)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(best, trust_remote_code=True).eval()
    rows = []
    for text in TEXTS:
        first, _, second = (part.strip() for part in text.partition("|||"))
        with torch.no_grad():
            rows.append(model(**tokenizer(first, second or None, return_tensors="pt")).logits[0].softmax(-1).numpy())
    np.testing.assert_allclose(probabilities, np.stack(rows), atol=1e-5)


def test_a_plain_model_is_refused_for_regression(minilm_dir):
    from bertkit.serving import ServerSettings
    from bertkit.serving.embedding import ServingModel

    with pytest.raises(ValueError, match="needs a model fine-tuned for regression"):
        ServingModel.from_settings(ServerSettings(minilm_dir, pooling_strategy="REGRESSION").checked())


def test_a_classifier_answers_tei_routes_with_label_names(tmp_path, tiny_dir, monkeypatch):  # noqa: F811
    """/predict and /rerank (and InferenceClient.text_classification on POST /) give transformers' scores with the
    model's label names; embedding routes refuse it with a clear 400."""
    import httpx
    import huggingface_hub.constants
    from huggingface_hub import InferenceClient

    best = fine_tuned(tmp_path, tiny_dir, "classification", lambda seed: sentiment_examples(64, seed))
    labels = [transformers.BertConfig.from_pretrained(best).id2label[i] for i in range(2)]
    args = ["-model_dir", str(best), "-pooling_strategy", "CLASSIFICATION", "--torch-threads", "1"]
    with running_server(args, tmp_path / "server.log", http=True) as server, \
            httpx.Client(base_url=server.http_url, timeout=60) as http:
        single = http.post("/predict", json={"inputs": "great fun"}).json()
        batch = http.post("/predict", json={"inputs": [["great fun"], ["dull", "the plot"]], "raw_scores": True})
        ranks = http.post("/rerank", json={"query": "great", "texts": ["boring", "fun film", "a plot"],
                                           "return_text": True}).json()
        info = http.get("/info").json()
        model = http.get("/model").json()
        refused = [http.post(path, json=body) for path, body in (
            ("/embed", {"inputs": "x"}), ("/v1/embeddings", {"input": "x"}), ("/embed_all", {"inputs": "x"}))]
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
        classified = InferenceClient(model=server.http_url, timeout=60).text_classification("great fun")
    probabilities = torch.tensor(transformers_logits(best, ["great fun"], 2)).softmax(-1)[0].numpy()
    order = np.argsort(-probabilities)
    assert [p["label"] for p in single] == [labels[i] for i in order]
    np.testing.assert_allclose([p["score"] for p in single], probabilities[order], atol=1e-5)
    assert [c.label for c in classified] == [labels[i] for i in order]
    np.testing.assert_allclose([c.score for c in classified], probabilities[order], atol=1e-5)
    logits = transformers_logits(best, ["great fun", "dull ||| the plot"], 2)
    for row, expected in zip(batch.json(), logits, strict=True):
        assert {p["label"]: p["score"] for p in row} == pytest.approx(dict(zip(labels, expected, strict=True)),
                                                                    abs=1e-4)
    pair = torch.tensor(transformers_logits(best, ["great ||| boring", "great ||| fun film", "great ||| a plot"], 2))
    expected = pair.softmax(-1)[:, -1].numpy()
    assert [r["index"] for r in ranks] == np.argsort(-expected, kind="stable").tolist()
    assert {r["text"]: r["score"] for r in ranks} == pytest.approx(
        dict(zip(["boring", "fun film", "a plot"], expected.tolist(), strict=True)), abs=1e-5)
    assert info["model_type"] == {"classifier": {"id2label": {"0": labels[0], "1": labels[1]},
                                                 "label2id": {labels[0]: 0, labels[1]: 1}}}
    assert model["labels"] == labels and model["max_tokens"] == 32 and info["max_input_length"] == 32
    for reply in refused:
        assert reply.status_code == 400 and "fine-tuned classifier" in reply.text and "/predict" in reply.text


def test_a_lora_adapter_folder_serves_what_peft_computes(tmp_path, tiny_dir):  # noqa: F811
    import peft

    for split, seed in (("train", 0), ("dev", 1), ("test", 2)):
        (tmp_path / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in sentiment_examples(64, seed)))
    config = FinetuneConfig(model=str(tiny_dir), output_dir=str(tmp_path / "out"), max_length=32, epochs=1,
                            batch_size=16, learning_rate=3e-3, progress=False, threads=1, peft="lora", lora_r=4,
                            pooling="pooled",
                            **{f"{s}_file": str(tmp_path / f"{s}.jsonl") for s in ("train", "dev", "test")})
    finetune(config)
    best = tmp_path / "out" / "best"
    args = ["-model_dir", str(best), "-pooling_strategy", "CLASSIFICATION", "--torch-threads", "1"]
    with running_server(args, tmp_path / "server.log", http=True) as server:  # the HTTP API inspects the adapter
        with BertClient(port=server.port, port_out=server.port_out, timeout=60000) as client:
            served = client.encode(TEXTS)
        with httpx.Client(base_url=server.http_url, timeout=60) as http:
            attention = http.post("/attention", json={"text": "great fun", "layer": -1}).json()
    tokenizer = transformers.BertTokenizer.from_pretrained(best)
    base = transformers.BertForSequenceClassification.from_pretrained(tiny_dir, num_labels=2,
                                                                      attn_implementation="eager")  # attentions
    model = peft.PeftModel.from_pretrained(base, best).eval()
    rows = []
    for text in TEXTS:
        first, _, second = (part.strip() for part in text.partition("|||"))
        with torch.no_grad():
            rows.append(model(**tokenizer(first, second or None, return_tensors="pt")).logits[0].numpy())
    logits = np.stack(rows)
    np.testing.assert_allclose(served, np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True), atol=1e-4)
    with torch.no_grad():  # the attention of the served encoder: the base model with the adapter merged in
        merged = model.merge_and_unload().bert(**tokenizer("great fun", return_tensors="pt"), output_attentions=True)
    np.testing.assert_allclose(np.array(attention["attention"][0]), merged.attentions[-1][0].numpy(), atol=1e-4)
