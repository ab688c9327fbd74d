"""long_text: hierarchical — the chunk reader against torch.nn.TransformerEncoderLayer with the same weights, the
model's document logits against the windows read one document at a time, the windows of a document, end-to-end
fine-tuning (the encoder learns too) and a saved folder that predicts the same after reloading."""

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from finetuning_fixtures import FILLER, NEGATIVE, POSITIVE, tiny_dir, tiny_tokenizer  # noqa: F401
from safetensors.torch import load_file

from bertkit.cli import main
from bertkit.config import BertConfig
from bertkit.finetuning import long_text
from bertkit.finetuning.config import FinetuneConfig
from bertkit.finetuning.data import LabelMap
from bertkit.finetuning.hierarchical import BertHierarchicalForSequenceClassification, ChunkReader
from bertkit.finetuning.input_settings import InputSettings
from bertkit.finetuning.long_tasks import build_task
from bertkit.finetuning.models import TaskConfig
from bertkit.finetuning.predict import load_predictor
from bertkit.finetuning.train import finetune


def torch_layer(reader: ChunkReader, config: BertConfig) -> torch.nn.TransformerEncoderLayer:
    """PyTorch's post-LN encoder layer holding the reader's weights."""
    layer = torch.nn.TransformerEncoderLayer(config.hidden_size, config.num_attention_heads, config.intermediate_size,
                                             dropout=0.0, activation="gelu", batch_first=True,
                                             layer_norm_eps=config.layer_norm_eps)
    ours = reader.layer
    attention = ours.attention.self
    with torch.no_grad():
        layer.self_attn.in_proj_weight.copy_(torch.cat([attention.query.weight, attention.key.weight,
                                                        attention.value.weight]))
        layer.self_attn.in_proj_bias.copy_(torch.cat([attention.query.bias, attention.key.bias, attention.value.bias]))
        output = ours.attention.output
        pairs = ((layer.self_attn.out_proj, output.dense), (layer.norm1, output.LayerNorm),
                 (layer.linear1, ours.intermediate.dense), (layer.linear2, ours.output.dense),
                 (layer.norm2, ours.output.LayerNorm))
        for theirs, mine in pairs:
            theirs.weight.copy_(mine.weight)
            theirs.bias.copy_(mine.bias)
    return layer.eval()


def test_chunk_reader_is_a_transformer_layer_then_a_masked_mean():
    torch.manual_seed(0)
    config = BertConfig(hidden_size=32, num_attention_heads=4, intermediate_size=64, num_hidden_layers=1)
    reader = ChunkReader(config, max_chunks=6).eval()
    for p in reader.parameters():  # away from the identity-like initial LayerNorms
        torch.nn.init.normal_(p, std=0.3)
    reference = torch_layer(reader, config)
    vectors = torch.randn(3, 5, 32)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0]])
    out = reader(vectors, mask)
    for doc in range(3):
        n = int(mask[doc].sum())
        alone = reference(vectors[doc:doc + 1, :n] + reader.positions.weight[:n]).mean(1)[0]
        torch.testing.assert_close(out[doc], alone, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="7 chunks; the reader has 6 chunk positions"):
        reader(torch.randn(1, 7, 32), torch.ones(1, 7, dtype=torch.long))


def test_chunk_runs_are_back_to_back_windows_spread_past_max_chunks():
    ids = list(range(100))
    assert long_text.chunk_runs(ids, 10, None, 20) == [ids[s:s + 10] for s in range(0, 100, 10)]
    assert long_text.chunk_runs(ids, 10, None, 4) == [ids[0:10], ids[30:40], ids[60:70], ids[90:100]]
    assert long_text.chunk_runs(ids[:7], 10, None, 4) == [ids[:7]]
    with pytest.raises(ValueError, match="needs the model's task"):
        long_text.windows(ids, "hierarchical", 10)


def tiny_reader(tiny_dir, max_chunks: int = 8) -> BertHierarchicalForSequenceClassification:  # noqa: F811
    config = TaskConfig.from_json_file(tiny_dir / "config.json")
    config = TaskConfig.over(config, id2label={0: "neg", 1: "pos"}, pooling="cls", classifier_dropout=0.0,
                             finetuning=InputSettings(long_text="hierarchical", max_chunks=max_chunks))
    return BertHierarchicalForSequenceClassification.from_pretrained(tiny_dir, config=config).eval()


