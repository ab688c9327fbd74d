"""One batching and one pooling for the encoder, fine-tuning's predict and the server; inference precisions.

The three paths run the same MiniLM on the same texts and must give the same vectors (the encoder itself is checked
against sentence-transformers in test_encoding.py). Precision fallbacks are tested by faking the CPU's flags.
"""

import dataclasses
import warnings

import numpy as np
import pytest
import torch

from bertkit.config import BertConfig
from bertkit.encoding import SentenceEncoder, precision
from bertkit.encoding.batching import pad_rows, run_sorted, sorted_batches
from bertkit.finetuning.models import BertForSequenceClassification, TaskConfig
from bertkit.finetuning.predict import SequenceClassifier
from bertkit.model import BertModel
from bertkit.serving.embedding import ServingModel
from bertkit.serving.settings import ServerSettings

TEXTS = ["a short one", "the second sentence is quite a bit longer than the first", "third",
         "a fourth, of middling length", "Unbelievably, the fifth text wins the length contest by a wide margin here"]


@pytest.fixture(scope="module")
def encoder(minilm_dir):
    return SentenceEncoder.from_pretrained(minilm_dir)


def identity_classifier(encoder: SentenceEncoder, pooling: str) -> BertForSequenceClassification:
    """A sequence classifier on MiniLM whose logits are its pooled sentence vector (identity head)."""
    hidden = encoder.model.config.hidden_size
    shape = {f.name: getattr(encoder.model.config, f.name) for f in dataclasses.fields(BertConfig)}
    model = BertForSequenceClassification(TaskConfig(**shape, id2label={i: str(i) for i in range(hidden)},
                                                     pooling=pooling))
    model.bert.load_state_dict(encoder.model.state_dict(), strict=False)
    with torch.no_grad():
        model.classifier.weight.copy_(torch.eye(hidden))
        model.classifier.bias.zero_()
    return model.eval()


def test_encoder_predict_and_server_give_the_same_vectors(encoder, minilm_dir):
    classifier = identity_classifier(encoder, "mean")
    ids = encoder.tokenize(TEXTS)[0]
    for pooling in ("mean", "lasttoken"):  # a pooling mode reaches all three paths through one module
        ours = encoder.encode(TEXTS, pooling=pooling, normalize=False)
        classifier.config.pooling = pooling
        predicted = SequenceClassifier(classifier, encoder.tokenizer).predict_logits(TEXTS)
        server = ServingModel(encoder.model, encoder.tokenizer, ServerSettings(minilm_dir),
                              {"pooling": pooling, "normalize": False, "max_seq_length": 256})
        served = server.embed_ids(ids)
        assert ours.shape == predicted.shape == served.shape == (len(TEXTS), 384)
        np.testing.assert_allclose(predicted, ours, atol=1e-5)
        np.testing.assert_allclose(served, ours, atol=1e-5)
    # a batch per text (no padding at all) gives the same vectors: padding never leaks into the pooling
    np.testing.assert_allclose(encoder.encode(TEXTS, pooling="lasttoken", normalize=False, batch_size=1), ours,
                               atol=1e-5)


def test_sorted_batches_pad_right_and_rows_come_back_in_order():
    lengths = [2, 5, 1, 5, 3]
    assert list(sorted_batches(lengths, 2)) == [[1, 3], [4, 0], [2]]
    assert pad_rows([[1, 2], [3]], 0, multiple=4).tolist() == [[1, 2, 0, 0], [3, 0, 0, 0]]
    # each "batch" returns its indices as values: the output must hold each row's own index, token rows zero-padded
    vectors = run_sorted(lengths, 2, lambda chosen: np.array(chosen, dtype=np.float32)[:, None])
    assert vectors[:, 0].tolist() == [0, 1, 2, 3, 4]
    tokens = run_sorted(lengths, 2, lambda chosen: np.ones((len(chosen), max(lengths[i] for i in chosen), 1)))
    assert tokens.shape == (5, 5, 1) and tokens[:, :, 0].sum(axis=1).tolist() == [3, 5, 1, 5, 3]


