"""The pieces of ``objective: plm`` (bertkit.pretraining.plm_run): the corpus as side-by-side token streams, resumable
batches, the memory carried from step to step, the unigram baseline against its formula, and a tiny XLNet trained
by bertkit's Trainer that learns and reloads in transformers with the same logits."""

import math
import types
from collections import Counter

import pytest
import torch
import transformers

from bertkit.config import BertConfig
from bertkit.corpora import rotten_tomatoes_reviews
from bertkit.pretraining.plm_run import (
    PLMBatches,
    PLMStep,
    evaluate_plm,
    plm_data,
    plm_model,
    token_stream,
)
from bertkit.pretraining.run import special_ids
from bertkit.tokenization import BertTokenizer
from bertkit.training.loop import Trainer, TrainingArguments


@pytest.fixture(scope="module")
def tokenizer(minilm_dir):
    return BertTokenizer.from_pretrained(minilm_dir)


def run_config(tmp_path, documents: int = 120, **extra):
    reviews = [text for _, text in rotten_tomatoes_reviews()[: 5 * documents]]
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n\n".join("\n".join(reviews[i:i + 5]) for i in range(0, len(reviews), 5)) + "\n")
    return types.SimpleNamespace(**dict(corpus=[str(corpus)], corpus_format="lines", eval_fraction=0.1, batch_size=8,
                                        max_seq_length=32, seed=0, eval_batches=4) | extra)


def test_documents_become_one_stream_read_side_by_side(tokenizer):
    stream = token_stream([["a good film ."], [], ["a bad one", "indeed"]], tokenizer, separator=102)
    first, second = tokenizer.text_to_ids("a good film ."), tokenizer.text_to_ids("a bad one") + \
        tokenizer.text_to_ids("indeed")
    assert stream == first + [102] + second  # an empty document adds nothing, not a second separator
    batches = PLMBatches(list(range(1000, 1100)), batch_size=3, length=8, pad=0, special=set(), seed=1)
    seen = [batches.next_batch() for _ in range(5)]  # 100 // 3 = 33 a stream: 4 segments, then the streams restart
    assert [b["reset_memory"] for b in seen] == [True, False, False, False, True]
    assert seen[1]["input_ids"][:, 0].tolist() == [1008, 1041, 1074]  # each row continues its stream
    assert torch.equal(seen[4]["input_ids"], seen[0]["input_ids"])
    state = batches.state_dict()
    following = batches.next_batch()
    resumed = PLMBatches(list(range(1000, 1100)), batch_size=3, length=8, pad=0, special=set(), seed=1)
    resumed.load_state_dict(state)
    again = resumed.next_batch()
    assert all(torch.equal(following[k], again[k]) for k in ("input_ids", "perm_mask", "target_mapping", "labels"))
    with pytest.raises(ValueError, match="fewer than one batch"):
        PLMBatches(list(range(20)), batch_size=3, length=8, pad=0, special=set())


def test_the_step_carries_memory_until_the_streams_restart():
    model = plm_model(BertConfig(vocab_size=1200, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                 intermediate_size=24, pad_token_id=0), mem_len=12)
    batches = PLMBatches(list(range(1000, 1100)), batch_size=3, length=8, pad=0, special=set())
    step = PLMStep()
    lengths = []
    for _ in range(5):
        loss, stats = step(model, batches.next_batch())
        assert math.isfinite(loss.item()) and stats["tokens"] == 24
        lengths.append(step.mems[0].shape[0])
    assert lengths == [8, 12, 12, 12, 8] and step.mems[0].shape[1:] == (3, 16)  # the fifth step restarts
    batch = PLMBatches(list(range(1000, 1100)), batch_size=3, length=8, pad=0, special=set()).next_batch()
    model.eval()
    with torch.no_grad():
        fresh = PLMStep()(model, batch)[0]
        assert torch.equal(step(model, batch)[0], fresh)  # a restart drops the memory
        assert not torch.equal(step(model, batch | {"reset_memory": False})[0], fresh)  # else it is read


def test_held_out_batches_are_fixed_and_the_unigram_baseline_is_its_formula(tmp_path, tokenizer):
    config = run_config(tmp_path)
    special = special_ids(tokenizer)
    stream, held_out, unigram = plm_data(config, tokenizer, special)
    _, again, _ = plm_data(config, tokenizer, special)
    assert all(torch.equal(a[k], b[k]) for a, b in zip(held_out, again, strict=True) for k in ("perm_mask", "labels"))
    assert [b["reset_memory"] for b in held_out] == [True] + [False] * (len(held_out) - 1)
    counts, size = Counter(stream), len(tokenizer)
    targets = [t for b in held_out for t in b["labels"].flatten().tolist() if t != -100]
    expected = -sum(math.log((counts[t] + 0.1) / (len(stream) + 0.1 * size)) for t in targets) / len(targets)
    model = plm_model(BertConfig.preset("tiny", vocab_size=size), mem_len=32)
    metrics = evaluate_plm(model, held_out, unigram)
    assert metrics["unigram_baseline_loss"] == pytest.approx(expected, rel=1e-9)
    assert metrics["predictions"] == len(targets)
    with pytest.raises(ValueError, match="fewer than one segment"):
        plm_data(run_config(tmp_path, documents=20, max_seq_length=400), tokenizer, special)


def test_a_tiny_xlnet_trained_by_the_trainer_learns_and_loads_in_transformers(tmp_path, tokenizer):
    config = run_config(tmp_path)
    special = special_ids(tokenizer)
    stream, held_out, unigram = plm_data(config, tokenizer, special)
    torch.manual_seed(0)
    model = plm_model(BertConfig.preset("tiny", vocab_size=len(tokenizer), hidden_dropout_prob=0.0), mem_len=32)
    before = evaluate_plm(model, held_out, unigram)["plm_loss"]
    batches = PLMBatches(stream, 8, 32, special.pad, {special.cls, special.sep, special.pad, special.mask})
    args = TrainingArguments(output_dir=str(tmp_path / "out"), max_steps=40, learning_rate=2e-3, warmup_steps=5,
                             progress=False, device="cpu")
    Trainer(model, args, batches, PLMStep()).train()
    after = evaluate_plm(model, held_out, unigram)["plm_loss"]
    assert after < before - 1.0
    folder = model.save_pretrained(tmp_path / "model")
    theirs = transformers.XLNetLMHeadModel.from_pretrained(folder).eval()
    batch = {k: held_out[0][k] for k in ("input_ids", "attention_mask", "perm_mask", "target_mapping")}
    model.eval()
    with torch.no_grad():
        assert (model(**batch).logits - theirs(**batch).logits).abs().max() <= 1e-4
