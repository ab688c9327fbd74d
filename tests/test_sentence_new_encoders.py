"""sentence-transformers folders whose Transformer module is RoFormer, XLM-R, DeBERTa-v2 or ModernBERT (built by
sentence-transformers itself over tiny random transformers models, every weight perturbed): SentenceEncoder gives
sentence-transformers' vectors for mean and cls pooling, and ``bertkit train-embeddings`` trains one into a folder
sentence-transformers reads back with equal vectors."""

import json

import numpy as np
import pytest
import torch
import transformers
from finetuning_fixtures import tiny_tokenizer
from new_encoder_fixtures import ARCHITECTURES, transformers_config
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

from bertkit.cli import main
from bertkit.encoding import SentenceEncoder

TEXTS = ["the film was superb", "a dull plot and really awful cast of the movie", "it is quite lovely", "x",
         "alice visited paris and met bob in rome"]


def perturb(model: torch.nn.Module, seed: int) -> None:
    """Every weight moved off its initial value (zero biases, unit norms included)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.05 * torch.randn(param.shape, generator=generator))


@pytest.fixture(scope="module")
def encoders(tmp_path_factory):
    """Each architecture's perturbed encoder with a fast WordPiece tokenizer (what sentence-transformers loads)."""
    root, tokenizer = tmp_path_factory.mktemp("st-encoders"), tiny_tokenizer()
    out = {}
    for i, model_type in enumerate(ARCHITECTURES):
        torch.manual_seed(i)
        folder = root / model_type
        model = transformers.AutoModel.from_config(transformers_config(model_type, tokenizer.vocab_size))
        perturb(model, i)
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        transformers.BertTokenizerFast.from_pretrained(folder).save_pretrained(folder)  # tokenizer.json
        out[model_type] = folder
    return out


def st_folder(encoder_dir, folder, pooling: str) -> SentenceTransformer:
    """sentence-transformers' own folder: Transformer(encoder_dir) + Pooling(pooling), saved to ``folder``."""
    transformer = Transformer(str(encoder_dir), max_seq_length=32)
    pool = Pooling(transformer.get_embedding_dimension(), pooling)
    SentenceTransformer(modules=[transformer, pool], device="cpu").save(str(folder))
    return SentenceTransformer(str(folder), device="cpu").eval()


@pytest.mark.parametrize("pooling", ["mean", "cls"])
@pytest.mark.parametrize("model_type", ARCHITECTURES)
def test_sentence_encoder_equals_sentence_transformers(encoders, tmp_path, model_type, pooling):
    theirs = st_folder(encoders[model_type], tmp_path / "st", pooling)
    ours = SentenceEncoder.from_pretrained(tmp_path / "st")
    assert ours.model.config.model_type == model_type and ours.pooling == pooling
    expected = theirs.encode(TEXTS, batch_size=8)
    got = ours.encode(TEXTS, batch_size=8)
    assert np.abs(got - expected).max() <= 1e-5


def test_train_embeddings_on_a_deberta_folder_saves_what_sentence_transformers_reads(encoders, tmp_path, capsys):
    st_folder(encoders["deberta-v2"], tmp_path / "st", "mean")
    subjects, verbs = ["alice", "bob", "carol"], ["visited", "met"]
    rows = [{"anchor": f"{s} {v} {p}", "positive": f"{p} {v} by {s}"}
            for s in subjects for v in verbs for p in ("paris", "rome", "oslo")]
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    assert main(["train-embeddings", f"model={tmp_path / 'st'}", f"train_file={train}", "batch_size=6", "epochs=1",
                 "lr=2e-3", "progress=false", f"output_dir={out}"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["steps"] == 3 and np.isfinite(report["final_loss"])
    trained = SentenceEncoder.from_pretrained(out / "model")
    before = SentenceEncoder.from_pretrained(tmp_path / "st")
    assert trained.model.config.model_type == "deberta-v2"
    assert np.abs(trained.encode(TEXTS) - before.encode(TEXTS)).max() > 1e-3  # the encoder was trained
    expected = SentenceTransformer(str(out / "model"), device="cpu").encode(TEXTS)
    assert np.abs(trained.encode(TEXTS) - expected).max() <= 1e-5
