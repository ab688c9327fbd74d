"""`bertkit export onnx`: the graph (encoder + pooling + normalisation, dynamic batch and length) run by ONNX
Runtime gives transformers' vectors pooled by hand, in the folder layout sentence-transformers and TEI read."""

import json
import shutil
import subprocess
import sys

import numpy as np
import onnxruntime
import pytest
import torch
import transformers

from bertkit.encoding.pooling import last_token_pool, weighted_mean_pool
from bertkit.export.onnx import SentenceEmbeddingGraph, export_onnx
from bertkit.model import BertModel


@pytest.fixture(scope="module")
def tiny_sentence_model(tmp_path_factory, minilm_dir):
    """A small random BERT with MiniLM's vocabulary and sentence-transformers files (mean pooling, normalised)."""
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=64, max_position_embeddings=64)
    model = transformers.BertModel(config).eval()
    folder = tmp_path_factory.mktemp("tiny-st") / "model"
    model.save_pretrained(folder)
    for name in ("vocab.txt", "tokenizer_config.json", "modules.json", "sentence_bert_config.json"):
        shutil.copy(minilm_dir / name, folder / name)
    shutil.copytree(minilm_dir / "1_Pooling", folder / "1_Pooling")
    pooling = json.loads((folder / "1_Pooling" / "config.json").read_text())
    pooling["word_embedding_dimension"] = 32  # this model's width, not MiniLM's 384
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    return folder, model


def export(model_dir, out, *extra):
    return subprocess.run([sys.executable, "-m", "bertkit", "export", "onnx", "--model", str(model_dir),
                           "-o", str(out), *extra], capture_output=True, text=True, timeout=600)


def test_onnx_runtime_gives_the_same_vectors(tiny_sentence_model, tmp_path, minilm_dir):
    """One export, in-process (an export costs ~15 s of tracing; a subprocess would add torch's import)."""
    folder, model = tiny_sentence_model
    out = tmp_path / "out"
    assert export_onnx(folder, out) == out / "onnx" / "model.onnx"
    assert (out / "config.json").is_file() and (out / "vocab.txt").is_file() and (out / "1_Pooling").is_dir()
    assert not list(out.glob("*.safetensors"))  # the weights live in the graph
    session = onnxruntime.InferenceSession(str(out / "onnx" / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input_ids", "attention_mask", "token_type_ids"]
    assert [o.name for o in session.get_outputs()] == ["last_hidden_state", "sentence_embedding"]
    tokenizer = transformers.BertTokenizer.from_pretrained(minilm_dir)
    for texts in (["one text"], ["a short one", "a much longer text that needs padding in the batch", "mid one"],
                  ["word " * 60] * 5):  # batch 1, padded batch of 3, batch of 5 at the longest length
        batch = tokenizer(texts, padding=True, truncation=True, max_length=64, return_tensors="pt")
        with torch.no_grad():
            hidden = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
        mean = ((hidden * mask).sum(1) / mask.sum(1)).numpy()
        feeds = {name: batch[name].numpy().astype(np.int64) for name in ("input_ids", "attention_mask",
                                                                         "token_type_ids")}
        tokens, sentences = session.run(None, feeds)
        real = batch["attention_mask"].numpy().astype(bool)
        np.testing.assert_allclose(tokens[real], hidden.numpy()[real], atol=1e-5)
        np.testing.assert_allclose(sentences, mean / np.linalg.norm(mean, axis=1, keepdims=True), atol=1e-5)

    again = export(folder, tmp_path / "out")  # not over an existing export
    assert again.returncode == 2 and again.stderr.strip().splitlines() == [
        f"bertkit export: error: output folder {out} exists and is not empty: give a new or empty folder"]


def test_pooling_and_normalisation_can_be_overridden(tiny_sentence_model, minilm_dir):
    """The exported module itself (the ONNX side of the same graph is checked above): [CLS], not normalised."""
    folder, model = tiny_sentence_model
    graph = SentenceEmbeddingGraph(BertModel.from_pretrained(folder), "cls", normalize=False)
    batch = transformers.BertTokenizer.from_pretrained(minilm_dir)(["a text", "another text here"], padding=True,
                                                                   return_tensors="pt")
    with torch.no_grad():
        expected = model(**batch).last_hidden_state[:, 0].numpy()
        _, pooled = graph(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
    np.testing.assert_allclose(pooled.numpy(), expected, atol=1e-5)
    # every SentenceEncoder mode is exported (all six together: ONNX Runtime within 1e-6 of torch, measured once)
    graph = SentenceEmbeddingGraph(BertModel.from_pretrained(folder), "weightedmean+lasttoken", normalize=False)
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
        _, pooled = graph(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
    expected = torch.cat([weighted_mean_pool(hidden, batch["attention_mask"]),
                          last_token_pool(hidden, batch["attention_mask"])], dim=-1)
    np.testing.assert_allclose(pooled.numpy(), expected.numpy(), atol=1e-5)
    with pytest.raises(ValueError, match="pooling must be one of"):
        SentenceEmbeddingGraph(BertModel.from_pretrained(folder), "median", normalize=True)


def test_relative_position_models_export_too(tmp_path, minilm_dir):
    """Shaw's relative_key_query adds a score term inside attention; the exported graph equals bertkit's forward
    (transformers 5 has no such BERT to compare with). It failed once: a traced view of SDPA's output."""
    from bertkit.config import BertConfig
    from bertkit.encoding import SentenceEncoder

    torch.manual_seed(0)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64,
                        position_embedding_type="relative_key_query")
    folder = tmp_path / "model"
    BertModel(config).eval().save_pretrained(folder)
    for name in ("vocab.txt", "tokenizer_config.json"):
        shutil.copy(minilm_dir / name, folder / name)
    out = export_onnx(folder, tmp_path / "out", pooling="mean")
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    encoder = SentenceEncoder.from_pretrained(folder)
    texts = ["a short one", "a much longer text that needs padding in the batch"]
    batch = transformers.BertTokenizer.from_pretrained(minilm_dir)(texts, padding=True, return_tensors="np")
    tokens, sentences = session.run(None, {name: batch[name].astype(np.int64) for name in (
        "input_ids", "attention_mask", "token_type_ids")})
    with torch.no_grad():
        hidden = encoder.model(torch.tensor(batch["input_ids"]), attention_mask=torch.tensor(
            batch["attention_mask"])).last_hidden_state.numpy()
    real = batch["attention_mask"].astype(bool)
    np.testing.assert_allclose(tokens[real], hidden[real], atol=1e-5)
    # a plain folder (no modules.json) is exported with mean pooling, not normalised
    np.testing.assert_allclose(sentences, encoder.encode(texts, pooling="mean", normalize=False), atol=1e-5)
