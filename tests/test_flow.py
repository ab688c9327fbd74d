"""BERT-flow: the log-determinant against autograd's Jacobian, the inverse, the fit against the Gaussian MLE, the
module in a folder, and the ``bertkit flow`` command with its refusals."""

import json

import numpy as np
import pytest
import torch
from encoding_fixtures import build_folder, make_tiny_bert, sentences

from bertkit.cli import main
from bertkit.encoding import SentenceEncoder
from bertkit.encoding.flow import Flow, fit_flow


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory, minilm_dir):
    return make_tiny_bert(tmp_path_factory.mktemp("tiny-bert"), minilm_dir)


@pytest.fixture(scope="module")
def folder(tmp_path_factory, tiny_bert, minilm_dir):
    """Mean pooling then Normalize, as MiniLM, around the tiny BERT."""
    return build_folder(tmp_path_factory.mktemp("st") / "model", tiny_bert, minilm_dir, pooling="mean",
                        normalize=True)


def scrambled_flow(dimension, steps=2, hidden=8, seed=3):
    """A float64 flow with every parameter random, so that no layer is the identity it starts as."""
    flow = Flow(dimension, steps, hidden).double()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in flow.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator, dtype=torch.float64) * 0.5)
    return flow


def anisotropic(n, d, seed=0):
    """Correlated Gaussian vectors with scales from 0.1 to 5 and an offset, like raw sentence vectors' cone."""
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(d, d)) * np.linspace(0.1, 5, d)
    return rng.normal(size=(n, d)) @ mixing + rng.normal(size=d) * 3


def test_log_determinant_is_that_of_the_jacobian():
    flow = scrambled_flow(5)
    for x in torch.randn(3, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64):
        jacobian = torch.autograd.functional.jacobian(lambda v: flow.transform(v[None])[0][0], x)
        sign, expected = torch.linalg.slogdet(jacobian)
        assert sign != 0
        torch.testing.assert_close(flow.transform(x[None])[1][0], expected, rtol=1e-10, atol=1e-10)


def test_inverse_undoes_forward():
    flow = scrambled_flow(6, steps=3)
    x = torch.randn(20, 6, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    z = flow(x)
    assert (z - x).abs().max() > 0.1  # the scrambled flow moves the vectors
    torch.testing.assert_close(flow.inverse(z), x, rtol=1e-9, atol=1e-9)


def test_fit_makes_anisotropic_vectors_gaussian():
    x = anisotropic(1000, 8)
    flow = fit_flow(x, steps=3, hidden=32, epochs=10, batch_size=100, seed=0)
    with torch.no_grad():
        z = flow(torch.tensor(x, dtype=torch.float32)).double().numpy()
        unfitted = Flow(8, 3, 32)(torch.tensor(x, dtype=torch.float32)).double().numpy()
    gap = np.abs(np.cov(z.T) - np.eye(8)).max()
    assert gap < 0.2, gap
    assert np.abs(np.cov(unfitted.T) - np.eye(8)).max() > 1.0  # the threshold means something
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=0.1)
    # The best a Gaussian does on these vectors, in float64: its maximum-likelihood fit's NLL per dimension.
    _, logdet = np.linalg.slogdet(np.cov(x.T, bias=True))
    gaussian_nll = 0.5 * (logdet + 8 * np.log(2 * np.pi * np.e)) / 8
    with torch.no_grad():
        flow_nll = float(flow.nll(torch.tensor(x, dtype=torch.float32)))
    assert abs(flow_nll - gaussian_nll) < 0.05, (flow_nll, gaussian_nll)


def test_fit_is_seeded():
    x = anisotropic(300, 4)
    first, second = (fit_flow(x, steps=1, hidden=8, epochs=2, seed=5) for _ in range(2))
    other = fit_flow(x, steps=1, hidden=8, epochs=2, seed=6)
    for name, value in first.state_dict().items():
        torch.testing.assert_close(second.state_dict()[name], value, rtol=0, atol=0)
    assert not torch.equal(other.layers[1].lower, first.layers[1].lower)