def test_document_logits_are_the_reader_over_each_documents_window_vectors(tiny_dir):  # noqa: F811
    model = tiny_reader(tiny_dir)
    torch.manual_seed(1)
    windows = torch.randint(5, 30, (6, 10))
    mask = torch.ones_like(windows)
    mask[2, 7:] = 0
    owner = torch.tensor([0, 0, 0, 1, 2, 2])
    logits = model(windows, mask, torch.zeros_like(windows), chunk_owner=owner).logits
    assert logits.shape == (3, 2)
    for doc in range(3):
        rows = owner == doc
        cls = model.bert(windows[rows], mask[rows], torch.zeros_like(windows[rows])).last_hidden_state[:, 0]
        expected = model.classifier(model.chunk_reader(cls[None], torch.ones(1, int(rows.sum()))))
        torch.testing.assert_close(logits[doc], expected[0], atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="chunk_owner must list each document's windows together"):
        model(windows, mask, chunk_owner=torch.tensor([0, 1, 0, 1, 2, 2]))


def documents(n: int, seed: int) -> list[dict]:
    """Documents of 3–6 neutral sentences and two sentiment sentences somewhere: the label is their side."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        label = "pos" if i % 2 else "neg"
        parts = [f"the {rng.choice(FILLER)} {rng.choice(FILLER)} was {rng.choice(FILLER)} ."
                 for _ in range(rng.randint(3, 6))]
        words = POSITIVE if label == "pos" else NEGATIVE
        for _ in range(2):
            parts.insert(rng.randrange(len(parts) + 1), f"it was {rng.choice(words)} .")
        out.append({"text": " ".join(parts), "label": label})
    return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_dir):  # noqa: F811
    tmp = tmp_path_factory.mktemp("hier")
    for split, rows in (("train", documents(64, 0)), ("dev", documents(32, 1))):
        (tmp / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = FinetuneConfig(model=str(tiny_dir), output_dir=str(tmp / "out"), max_length=12, batch_size=8, epochs=12,
                            learning_rate=3e-3, head_lr_scale=1.0, progress=False, seed=0, threads=1,
                            train_file=str(tmp / "train.jsonl"), dev_file=str(tmp / "dev.jsonl"),
                            long_text="hierarchical", max_chunks=4, pooling="cls")
    return config, finetune(config)


def test_fine_tuning_trains_the_reader_and_the_encoder_end_to_end(trained, tiny_dir):  # noqa: F811
    config, result = trained
    assert result.dev["accuracy"] >= 0.9  # the label sits in two of three to six windows
    best = load_file(f"{config.output_dir}/best/model.safetensors")
    start = load_file(tiny_dir / "model.safetensors")
    name = "encoder.layer.0.attention.self.query.weight"  # the bare encoder's name; the task model's has bert.
    assert not torch.allclose(best[f"bert.{name}"], start[name])  # gradients reached the encoder
    assert any(n.startswith("chunk_reader.layer.") for n in best)


def test_saved_folder_reads_documents_the_same_after_reloading(trained, capsys):
    config, _ = trained
    best = f"{config.output_dir}/best"
    saved = json.loads(open(f"{best}/config.json").read())
    assert saved["finetuning"]["long_text"] == "hierarchical" and saved["finetuning"]["max_chunks"] == 4
    texts = [d["text"] for d in documents(12, 5)]
    model = BertHierarchicalForSequenceClassification.from_pretrained(best)
    before = build_task(config, tiny_tokenizer(), LabelMap(["neg", "pos"]), model).predict(
        model, [{"text": t} for t in texts])
    predictor = load_predictor(best, batch_size=5)  # documents grouped up to 5 windows: batching must not matter
    assert isinstance(predictor.model, BertHierarchicalForSequenceClassification)
    np.testing.assert_allclose(predictor.predict_logits(texts), before, atol=1e-5)
    labels = [p["label"] for p in predictor.predict(texts)]
    assert np.mean([a == d["label"] for a, d in zip(labels, documents(12, 5), strict=True)]) >= 0.75
    inputs = Path(config.output_dir) / "in.txt"
    inputs.write_text("".join(t + "\n" for t in texts[:3]))
    assert main(["predict", "--model", best, str(inputs)]) == 0  # bertkit predict reads documents the same way
    assert [json.loads(line)["label"] for line in capsys.readouterr().out.splitlines()] == labels[:3]


def test_hierarchical_refuses_peft_and_token_tasks():
    with pytest.raises(ValueError, match="does not combine with peft"):
        build_task(FinetuneConfig(long_text="hierarchical", peft="lora", progress=False), tiny_tokenizer(),
                   LabelMap(["neg", "pos"]))
    with pytest.raises(ValueError, match="not question_answering"):
        build_task(FinetuneConfig(long_text="hierarchical", task="question_answering", progress=False),
                   tiny_tokenizer(), LabelMap([]))
