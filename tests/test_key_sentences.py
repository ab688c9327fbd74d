"""long_text: key_sentences — the selection against a cosine ranking computed here in float64, the task's window
against sentence vectors computed here from the model's embedding table (and sentence-transformers' vectors), the
fallback and the refusals, and a fine-tuned folder that predicts the same after reloading."""

import json
import logging
import math
import random

import numpy as np
import pytest
import torch
from finetuning_fixtures import FILLER, NEGATIVE, POSITIVE, tiny_dir, tiny_tokenizer  # noqa: F401

from bertkit.finetuning.config import FinetuneConfig
from bertkit.finetuning.data import LabelMap
from bertkit.finetuning.key_sentences import key_sentence_run, select_sentences
from bertkit.finetuning.long_tasks import build_task
from bertkit.finetuning.models import BertForSequenceClassification, TaskConfig
from bertkit.finetuning.predict import load_predictor
from bertkit.finetuning.train import finetune


def cosine_ranking(vectors: np.ndarray) -> list[int]:
    """Indices by cosine similarity to the mean of the vectors, best first, written out in float64."""
    rows = [[float(x) for x in v] for v in vectors]
    centre = [sum(col) / len(rows) for col in zip(*rows, strict=True)]

    def cos(v):
        dot = sum(a * b for a, b in zip(v, centre, strict=True))
        return dot / (math.sqrt(sum(a * a for a in v)) * math.sqrt(sum(b * b for b in centre)))
    return sorted(range(len(rows)), key=lambda i: -cos(rows[i]))


def test_equal_sentences_keep_the_top_ranked_in_text_order():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(12, 8))
    kept = select_sentences([5] * 12, vectors, budget=20)
    assert kept == sorted(cosine_ranking(vectors)[:4])


@pytest.mark.parametrize("seed", range(5))
def test_greedy_fill_fits_the_budget_and_skips_only_what_overflows(seed):
    rng = np.random.default_rng(seed)
    vectors, lengths = rng.normal(size=(15, 6)), [int(x) for x in rng.integers(1, 20, 15)]
    budget = 40
    kept = select_sentences(lengths, vectors, budget)
    assert kept == sorted(kept) and sum(lengths[i] for i in kept) <= budget
    ranking = cosine_ranking(vectors)
    for j in set(range(15)) - set(kept):  # a better-ranked skipped sentence did not fit beside those kept before it
        before = [i for i in ranking[:ranking.index(j)] if i in kept]
        assert sum(lengths[i] for i in before) + lengths[j] > budget


def test_run_joins_kept_sentences_and_cuts_a_lone_long_one():
    vectors = np.array([[1.0, 0.0], [1.0, 0.05], [-1.0, 0.0]])
    ids = [[1, 2], [3, 4, 5], [6]]
    assert cosine_ranking(vectors) == [1, 0, 2]
    assert key_sentence_run(ids, vectors, 6) == [1, 2, 3, 4, 5, 6]
    assert key_sentence_run(ids, vectors, 5) == [1, 2, 3, 4, 5]
    assert key_sentence_run(ids, vectors, 4) == [3, 4, 5, 6]  # the second best does not fit; the third does
    assert key_sentence_run([[7] * 9, [8] * 9, [9] * 9], vectors, 4) == [8] * 4  # none fits: the best, cut


def long_text(rng: random.Random, sentences: int) -> str:
    return " ".join(f"The {rng.choice(FILLER)} {rng.choice(FILLER)} was {rng.choice(POSITIVE + NEGATIVE)}."
                    for _ in range(sentences))


def task_for(tmp_path, model, **options):
    config = FinetuneConfig(model=None, output_dir=str(tmp_path), max_length=24, long_text="key_sentences",
                            progress=False, **options)
    return build_task(config, tiny_tokenizer(), LabelMap(["neg", "pos"]), model)


