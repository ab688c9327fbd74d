"""`bertkit serve -unpadded`: packed batches give every strategy's padded vectors, and what they cannot honour is
refused when the settings are checked."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest
import torch

from bertkit.encoding import SentenceEncoder
from bertkit.model.unpadded import pack, unpadded_forward
from bertkit.serving.embedding import ServingModel
from bertkit.serving.settings import ServerSettings

TEXTS = ["a short one", "the second sentence is quite a bit longer than the first", "third ||| with a pair",
         "Unbelievably, the fifth text ||| wins the length contest by a wide margin here"]
STRATEGIES = ["REDUCE_MEAN", "REDUCE_MAX", "REDUCE_MEAN_MAX", "CLS_TOKEN", "SEP_TOKEN", "NONE", "CLS_POOLED"]


@pytest.fixture(scope="module")
def encoder(minilm_dir):
    return SentenceEncoder.from_pretrained(minilm_dir)


def serving(encoder, folder, **settings) -> ServingModel:
    return ServingModel(encoder.model, encoder.tokenizer, ServerSettings(folder, max_seq_len=None, **settings))


@pytest.fixture
def packed_calls(monkeypatch) -> list:
    """The unpadded forwards the serving model runs (so a test knows the packed path ran, not the padded one)."""
    import bertkit.serving.embedding as embedding

    calls, forward = [], embedding.unpadded_forward
    monkeypatch.setattr(embedding, "unpadded_forward", lambda *a, **k: calls.append(a[2:]) or forward(*a, **k))
    return calls


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_equals_the_padded_batch(encoder, minilm_dir, strategy, packed_calls):
    padded, tokens = serving(encoder, minilm_dir, pooling_strategy=strategy, pooling_layer=[-1, -3]).encode(TEXTS)
    for mode in ("repad", "loop"):
        server = serving(encoder, minilm_dir, pooling_strategy=strategy, pooling_layer=[-1, -3], unpadded=mode)
        packed, packed_tokens = server.encode(TEXTS)
        assert packed_tokens == tokens
        assert packed.shape == padded.shape
        np.testing.assert_allclose(packed, padded, atol=2e-5)
    assert [mode for _, mode in packed_calls] == ["repad", "loop"]  # one batch each, in the mode asked for


def test_tei_routes_equal_the_padded_batch(encoder, minilm_dir, packed_calls):
    ids = [encoder.tokenizer.encode(t) for t in TEXTS]
    padded, packed = serving(encoder, minilm_dir), serving(encoder, minilm_dir, unpadded="repad")
    np.testing.assert_allclose(packed.embed_ids(ids), padded.embed_ids(ids), atol=2e-5)
    vectors = packed.token_vectors(ids)
    np.testing.assert_allclose(vectors, padded.token_vectors(ids), atol=2e-5)
    assert not vectors[0, len(ids[0]):].any()  # zero past the shorter sequence's end, as the padded route gives
    assert len(packed_calls) == 2


def test_segment_ids_reach_the_packed_embeddings(encoder):
    """A pair's second segment changes the vectors: packed segment ids are used, not dropped."""
    ids = [encoder.tokenizer.encode("first part", "second part")]
    zeros = [[0] * len(ids[0])]
    ones = [[0] * 4 + [1] * (len(ids[0]) - 4)]
    with torch.inference_mode():
        plain, _ = unpadded_forward(encoder.model, pack(ids, zeros))
        paired, _ = unpadded_forward(encoder.model, pack(ids, ones))
        expected = encoder.model(torch.tensor(ids), token_type_ids=torch.tensor(ones)).last_hidden_state[0]
    assert not torch.allclose(plain, paired, atol=1e-3)
    torch.testing.assert_close(paired, expected, atol=2e-5, rtol=0)
    with pytest.raises(ValueError, match="one segment id per token"):
        pack(ids, [[0]])
    with pytest.raises(ValueError, match="segment ids must lie in"):
        unpadded_forward(encoder.model, pack(ids, [[5] * len(ids[0])]))


@pytest.mark.parametrize(("change", "message"), [
    (dict(unpadded="sideways"), "unpadded must be one of"),
    (dict(unpadded="repad", pooling_strategy="CLASSIFICATION"), "fine-tuned heads"),
    (dict(unpadded="repad", mask_cls_sep=True), "mask_cls_sep"),
])
def test_settings_refuse_what_packed_batches_cannot_honour(minilm_dir, change, message):
    settings = dataclasses.replace(ServerSettings(minilm_dir), **change)
    with pytest.raises(ValueError, match=message):
        settings.checked()
    assert dataclasses.replace(ServerSettings(minilm_dir), unpadded="nested").checked().unpadded == "nested"


def test_serve_flag_reaches_the_settings(minilm_dir):
    """``bertkit serve -unpadded`` (no mode: repad) parses into the settings the server checks."""
    code = ("import sys; from bertkit.cli import build_parser; import dataclasses;"
            "from bertkit.serving import ServerSettings;"
            "a = build_parser().parse_args(['serve', '-model_dir', sys.argv[1], '-unpadded']);"
            "names = {f.name for f in dataclasses.fields(ServerSettings)};"
            "print(ServerSettings(**{k: v for k, v in vars(a).items() if k in names}).checked().unpadded)")
    out = subprocess.run([sys.executable, "-c", code, str(minilm_dir)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "repad"
