"""XLNet's permutation LM objective (bertkit.pretraining.plm): the masks against the rule written out pair by pair,
partial prediction's ⌈n/K⌉ targets at the end of the order, the batch layout, and a tiny XLNet learning from it
(over consecutive segments of a document, with memory)."""

import math
import random

import pytest
import torch

from bertkit.corpora import rotten_tomatoes_reviews
from bertkit.model.xlnet import XLNetLMHeadModel, check_perm_mask
from bertkit.model.xlnet_architecture import XLNetConfig
from bertkit.pretraining.plm import (
    document_segments,
    num_targets,
    perm_mask_of,
    plm_batch,
    plm_example,
    plm_step,
)

SPECIAL = frozenset({3, 4})  # <sep>, <cls>: context, never predicted


def sequences(seed: int, count: int = 6) -> list[list[int]]:
    g = random.Random(seed)
    out = []
    for _ in range(count):
        body = [g.randrange(5, 40) for _ in range(g.randrange(1, 19))]
        out.append(body + [3, 4] if g.random() < 0.5 else body)
    return out


@pytest.mark.parametrize("seed", range(5))
def test_targets_are_the_last_n_over_k_of_a_permutation_of_the_predictable_tokens(seed):
    for ids in sequences(seed):
        example = plm_example(ids, random.Random(seed), special_ids=SPECIAL)
        predictable = [i for i, t in enumerate(ids) if t not in SPECIAL]
        assert sorted(example.order) == predictable
        assert len(example.targets) == math.ceil(len(predictable) / 6)
        assert example.targets == example.order[len(predictable) - len(example.targets):]


@pytest.mark.parametrize("seed", range(5))
def test_the_mask_is_the_factorisation_orders_rule(seed):
    """i may see j iff j is context, or both are targets and j comes before i in the order; checked pair by pair."""
    for ids in sequences(seed):
        example = plm_example(ids, random.Random(seed + 10), special_ids=SPECIAL)
        length = len(ids) + 2  # two padding positions: context, hidden only by the attention mask
        mask = perm_mask_of(example, length)
        targets = example.targets
        for i in range(length):
            for j in range(length):
                sees = j not in targets or (i in targets and targets.index(j) < targets.index(i))
                assert mask[i, j].item() == (0.0 if sees else 1.0), (i, j)
        check_perm_mask(mask[None], 1, length)  # the model's own check accepts it


def test_the_batch_lines_up_targets_labels_and_padding():
    rows = sequences(7)
    batch = plm_batch(rows, pad_id=0, rng=random.Random(1), special_ids=SPECIAL)
    length = max(len(r) for r in rows)
    predictions = max(num_targets(sum(t not in SPECIAL for t in r)) for r in rows)
    assert batch["input_ids"].shape == (6, length) and batch["perm_mask"].shape == (6, length, length)
    assert batch["target_mapping"].shape == (6, predictions, length) and batch["labels"].shape == (6, predictions)
    for row, ids in enumerate(rows):
        assert batch["input_ids"][row, :len(ids)].tolist() == ids  # nothing replaced by a mask token
        assert batch["input_ids"][row, len(ids):].eq(0).all() and batch["attention_mask"][row].sum() == len(ids)
        count = num_targets(sum(t not in SPECIAL for t in ids))
        mapping = batch["target_mapping"][row]
        assert mapping[:count].sum(-1).eq(1).all() and mapping[count:].eq(0).all()
        positions = mapping[:count].argmax(-1)
        assert batch["labels"][row, :count].tolist() == [ids[p] for p in positions]
        assert batch["labels"][row, count:].eq(-100).all()
        assert batch["perm_mask"][row][positions, positions].eq(1).all()  # no target sees itself
    again = plm_batch(rows, pad_id=0, rng=random.Random(1), special_ids=SPECIAL)
    assert all(torch.equal(batch[k], again[k]) for k in batch)  # the seed decides the orders


def test_document_segments_continue_each_stream_step_after_step():
    document = list(range(103))
    steps = document_segments(document, streams=3, length=10)
    assert len(steps) == 3 and all(len(rows) == 3 and all(len(r) == 10 for r in rows) for rows in steps)
    for s in range(3):
        stream = [token for rows in steps for token in rows[s]]
        assert stream == document[s * 34: s * 34 + 30]  # 103 // 3 = 34 tokens a stream, 3 whole segments of it


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="K must be an integer"):
        plm_example([5, 6, 7], random.Random(0), k=0)
    with pytest.raises(ValueError, match="not a special token"):
        plm_example([3, 4], random.Random(0), special_ids=SPECIAL)
    with pytest.raises(ValueError, match="at least one sequence"):
        plm_batch([], pad_id=0, rng=random.Random(0))
    with pytest.raises(ValueError, match="fewer than one segment"):
        document_segments(list(range(20)), streams=3, length=8)
    with pytest.raises(ValueError, match="streams must be"):
        document_segments(list(range(20)), streams=0, length=8)


def test_a_tiny_xlnet_learns_from_the_permutation_objective():
    """Trained on consecutive segments of a character-level document with memory, the held-out PLM loss (fixed
    orders) falls well below its starting point."""
    texts = [text.lower() for _, text in rotten_tomatoes_reviews()[:300]]
    vocab = {c: i + 1 for i, c in enumerate(sorted(set("".join(texts))))}
    document = [vocab[c] for text in texts[:260] for c in text]
    held_out = plm_batch([[vocab[c] for c in text][:40] for text in texts[260:]], 0, random.Random(7))
    torch.manual_seed(0)
    model = XLNetLMHeadModel(XLNetConfig(
        vocab_size=len(vocab) + 1, hidden_size=48, num_hidden_layers=2, num_attention_heads=4, intermediate_size=96,
        mem_len=32, hidden_dropout_prob=0.0, pad_token_id=0, bos_token_id=None, eos_token_id=None))

    def held_out_loss() -> float:
        model.eval()
        with torch.no_grad():
            return plm_step(model, held_out)[0].item()

    before = held_out_loss()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    rng, mems = random.Random(0), None
    model.train()
    for segments in document_segments(document, streams=8, length=32)[:60]:  # each stream reads on
        loss, stats, mems = plm_step(model, plm_batch(segments, 0, rng), mems)
        assert mems[0].shape == (32, 8, 48) and stats["predictions"] == 8 * 6
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert held_out_loss() < before - 0.5
