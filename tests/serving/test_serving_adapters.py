"""Several adapters on one base model: each request's adapter answers as that adapter served alone would, the base
weights are stored once, and bert-as-service clients get the default adapter."""

import json

import httpx
import numpy as np
import pytest
import torch
from bert_serving.client import BertClient
from finetuning_fixtures import sentiment_examples, tiny_dir  # noqa: F401
from serving_process import running_server

from bertkit.finetuning.config import FinetuneConfig
from bertkit.finetuning.predict import SequenceClassifier
from bertkit.finetuning.train import finetune
from bertkit.serving.multi_adapter import AdapterServingModel, share_equal_weights
from bertkit.serving.settings import ServerSettings

TEXTS = ["great fun", "the plot was dull and boring", "a film"]


def train_adapter(folder, base, method, labels):
    rename = dict(zip(("pos", "neg"), labels, strict=True))
    for split, seed in (("train", 0), ("dev", 1), ("test", 2)):
        rows = [{**r, "label": rename[r["label"]]} for r in sentiment_examples(48, seed)]
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = FinetuneConfig(model=str(base), output_dir=str(folder / "out"), max_length=32, epochs=1, batch_size=16,
                            learning_rate=3e-3, progress=False, threads=1, peft=method,
                            **{f"{s}_file": str(folder / f"{s}.jsonl") for s in ("train", "dev", "test")})
    finetune(config)
    return folder / "out" / "best"


@pytest.fixture(scope="module")
def adapters(tmp_path_factory, tiny_dir):  # noqa: F811
    root = tmp_path_factory.mktemp("adapters")
    (root / "a").mkdir(), (root / "b").mkdir()
    return {"sentiment": train_adapter(root / "a", tiny_dir, "lora", ("pos", "neg")),
            "quality": train_adapter(root / "b", tiny_dir, "houlsby", ("good", "bad"))}


def alone(folder, texts):
    """What the adapter folder predicts served by itself (bertkit predict's path)."""
    return SequenceClassifier.from_pretrained(folder).predict_logits(texts)


def test_adapters_share_the_base_and_answer_as_alone(adapters, tiny_dir):  # noqa: F811
    settings = ServerSettings(model_dir=tiny_dir, pooling_strategy="CLASSIFICATION",
                              adapters=[f"{name}={path}" for name, path in adapters.items()]).checked()
    served = AdapterServingModel.from_settings(settings)
    assert served.default == "sentiment" and served.shared_bytes > 0
    first, second = (m.predictor.model for m in served.models.values())
    embeddings = "bert.embeddings.word_embeddings.weight"
    assert first.get_parameter(embeddings) is second.get_parameter(embeddings)
    for name, folder in adapters.items():
        logits, _ = served.run(f"classify@{name}", [[t, None] for t in TEXTS])
        np.testing.assert_allclose(logits, alone(folder, TEXTS), atol=1e-5)
    assert set(served.adapters["quality"]["labels"]) == {"good", "bad"}
    with pytest.raises(ValueError, match="unknown adapter 'nope'; this server has sentiment, quality"):
        served.run("classify@nope", [["a film", None]])


def test_share_equal_weights_keeps_differing_tensors_apart():
    a, b = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    with torch.no_grad():
        b.weight.copy_(a.weight)
    assert share_equal_weights([a, b]) == 6 * 4
    assert b.weight is a.weight and b.bias is not a.bias


def test_served_adapters_over_http_and_bert_client(adapters, tiny_dir, tmp_path):  # noqa: F811
    args = ["-model_dir", str(tiny_dir), "-pooling_strategy", "CLASSIFICATION", "--torch-threads", "1",
            *[a for name, path in adapters.items() for a in ("--adapter", f"{name}={path}")]]
    with running_server(args, tmp_path / "server.log", http=True) as server:
        with BertClient(port=server.port, port_out=server.port_out, timeout=60000) as client:
            default = client.encode(TEXTS)
        with httpx.Client(base_url=server.http_url, timeout=60) as http:
            replies = {name: http.post("/predict", json={"inputs": [[t] for t in TEXTS], "adapter_id": name,
                                                         "raw_scores": True}) for name in adapters}
            unknown = http.post("/predict", json={"inputs": "a film", "adapter_id": "nope"})
    expected = alone(adapters["sentiment"], TEXTS)
    np.testing.assert_allclose(default, np.exp(expected) / np.exp(expected).sum(1, keepdims=True), atol=1e-5)
    for name, reply in replies.items():
        assert reply.status_code == 200, reply.text
        logits = alone(adapters[name], TEXTS)
        labels = SequenceClassifier.from_pretrained(adapters[name]).labels.labels
        for row, ranked in zip(logits, reply.json(), strict=True):
            expected = dict(zip(labels, row.tolist(), strict=True))
            assert {r["label"]: r["score"] for r in ranked} == pytest.approx(expected, abs=1e-4)
    assert unknown.status_code == 422 and "unknown adapter_id 'nope'" in unknown.text


def test_bad_adapter_settings_are_named(adapters, tiny_dir, tmp_path):  # noqa: F811
    with pytest.raises(FileNotFoundError, match="not an adapter folder"):
        ServerSettings(model_dir=tiny_dir, pooling_strategy="CLASSIFICATION", adapters=[f"x={tmp_path}"]).checked()
    with pytest.raises(ValueError, match="CLASSIFICATION or REGRESSION"):
        ServerSettings(model_dir=tiny_dir, adapters=[f"x={adapters['sentiment']}"]).checked()
    with pytest.raises(ValueError, match="unique"):
        ServerSettings(model_dir=tiny_dir, pooling_strategy="CLASSIFICATION",
                       adapters=[f"x={adapters['sentiment']}", f"x={adapters['quality']}"]).checked()
