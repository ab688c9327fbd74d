"""SentenceEncoder against sentence-transformers on the real MiniLM checkpoint."""

import numpy as np
import pytest
import torch

from bertkit import SentenceEncoder
from bertkit.encoding.pooling import Pooling

SENTENCES = [
    "First do it",
    "then do it right",
    "then do it better",
    "A considerably longer sentence, so that the batch has padding to mask out of every pooling strategy.",
    "Short.",
    "Émigré cafés serve naïve crème brûlée; 自然语言处理 too.",
]


@pytest.fixture(scope="module")
def encoder(minilm_dir):
    return SentenceEncoder.from_pretrained(minilm_dir)


@pytest.fixture(scope="module")
def reference(minilm_dir):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(minilm_dir), device="cpu")


def test_matches_sentence_transformers(encoder, reference):
    ours = encoder.encode(SENTENCES, pooling="mean", normalize=True, batch_size=4)
    theirs = reference.encode(SENTENCES, batch_size=4, normalize_embeddings=True)
    cosines = (ours * theirs).sum(axis=1)
    assert ours.shape == theirs.shape == (len(SENTENCES), 384)
    assert cosines.min() >= 0.99999, cosines
    assert np.abs(ours - theirs).max() < 1e-5


def test_input_order_and_single_string(encoder):
    batch = encoder.encode(SENTENCES, batch_size=2)
    alone = np.stack([encoder.encode(s) for s in SENTENCES])
    assert encoder.encode(SENTENCES[0]).shape == (384,)
    np.testing.assert_allclose(batch, alone, atol=1e-5)


def hf_hidden_states(minilm_dir, texts):
    import transformers

    tokenizer = transformers.BertTokenizer.from_pretrained(minilm_dir)
    model = transformers.BertModel.from_pretrained(minilm_dir).eval()
    enc = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model(**enc, output_hidden_states=True)
    return out, enc["attention_mask"]


def test_pooling_strategies_and_layers_match_transformers(encoder, minilm_dir):
    out, mask = hf_hidden_states(minilm_dir, SENTENCES)
    real = mask.unsqueeze(-1).bool()
    layer = out.hidden_states[-2]
    expected = {
        "mean": (layer * real).sum(1) / real.sum(1),
        "max": layer.masked_fill(~real, -1e9).amax(1),
        "cls": layer[:, 0],
    }
    for pooling, want in expected.items():
        got = encoder.encode(SENTENCES, pooling=pooling, layer=-2)
        assert np.abs(got - want.numpy()).max() < 1e-5, pooling
    pooled = encoder.encode(SENTENCES, pooling="pooled")
    assert np.abs(pooled - out.pooler_output.numpy()).max() < 1e-5
    both = encoder.encode(SENTENCES, pooling="cls", layer=[-1, 0])
    want = torch.cat([out.hidden_states[-1][:, 0], out.hidden_states[0][:, 0]], dim=-1)
    assert np.abs(both - want.numpy()).max() < 1e-5


def test_mean_and_max_ignore_padding():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert Pooling("mean")(hidden, mask).tolist() == [[2.0, 3.0]]
    assert Pooling("max")(hidden, mask).tolist() == [[3.0, 4.0]]
    assert Pooling("cls")(hidden, mask).tolist() == [[1.0, 2.0]]


def test_bad_input(encoder):
    with pytest.raises(ValueError, match="texts is empty"):
        encoder.encode([])
    with pytest.raises(ValueError, match=r"texts\[1\] must be a string, got NoneType"):
        encoder.encode(["ok", None])
    with pytest.raises(ValueError, match=r"texts\[0\] is empty"):
        encoder.encode(["", "fine"])
    assert encoder.encode(["", "fine"], allow_empty=True).shape == (2, 384)
    with pytest.raises(ValueError, match=r"layer must be hidden-state indices in \[-7, 6\]"):
        encoder.encode(["a"], layer=7)
    with pytest.raises(ValueError, match="pooling must be one of"):
        encoder.encode(["a"], pooling="median")
    with pytest.raises(ValueError, match="max_length=600 must be between 2 and the model's 512 positions"):
        encoder.encode(["a"], max_length=600)
    with pytest.raises(ValueError, match="text 0 has 602 tokens, more than max_length=256"):
        encoder.encode(["word " * 600], truncate=False)
    assert encoder.encode(["word " * 600]).shape == (1, 384)  # truncated to 256 tokens, as sentence-transformers