def test_fit_bad_input():
    with pytest.raises(ValueError, match="a flow needs more vectors than dimensions: got 30 vectors of dimension 32; "
                                         "fit it on at least 33 texts"):
        fit_flow(np.ones((30, 32)))
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        fit_flow(np.ones((30, 1)))
    with pytest.raises(ValueError, match="NaN or infinite"):
        fit_flow(np.full((30, 4), np.nan))
    with pytest.raises(ValueError, match=r"holdout must be a share in \[0, 1\)"):
        fit_flow(anisotropic(30, 4), holdout=1.0)


def test_flow_command_and_folder(folder, tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(sentences(120)) + "\n")
    out = tmp_path / "flowed"
    assert main(["flow", "--model", str(folder), str(corpus), "-o", str(out), "--steps", "2", "--hidden", "16",
                 "--epochs", "3"]) == 0
    report = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert report["vectors"] == 120 and report["dimension"] == 32 and report["normalize"]
    entries = json.loads((out / "modules.json").read_text())
    assert [e["type"] for e in entries][2:] == ["bertkit.encoding.Flow", "sentence_transformers.models.Normalize"]
    assert json.loads((out / "2_Flow" / "config.json").read_text()) == {"in_features": 32, "out_features": 32,
                                                                         "steps": 2, "hidden": 16}
    flowed = SentenceEncoder.from_pretrained(out)
    flow = flowed.head[0]
    assert isinstance(flow, Flow) and flowed.dimension == 32
    texts = sentences(12)
    raw = SentenceEncoder.from_pretrained(folder).encode(texts, normalize=False)
    with torch.no_grad():
        want = flow(torch.from_numpy(raw)).numpy()
    want /= np.linalg.norm(want, axis=1, keepdims=True)
    got = flowed.encode(texts)
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert np.abs(got - raw / np.linalg.norm(raw, axis=1, keepdims=True)).max() > 1e-2  # the flow did something
    # The same fit in Python gives the same module: the command adds nothing but the folder.
    again = fit_flow(raw_corpus := SentenceEncoder.from_pretrained(folder).encode(sentences(120), normalize=False),
                     steps=2, hidden=16, epochs=3, seed=0)
    assert raw_corpus.shape == (120, 32)
    for name, value in again.state_dict().items():
        torch.testing.assert_close(flow.state_dict()[name], value, rtol=1e-5, atol=1e-5)
    # a refit of the flowed folder replaces its flow rather than stacking a second one
    assert main(["flow", "--model", str(out), str(corpus), "-o", str(tmp_path / "re"), "--steps", "1", "--hidden",
                 "8", "--epochs", "1"]) == 0
    assert [type(m).__name__ for m in SentenceEncoder.from_pretrained(tmp_path / "re").head] == ["Flow", "Normalize"]


def test_flow_command_refusals(folder, tmp_path, capsys):
    corpus, out = tmp_path / "corpus.txt", tmp_path / "out"
    corpus.write_text("\n".join(sentences(20)) + "\n")
    assert main(["flow", "--model", str(folder), str(corpus), "-o", str(out)]) == 2
    assert "a flow needs more texts than the vectors have dimensions" in (err := capsys.readouterr().err)
    assert "gives 20 texts for 32-d vectors; give at least 33" in err and not out.exists()
    corpus.write_text("\n \n")
    assert main(["flow", "--model", str(folder), str(corpus), "-o", str(out)]) == 2
    assert f"{corpus} holds no text: the flow is fitted on the vectors of a corpus" in capsys.readouterr().err
    out.mkdir()
    (out / "kept.txt").write_text("someone's file")
    assert main(["flow", "--model", str(folder), str(corpus), "-o", str(out)]) == 2
    assert f"{out} exists and is not empty" in capsys.readouterr().err
    assert (out / "kept.txt").read_text() == "someone's file"


def test_flow_folder_that_disagrees_with_its_config(tmp_path):
    Flow(8, 2, 16).save(tmp_path / "f")
    (tmp_path / "f" / "config.json").write_text(json.dumps({"in_features": 8, "out_features": 8, "steps": 2,
                                                            "hidden": 12}))
    with pytest.raises(ValueError, match=r"do not match its config.json: .*layers.2.net.0.weight has shape \(16, 4\), "
                                         r"the config says \(12, 4\)"):
        Flow.load(tmp_path / "f")
