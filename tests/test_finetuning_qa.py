"""Extractive QA mechanics: windows over long contexts, gold positions that map back to the answer's characters,
n-best decoding, and a tiny model that learns "who" / "where" questions (no public QA set installs offline)."""

import json

import numpy as np
import pytest
from finetuning_fixtures import qa_examples, tiny_dir, tiny_tokenizer  # noqa: F401

from bertkit.finetuning.config import FinetuneConfig
from bertkit.finetuning.data import LabelMap, load_examples
from bertkit.finetuning.predict import QuestionAnswerer
from bertkit.finetuning.qa import QATask, n_best_spans
from bertkit.finetuning.train import finetune


def test_windows_cover_long_contexts_and_gold_spans_map_back_to_the_answer():
    examples = qa_examples(40, seed=3, filler=30)
    config = FinetuneConfig(task="question_answering", max_length=16, doc_stride=5)
    task = QATask(config, tiny_tokenizer(), LabelMap([]))
    features = task.features(examples)
    assert all(len(f["input_ids"]) <= 16 for f in features)
    for doc, example in enumerate(examples):
        mine = [f for f in features if f["doc"] == doc]
        assert len(mine) > 1  # 30+ context tokens in 12-token windows
        covered = {span for f in mine for span in f["spans"]}
        assert len(covered) == len(task.tokenizer.text_to_ids(example["context"]))
        holding = [f for f in mine if f["start_position"]]
        assert holding, "some window holds the whole answer"
        for f in holding:
            first, last = f["start_position"] - f["context_start"], f["end_position"] - f["context_start"]
            text = example["context"][f["spans"][first][0]:f["spans"][last][1]]
            assert text == example["answer"]
        assert all(f["end_position"] == 0 for f in mine if not f["start_position"])


def test_n_best_spans_respect_order_and_maximum_length():
    start = np.array([9.0, 0.0, 5.0, 1.0, 0.0, 4.0])
    end = np.array([9.0, 0.0, 0.0, 2.5, 6.0, 1.0])
    spans = n_best_spans(start, end, context_start=2, context_length=4, n_best=4, max_answer_length=2)
    assert spans[0] == (7.5, 0, 1)  # not [CLS] or the question (9 + 9), nor 3 tokens long (5 + 6)
    assert all(0 <= first <= last < first + 2 for _, first, last in spans)
    assert [s for s, _, _ in spans] == sorted((s for s, _, _ in spans), reverse=True)


def test_tiny_model_learns_questions_and_answers_with_character_offsets(tmp_path, tiny_dir):  # noqa: F811
    for split, rows in (("train", qa_examples(400, 0, filler=16)), ("dev", qa_examples(60, 1, filler=16))):
        (tmp_path / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert load_examples(tmp_path / "dev.jsonl", "question_answering")[0]["answer_start"] >= 0
    config = FinetuneConfig(task="question_answering", model=str(tiny_dir), train_file=str(tmp_path / "train.jsonl"),
                            dev_file=str(tmp_path / "dev.jsonl"), max_length=18, doc_stride=6, epochs=10,
                            batch_size=16, learning_rate=5e-3, head_lr_scale=1.0, output_dir=str(tmp_path / "out"),
                            progress=False, threads=1, seed=0)
    result = finetune(config)  # contexts (~22 tokens) exceed the 18-token window
    assert result.metric == "f1" and result.dev["exact_match"] >= 0.8
    qa = QuestionAnswerer.from_pretrained(tmp_path / "out" / "best")
    unseen = qa_examples(4, seed=5, filler=16)  # fresh contexts of the training distribution
    out = qa.predict([e["question"] for e in unseen], [e["context"] for e in unseen])
    answers = [e["answer"] for e in unseen]
    assert [o["answer"] for o in out] == answers
    assert [e["context"][o["start"]:o["end"]] for o, e in zip(out, unseen, strict=True)] == answers


def test_bad_qa_rows_are_refused(tmp_path):
    (tmp_path / "bad.jsonl").write_text(json.dumps({"question": "who", "context": "bob met", "answer": "alice",
                                                    "answer_start": 0}) + "\n")
    with pytest.raises(ValueError, match="the answer 'alice' is not at answer_start=0"):
        load_examples(tmp_path / "bad.jsonl", "question_answering")
