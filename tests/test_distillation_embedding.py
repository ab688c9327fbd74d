"""Embedding distillation: sentence-encoder students against sentence-transformers, learning the teacher's
vectors, and a run on the user's own files."""

import json

import pytest
import torch
import torch.nn.functional as F
from finetuning_fixtures import sentiment_examples, tiny_tokenizer

from bertkit.config import BertConfig
from bertkit.distillation import (
    DistillConfig,
)
from bertkit.model import BertModel


def tiny_sentence_encoder(seed: int = 6):
    from bertkit.encoding import SentenceEncoder
    from bertkit.encoding.modules import FolderLayout, Normalize
    from bertkit.encoding.pooling import Pooling

    torch.manual_seed(seed)
    config = BertConfig(vocab_size=tiny_tokenizer().vocab_size, hidden_size=32, num_hidden_layers=4,
                        num_attention_heads=4, intermediate_size=64, max_position_embeddings=64)
    layout = FolderLayout(transformer_dir=None, pooling=Pooling(("mean",)), modules=[Normalize()], max_seq_length=32)
    return SentenceEncoder(BertModel(config), tiny_tokenizer(), layout=layout)


@pytest.mark.parametrize("narrow", [False, True])
def test_embedding_students_load_in_sentence_transformers_with_equal_vectors(tmp_path, narrow):
    from sentence_transformers import SentenceTransformer

    from bertkit.distillation.embedding import student_encoder

    teacher = tiny_sentence_encoder()
    options = dict(student_hidden_size=16, student_heads=2) if narrow else {}
    student = student_encoder(teacher, DistillConfig(mode="embedding", student_num_layers=2, **options)).eval()
    assert student.dimension == teacher.dimension == 32 and student.normalize
    if not narrow:  # every other layer of four: 0 and 2
        assert torch.equal(student.model.encoder.layer[1].output.dense.weight,
                           teacher.model.encoder.layer[2].output.dense.weight)
    student.save_pretrained(tmp_path / "student")
    texts = ["good film", "the plot was dull and weak", "alice visited rome"]
    theirs = SentenceTransformer(str(tmp_path / "student"), device="cpu").encode(texts)
    assert theirs.shape == (3, 32)
    assert abs(theirs - student.encode(texts)).max() < 1e-5


def test_an_embedding_student_learns_the_teachers_vectors():
    from bertkit.distillation.embedding import student_encoder, teacher_targets, unnormalized
    from bertkit.encoding.sentence_encoder import pad_batch

    teacher = tiny_sentence_encoder()
    student = student_encoder(teacher, DistillConfig(mode="embedding", student_hidden_size=16, student_heads=2,
                                                     student_num_layers=1))
    texts = [e["text"] for e in sentiment_examples(8, seed=7)]
    ids, _ = teacher.tokenize(texts)
    targets = teacher_targets(teacher, ids, batch_size=3)
    input_ids, mask = pad_batch(ids, 0)
    with torch.no_grad():  # computed in any batch order, the targets are the teacher's own unnormalized vectors
        assert torch.allclose(targets, unnormalized(teacher, input_ids, mask), atol=1e-5)
    optimizer = torch.optim.AdamW(student.parameters(), lr=1e-2)
    losses = []
    for _ in range(15):
        loss = F.mse_loss(unnormalized(student, input_ids, mask), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]


def test_embedding_distillation_learns_from_the_users_files_and_says_so(tmp_path, monkeypatch, capsys):
    """train_file's sentences are the only ones the teacher encodes and the student trains on; dev_file / test_file
    pairs are what it is scored on; results.json says where each came from and which teacher layers ran."""
    from bertkit.cli import main
    from bertkit.distillation import embedding, embedding_data

    def installed(*_):
        raise AssertionError("the installed pages were read although every file was given")

    monkeypatch.setattr(embedding_data, "python_docs_pairs", installed)
    monkeypatch.setattr(embedding_data.corpora, "rotten_tomatoes_reviews", installed)
    encoded = []
    real_targets = embedding.teacher_targets
    monkeypatch.setattr(embedding, "teacher_targets",
                        lambda teacher, ids, size: encoded.append(len(ids)) or real_targets(teacher, ids, size))
    tiny_sentence_encoder().save_pretrained(tmp_path / "teacher")
    texts = [e["text"] for e in sentiment_examples(30, seed=3)]
    (tmp_path / "my.txt").write_text("\n".join(texts) + "\n\n")
    for split, seed in (("dev", 4), ("test", 5)):
        rows = [{"query": e["text"].split()[0], "passage": e["text"]} for e in sentiment_examples(6, seed=seed)]
        (tmp_path / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    assert main(["distill", "mode=embedding", f"teacher={tmp_path / 'teacher'}", f"train_file={tmp_path / 'my.txt'}",
                 f"dev_file={tmp_path / 'dev.jsonl'}", f"test_file={tmp_path / 'test.jsonl'}", "student_num_layers=2",
                 "max_steps=2", "batch_size=8", "speed_rounds=1", "progress=false", f"output_dir={out}"]) == 0
    results = json.loads((out / "results.json").read_text())
    distinct = len(dict.fromkeys(texts))
    assert encoded == [distinct] and results["unlabeled_sentences"] == distinct
    assert results["data"] == {"train": str(tmp_path / "my.txt"), "dev": str(tmp_path / "dev.jsonl"),
                               "test": str(tmp_path / "test.jsonl"), "dev_pairs": 6}
    assert results["test_pairs"] == 6 and results["student_layers"] == [0, 2]  # every other layer of four
    assert f"{distinct} unlabeled sentences ({tmp_path / 'my.txt'})" in capsys.readouterr().err