def load(minilm_dir, name: str) -> tuple[SentenceEncoder, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        encoder = SentenceEncoder.from_pretrained(minilm_dir, precision=name)
    return encoder, [str(w.message) for w in caught if "precision=" in str(w.message)]


def tiny_in(name: str, tokenizer) -> tuple[torch.nn.Module, str, list[str]]:
    """A tiny random BERT put in precision ``name``: the precision in effect and the warnings."""
    config = BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    model = BertModel(config).eval()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        effect = precision.apply_precision(model, name, tokenizer)
    return model, effect, [str(w.message) for w in caught if "precision=" in str(w.message)]


def test_bf16_without_native_support_falls_back_to_fp32_with_one_warning(encoder, monkeypatch):
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx2", "fma"}))
    model, effect, messages = tiny_in("bf16", encoder.tokenizer)
    assert effect == "fp32" and len(messages) == 1
    assert "falls back to fp32" in messages[0] and "avx512_bf16" in messages[0]
    assert model.encoder.layer[0].attention.self.query.weight.dtype == torch.float32


def test_bf16_with_native_support_stays_close_to_fp32(encoder, minilm_dir, monkeypatch):
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx512_bf16"}))
    bf16, messages = load(minilm_dir, "bf16")
    assert bf16.precision == "bf16" and messages == []
    assert bf16.model.encoder.layer[0].attention.self.query.weight.dtype == torch.bfloat16
    cosines = (bf16.encode(TEXTS[:3]) * encoder.encode(TEXTS[:3])).sum(axis=1)
    assert cosines.min() >= 0.999


def test_int8_keeps_the_vectors_and_warns_without_vnni(encoder, minilm_dir, monkeypatch):
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx2", "fma"}))
    int8, messages = load(minilm_dir, "int8")
    assert int8.precision == "int8" and len(messages) == 1 and "without VNNI" in messages[0]
    assert type(int8.model.encoder.layer[0].attention.self.query) is not torch.nn.Linear  # quantized
    cosines = (int8.encode(TEXTS) * encoder.encode(TEXTS)).sum(axis=1)
    assert cosines.min() >= 0.99
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx512_vnni"}))
    assert tiny_in("int8", encoder.tokenizer)[1:] == ("int8", [])


def test_int8_where_torch_cannot_falls_back_with_a_clear_message(encoder, monkeypatch):
    monkeypatch.setattr(precision, "int8_engine", lambda: None)
    model, effect, messages = tiny_in("int8", encoder.tokenizer)
    assert effect == "fp32" and messages == [
        "precision='int8' falls back to fp32: this torch build has no quantized CPU engine"]
    assert type(model.encoder.layer[0].attention.self.query) is torch.nn.Linear


def test_an_unknown_precision_is_a_clear_error(minilm_dir):
    with pytest.raises(ValueError, match="precision must be one of fp32, bf16, int8, got 'fp16'"):
        SentenceEncoder.from_pretrained(minilm_dir, precision="fp16")
    with pytest.raises(ValueError, match="precision must be one of fp32, bf16, int8"):
        ServerSettings(minilm_dir, precision="fp16").checked()


def test_encode_and_serve_take_a_precision_flag(capsys):
    from bertkit.cli import build_parser

    assert build_parser("encode").parse_args(["encode", "hi", "--precision", "INT8"]).precision == "int8"
    assert build_parser("serve").parse_args(["serve", "--precision", "bf16"]).precision == "bf16"
    with pytest.raises(SystemExit):
        build_parser("encode").parse_args(["encode", "hi", "--precision", "fp16"])
    assert "invalid choice: 'fp16'" in capsys.readouterr().err


@pytest.mark.slow  # torch.compile takes minutes on two cores
def test_a_compiled_encoder_gives_the_same_vectors(encoder, minilm_dir):
    compiled = SentenceEncoder.from_pretrained(minilm_dir, compile=True)
    np.testing.assert_allclose(compiled.encode(TEXTS), encoder.encode(TEXTS), atol=1e-5)
