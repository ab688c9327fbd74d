"""Subword regularisation in `bertkit finetune` (``subword_alpha``): every epoch trains on another seeded sampling of
the same rows, evaluation and the saved folder keep the best segmentation, and a resumed run sees the same batches.

Oracles: the tokenizer's best segmentation (the same characters decoded back) and the uninterrupted batch stream."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import transformers
from finetuning_fixtures import sentiment_examples, tiny_dir  # noqa: F401
from sentencepiece_fixtures import training_lines

import bertkit.finetuning.train as train_module
from bertkit.finetuning.config import FinetuneConfig
from bertkit.finetuning.predict import SequenceClassifier
from bertkit.tokenization.unigram_training import train_unigram_folder
from bertkit.training.batches import EpochBatches


def write_jsonl(path, rows) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


@pytest.fixture(scope="module")
def albert_dir(tmp_path_factory):
    """A random tiny ALBERT whose tokenizer is a Unigram model trained by bertkit on English and the task's words."""
    root = tmp_path_factory.mktemp("albert-unigram")
    text = root / "text.txt"
    lines = list(training_lines()[:400]) + [e["text"] for e in sentiment_examples(200, 9)]
    text.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tokenizer = train_unigram_folder([str(text)], root / "model", 400, "albert", character_coverage=0.995)
    torch.manual_seed(0)
    config = transformers.AlbertConfig(vocab_size=len(tokenizer), embedding_size=16, hidden_size=32,
                                       num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                                       max_position_embeddings=64)
    transformers.AlbertModel(config).save_pretrained(root / "model")
    return root / "model"


def quick(tmp_path, model, **options) -> FinetuneConfig:
    data = {f"{split}_file": write_jsonl(tmp_path / f"{split}.jsonl", sentiment_examples(n, seed))
            for split, n, seed in (("train", 48, 0), ("dev", 16, 1), ("test", 16, 2))}
    defaults = dict(model=str(model), output_dir=str(tmp_path / "out"), max_length=32, batch_size=16, epochs=3,
                    learning_rate=3e-3, progress=False, seed=1, threads=1, subword_alpha=0.5)
    return FinetuneConfig(**(defaults | data | options))


def text_of(tokenizer, ids) -> str:
    return tokenizer.decode(ids, skip_special_tokens=True).replace(" ", "")


def test_each_epoch_trains_on_another_sampling_of_the_same_rows(albert_dir, tmp_path, monkeypatch):
    seen = []
    sample = train_module.sampled_features

    def spy(task, rows, tokenizer, config, epoch):
        features = sample(task, rows, tokenizer, config, epoch)
        assert tokenizer.sampling is None  # dev, test and the saved folder see the best segmentation
        seen.append((epoch, [f["input_ids"] for f in features], tokenizer))
        return features

    monkeypatch.setattr(train_module, "sampled_features", spy)
    result = train_module.finetune(quick(tmp_path, albert_dir))
    assert [epoch for epoch, _, _ in seen] == [0, 1, 2]
    tokenizer = seen[0][2]
    rows = [json.loads(line) for line in (tmp_path / "train.jsonl").read_text().splitlines()]
    best = [tokenizer.encode(row["text"], truncation=True, max_length=32) for row in rows]
    epochs = [ids for _, ids, _ in seen]
    assert best != epochs[0] != epochs[1] != epochs[2]  # a fresh segmentation every epoch
    for ids in epochs:  # … of the same text
        assert [text_of(tokenizer, x) for x in ids] == [text_of(tokenizer, x) for x in best]
    classifier = SequenceClassifier.from_pretrained(Path(result.output_dir) / "best")
    assert classifier.tokenizer.sampling is None
    assert classifier.predict(["a short text to label"])  # the saved folder predicts with the best segmentation


def test_resampling_is_a_function_of_the_epoch_so_resume_is_exact():
    def resample(epoch: int) -> list[int]:
        return [100 * epoch + i for i in range(10)]

    full = EpochBatches(resample(0), 4, list, seed=3, resample=resample)
    stream = [full.next_batch() for _ in range(9)]
    assert {x // 100 for batch in stream[3:6] for x in batch} == {1}  # epoch 1 reads epoch 1's examples
    resumed = EpochBatches(resample(0), 4, list, seed=3, resample=resample)
    head = [resumed.next_batch() for _ in range(4)]
    state = resumed.state_dict()
    again = EpochBatches(resample(0), 4, list, seed=3, resample=resample)
    again.load_state_dict(state)
    assert head + [again.next_batch() for _ in range(5)] == stream
    broken = EpochBatches(resample(0), 4, list, resample=lambda epoch: list(range(9)))
    with pytest.raises(ValueError, match="gave 9 examples instead of 10"):
        [broken.next_batch() for _ in range(4)]


def test_refusals_name_the_problem(tiny_dir, tmp_path):  # noqa: F811
    with pytest.raises(ValueError, match="has one segmentation per text"):
        train_module.finetune(quick(tmp_path, tiny_dir))  # a WordPiece folder
    for changes, message in [(dict(subword_alpha=-1.0), "must be a number > 0"),
                             (dict(subword_nbest_size=0), "0 and 1 sample nothing"),
                             (dict(long_text="sliding"), "long_text: sliding"),
                             (dict(subword_alpha=None, subword_nbest_size=4), "read with subword_alpha")]:
        with pytest.raises(ValueError, match=message):
            quick(tmp_path, tiny_dir, **changes)
    with pytest.raises(ValueError, match="question answering"):
        FinetuneConfig(task="question_answering", subword_alpha=0.1)
