"""EpochBatches: every example once per epoch, a fresh order each epoch, length buckets, exact resumption."""

import pytest

from bertkit.training.batches import EpochBatches


def collate(items):
    return {"items": list(items)}


def test_each_epoch_visits_every_example_once_in_a_new_order():
    source = EpochBatches(list(range(10)), 3, collate, seed=1)
    assert source.steps_per_epoch == 4
    epochs = [[x for _ in range(4) for x in source.next_batch()["items"]] for _ in range(2)]
    assert sorted(epochs[0]) == sorted(epochs[1]) == list(range(10)) and epochs[0] != epochs[1]


def test_buckets_group_similar_lengths():
    texts = ["x" * n for n in range(1, 65)]
    source = EpochBatches(texts, 8, collate, seed=0, bucket_size=8, length=len)
    spreads = [max(map(len, b)) - min(map(len, b)) for b in (source.next_batch()["items"] for _ in range(8))]
    assert max(spreads) == 7  # one span of 64 sorted: each batch holds 8 consecutive lengths
    with pytest.raises(ValueError, match="needs length"):
        EpochBatches(texts, 8, collate, bucket_size=4)
    with pytest.raises(ValueError, match="training split is empty"):
        EpochBatches([], 8, collate)


def test_resumes_mid_epoch_exactly():
    full = EpochBatches(list(range(20)), 4, collate, seed=5)
    expected = [full.next_batch()["items"] for _ in range(12)]
    first = EpochBatches(list(range(20)), 4, collate, seed=5)
    seen = [first.next_batch()["items"] for _ in range(7)]
    resumed = EpochBatches(list(range(20)), 4, collate, seed=5)
    resumed.load_state_dict(first.state_dict())
    assert seen + [resumed.next_batch()["items"] for _ in range(5)] == expected