def test_window_is_the_key_sentences_by_the_models_embeddings(tmp_path, tiny_dir):  # noqa: F811
    tokenizer = tiny_tokenizer()
    model = BertForSequenceClassification.from_pretrained(
        tiny_dir, config=TaskConfig.from_json_file(tiny_dir / "config.json"))
    task = task_for(tmp_path, model)
    text = long_text(random.Random(3), 9)
    sentences = [s.strip() + "." for s in text.split(".") if s.strip()]
    ids = [tokenizer.text_to_ids(s) for s in sentences]
    table = model.bert.embeddings.word_embeddings.weight.detach().double().numpy()
    vectors = np.array([table[run].mean(0) for run in ids])
    assert {len(run) for run in ids} == {6}  # "the x y was z ." : three of them fill the 22-token budget
    expected = [t for i in sorted(cosine_ranking(vectors)[:3]) for t in ids[i]]
    window, types = task.windows({"text": text})[0]
    assert window == [tokenizer.cls_token_id, *expected, tokenizer.sep_token_id] and len(window) <= 24
    assert types == [0] * len(window)


def test_no_sentence_boundary_falls_back_to_head_with_a_warning(tmp_path, tiny_dir, caplog):  # noqa: F811
    model = BertForSequenceClassification.from_pretrained(
        tiny_dir, config=TaskConfig.from_json_file(tiny_dir / "config.json"))
    text = " ".join(["the film was good and"] * 10)
    with caplog.at_level(logging.WARNING):
        window, _ = task_for(tmp_path, model).windows({"text": text})[0]
    assert window[1:-1] == tiny_tokenizer().text_to_ids(text)[:22]
    assert "no sentence boundary" in caplog.text and "(head)" in caplog.text


def test_sentence_encoder_folder_ranks_like_sentence_transformers(tmp_path, minilm_dir):
    st = pytest.importorskip("sentence_transformers")
    text = ("The plot is thin. The acting is superb and warm. A superb, warm cast carries it. "
            "Parking downtown was a nightmare. The cast is warm and the acting superb.")
    config = FinetuneConfig(model=str(minilm_dir), output_dir=str(tmp_path), max_length=20,
                            long_text="key_sentences", key_sentence_model=str(minilm_dir), progress=False)
    from bertkit.tokenization import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(minilm_dir)
    task = build_task(config, tokenizer, LabelMap(["neg", "pos"]))
    sentences = [s.strip() + "." for s in text.split(".") if s.strip()]
    vectors = st.SentenceTransformer(str(minilm_dir), device="cpu").encode(sentences)
    ids = [tokenizer.text_to_ids(s) for s in sentences]
    kept = select_sentences([len(r) for r in ids], vectors, 18)
    assert task.windows({"text": text})[0][0][1:-1] == [t for i in kept for t in ids[i]]


def test_a_folder_that_is_not_a_sentence_encoder_is_refused(tmp_path, tiny_dir):  # noqa: F811
    with pytest.raises(ValueError, match="is not a sentence encoder: it has no modules.json"):
        task_for(tmp_path, None, key_sentence_model=str(tiny_dir))
    with pytest.raises(ValueError, match="cuts texts for classification"):
        build_task(FinetuneConfig(task="token_classification", long_text="key_sentences", progress=False),
                   tiny_tokenizer(), LabelMap(["O"]), None)


def test_fine_tuned_folder_keeps_the_strategy_and_predicts_the_same(tmp_path, tiny_dir):  # noqa: F811
    rng = random.Random(0)
    rows = []
    for i in range(48):
        label = "pos" if i % 2 else "neg"
        text = long_text(rng, 4) + f" The film was {rng.choice(POSITIVE if label == 'pos' else NEGATIVE)}."
        rows.append({"text": text, "label": label})
    for split, part in (("train", rows[:32]), ("dev", rows[32:])):
        (tmp_path / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in part))
    config = FinetuneConfig(model=str(tiny_dir), output_dir=str(tmp_path / "out"), max_length=16, batch_size=8,
                            epochs=1, learning_rate=1e-3, progress=False, seed=0, threads=1,
                            train_file=str(tmp_path / "train.jsonl"), dev_file=str(tmp_path / "dev.jsonl"),
                            long_text="key_sentences")
    finetune(config)
    best = tmp_path / "out" / "best"
    assert json.loads((best / "config.json").read_text())["finetuning"]["long_text"] == "key_sentences"
    texts = [r["text"] for r in rows[32:]]
    model = BertForSequenceClassification.from_pretrained(best)
    task = build_task(config, tiny_tokenizer(), LabelMap(["neg", "pos"]), model)
    before = task.predict(model, [{"text": t} for t in texts])
    predictor = load_predictor(best)
    assert predictor.task.config.long_text == "key_sentences"
    torch.testing.assert_close(torch.tensor(predictor.predict_logits(texts)), torch.tensor(before))
