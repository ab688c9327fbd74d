"""BERT-whitening: the fit against a transcription of the paper's numpy code, the module in a folder, the command."""

import json

import numpy as np
import pytest
import torch
from encoding_fixtures import build_folder, make_tiny_bert, sentences

from bertkit.cli import main
from bertkit.encoding import SentenceEncoder, Whitening, fit_whitening


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory, minilm_dir):
    return make_tiny_bert(tmp_path_factory.mktemp("tiny-bert"), minilm_dir)


@pytest.fixture(scope="module")
def folder(tmp_path_factory, tiny_bert, minilm_dir):
    """Mean pooling then Normalize, as MiniLM, around the tiny BERT."""
    return build_folder(tmp_path_factory.mktemp("st") / "model", tiny_bert, minilm_dir, pooling="mean",
                        normalize=True)


def paper_whitening(vecs, k):
    """compute_kernel_bias + transform_and_normalize of github.com/bojone/BERT-whitening, in numpy."""
    mu = vecs.mean(axis=0, keepdims=True)
    cov = np.cov(vecs.T)
    u, s, _ = np.linalg.svd(cov)
    kernel = np.dot(u, np.diag(1 / np.sqrt(s)))[:, :k]
    return (vecs - mu).dot(kernel)


def correlated(n, d, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) + rng.normal(size=d) * 5


def test_fit_matches_the_paper_and_whitens():
    x = correlated(300, 12)
    for k in (12, 5):
        ours = fit_whitening(x, k)(torch.tensor(x, dtype=torch.float32)).double().numpy()
        theirs = paper_whitening(x, k)
        # singular vectors have arbitrary signs: compare what does not depend on them
        np.testing.assert_allclose(ours @ ours.T, theirs @ theirs.T, rtol=1e-3, atol=1e-3)
        assert ours.shape == (300, k)
        np.testing.assert_allclose(ours.mean(axis=0), 0, atol=1e-4)
        np.testing.assert_allclose(np.cov(ours.T), np.eye(k), atol=1e-4)


def test_fit_bad_input():
    with pytest.raises(ValueError, match="more vectors than dimensions .* got 30 vectors of dimension 32; fit it on "
                                         "at least 33 texts"):
        fit_whitening(np.ones((30, 32)))
    with pytest.raises(ValueError, match="k must be between 1 and the vectors' dimension 12, got 13"):
        fit_whitening(correlated(50, 12), 13)


def test_whitening_in_the_encoder_and_its_folder(folder, tmp_path):
    encoder = SentenceEncoder.from_pretrained(folder)
    corpus, texts = sentences(200), sentences(20)
    raw = encoder.encode(texts, normalize=False)
    whitening = encoder.fit_whitening(corpus, k=16)
    assert (whitening.in_features, whitening.out_features, encoder.dimension) == (32, 16, 16)
    assert [type(m).__name__ for m in encoder.head] == ["Whitening", "Normalize"]
    want = whitening(torch.tensor(raw)).numpy()
    want /= np.linalg.norm(want, axis=1, keepdims=True)
    whitened = encoder.encode(texts)
    np.testing.assert_allclose(whitened, want, atol=1e-5)
    # the corpus's own vectors come out with identity covariance
    corpus_vectors = encoder.encode(corpus, normalize=False)
    np.testing.assert_allclose(np.cov(corpus_vectors.T), np.eye(16), atol=1e-2)
    encoder.save_pretrained(tmp_path / "whitened")
    entries = json.loads((tmp_path / "whitened" / "modules.json").read_text())
    assert [e["type"] for e in entries][2:] == ["bertkit.encoding.Whitening", "sentence_transformers.models.Normalize"]
    np.testing.assert_allclose(SentenceEncoder.from_pretrained(tmp_path / "whitened").encode(texts), whitened,
                               atol=1e-6)
    # refitting replaces the whitening rather than stacking a second one
    encoder.fit_whitening(corpus, k=8)
    assert [type(m).__name__ for m in encoder.head] == ["Whitening", "Normalize"] and encoder.dimension == 8


def test_whitening_folder_with_wrong_sizes(folder, tmp_path):
    encoder = SentenceEncoder.from_pretrained(folder)
    encoder.fit_whitening(sentences(100), k=8)
    encoder.save_pretrained(tmp_path / "w")
    config_file = tmp_path / "w" / "2_Whitening" / "config.json"
    config_file.write_text(json.dumps({"in_features": 32, "out_features": 16}))
    with pytest.raises(ValueError, match=r"declares 32 → 16 dimensions, but its weight is 32 × 8"):
        SentenceEncoder.from_pretrained(tmp_path / "w")
    Whitening(torch.zeros(48), torch.zeros(48, 8)).save(tmp_path / "w" / "2_Whitening")
    with pytest.raises(ValueError, match=r"module 2 \(Whitening\) takes 48-d vectors, but the module before it "
                                         r"gives 32-d ones"):
        SentenceEncoder.from_pretrained(tmp_path / "w")


def test_whiten_command(folder, tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(sentences(120)) + "\n")
    out = tmp_path / "whitened"
    assert main(["whiten", "--model", str(folder), str(corpus), "-k", "16", "-o", str(out)]) == 0
    report = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert report["vectors"] == 120 and (report["in_features"], report["out_features"]) == (32, 16)
    encoder = SentenceEncoder.from_pretrained(out)
    assert encoder.dimension == 16 and encoder.normalize
    expected = SentenceEncoder.from_pretrained(folder)
    expected.fit_whitening(sentences(120), k=16)
    np.testing.assert_allclose(encoder.encode(sentences(10)), expected.encode(sentences(10)), atol=1e-5)

    assert main(["whiten", "--model", str(folder), str(corpus), "-k", "16", "-o", str(out)]) == 2
    assert "exists and is not empty" in capsys.readouterr().err
    corpus.write_text("\n".join(sentences(20)) + "\n")
    assert main(["whiten", "--model", str(folder), str(corpus), "-o", str(tmp_path / "w2")]) == 2
    assert "got 20 vectors of dimension 32" in capsys.readouterr().err
    assert not (tmp_path / "w2").exists()
