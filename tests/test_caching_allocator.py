"""The caching CPU allocator the Trainer installs (``bertkit.training.caching_allocator``): it pools large blocks,
keeps tensors intact, leaves nothing behind when uninstalled, and changes no result."""

import logging
import shutil
import threading

import pytest
import torch

from bertkit.config import BertConfig
from bertkit.model import BertForPreTraining
from bertkit.pretraining.objective import pretraining_step
from bertkit.training import Trainer, TrainingArguments
from bertkit.training import caching_allocator as pool

pytestmark = pytest.mark.skipif(shutil.which("c++") is None and shutil.which("g++") is None,
                                reason="the caching allocator is compiled with the system C++ compiler")
MIB = 1 << 20


@pytest.fixture
def installed():
    assert pool.install()
    yield
    pool.uninstall()


def test_large_blocks_are_pooled_and_reused_small_ones_are_not(installed):
    assert pool.installed()
    before = pool.pooled_bytes()
    a = torch.full((3 * MIB // 4,), 7.0)  # 3 MiB → a pooled block of 3 MiB
    assert pool.pooled_bytes() == before + 3 * MIB
    del a
    b = torch.full((3 * MIB // 4 - 1000,), 5.0)  # a little smaller: the freed block serves it
    assert pool.pooled_bytes() == before + 3 * MIB and bool((b == 5.0).all())
    small = torch.ones(1000)  # 4 kB: the system allocator's
    assert pool.pooled_bytes() == before + 3 * MIB and small.sum().item() == 1000
    c = torch.ones(3 * MIB // 4)  # b still holds the pooled block: a new one
    assert pool.pooled_bytes() == before + 6 * MIB
    assert not torch.equal(b[:10], c[:10])  # two distinct blocks
    del b, c


def test_a_block_much_larger_than_asked_is_not_handed_out(installed):
    big = torch.empty(16 * MIB // 4)
    del big  # 16 MiB free in the pool
    before = pool.pooled_bytes()
    x = torch.empty(2 * MIB // 4)  # 2 MiB: more than 25 % below 16 MiB, so a block of its own
    assert pool.pooled_bytes() == before + 2 * MIB
    del x


def test_uninstall_restores_the_allocator_and_frees_the_pool():
    in_use_elsewhere = pool.pooled_bytes()  # blocks of earlier training runs that tensors still hold
    assert pool.install()
    kept = torch.arange(MIB, dtype=torch.float32)  # 4 MiB, allocated from the pool
    scratch = torch.empty(2 * MIB)
    del scratch
    pool.uninstall()
    assert not pool.installed()
    # free blocks went back to the system; the one in use stays valid
    assert pool.pooled_bytes() == in_use_elsewhere + 4 * MIB
    assert kept[-1].item() == MIB - 1
    del kept
    assert pool.pooled_bytes() == in_use_elsewhere


def test_threads_allocate_and_free_concurrently(installed):
    errors = []

    def work(seed):
        try:
            for i in range(50):
                x = torch.full((MIB // 4 + seed * 1000 + i,), float(seed))
                if not bool((x == seed).all()):
                    errors.append(seed)
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


class RandomMaskedBatches:
    def __init__(self):
        self.generator = torch.Generator().manual_seed(0)

    def next_batch(self):
        ids = torch.randint(5, 300, (8, 40), generator=self.generator)
        labels = torch.where(torch.rand(8, 40, generator=self.generator) < 0.15, ids, -100)
        labels[:, 1] = ids[:, 1]
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "token_type_ids": torch.zeros_like(ids),
                "labels": labels, "next_sentence_label": torch.randint(0, 2, (8,), generator=self.generator)}

    def state_dict(self):
        return {}

    def load_state_dict(self, values):
        pass


def train_losses(tmp_path, caching_allocator):
    torch.manual_seed(0)
    model = BertForPreTraining(BertConfig.preset("tiny", vocab_size=300))
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=6, learning_rate=1e-3, logging_steps=1,
                             progress=False, bf16=True, caching_allocator=caching_allocator)
    seen = []

    def step(model, batch):
        seen.append(pool.installed())
        return pretraining_step(model, batch)

    result = Trainer(model, args, RandomMaskedBatches(), step).train()
    return [r["loss"] for r in result.history], seen


def test_training_with_the_pool_gives_the_same_losses_and_uninstalls_it(tmp_path):
    pooled, seen = train_losses(tmp_path / "pooled", caching_allocator=True)
    plain, seen_plain = train_losses(tmp_path / "plain", caching_allocator=False)
    assert all(seen) and not any(seen_plain)
    assert pooled == plain
    assert not pool.installed()


def test_without_a_compiler_training_falls_back_with_a_warning(monkeypatch, tmp_path, caplog):
    monkeypatch.setattr(pool, "_library", None)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("CXX", "/bin/false")
    with caplog.at_level(logging.WARNING):
        assert pool.install() is False
    assert "caching CPU allocator unavailable" in caplog.text
    assert not list(tmp_path.rglob("*.so"))  # nothing half-written
