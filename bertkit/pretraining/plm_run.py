"""The pieces ``objective: plm`` in ``bertkit pretrain`` runs on: XLNet's permutation LM (``plm.py``) over the
corpus read as Transformer-XL reads it — documents joined into one token stream ([SEP] between them), cut into
``batch_size`` streams read side by side, ``max_seq_length`` tokens a step, so each step's memory is the previous
segment of the same stream. Orders are drawn anew at every step (seeded, resumable); held-out documents are cut the
same way with orders drawn once, fixed, and evaluated in order with their memory. The unigram baseline is the
cross-entropy of predicting each held-out target by its training frequency: what the model must beat.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from typing import Any

import torch
from torch import nn

from ..config import BertConfig
from ..model.heads import IGNORE_INDEX
from ..model.xlnet import XLNetLMHeadModel
from ..model.xlnet_architecture import XLNetConfig
from ..training.device import model_device, move_batch
from .documents import read_documents
from .plm import PARTIAL_PREDICTION_K, document_segments, plm_batch, plm_step


def plm_model(shape: BertConfig, mem_len: int) -> XLNetLMHeadModel:
    """A fresh XLNet of ``shape``'s sizes (a bertkit preset, its vocabulary and padding id) keeping ``mem_len``
    positions of memory."""
    return XLNetLMHeadModel(XLNetConfig(
        vocab_size=shape.vocab_size, hidden_size=shape.hidden_size, num_hidden_layers=shape.num_hidden_layers,
        num_attention_heads=shape.num_attention_heads, intermediate_size=shape.intermediate_size,
        hidden_act=shape.hidden_act, hidden_dropout_prob=shape.hidden_dropout_prob,
        initializer_range=shape.initializer_range, layer_norm_eps=shape.layer_norm_eps,
        pad_token_id=shape.pad_token_id, bos_token_id=None, eos_token_id=None, mem_len=mem_len))


def token_stream(documents: list[list[str]], tokenizer: Any, separator: int) -> list[int]:
    """Every document's sentences as token ids, one document after another with ``separator`` between them."""
    stream: list[int] = []
    for document in documents:
        ids = [t for sentence in document for t in tokenizer.text_to_ids(sentence)]
        if ids:
            stream += ([separator] if stream else []) + ids
    return stream


class PLMBatches:
    """Endless PLM batches: step t holds segment t of each stream (a rank reads its own streams); after the last
    segment the streams start over and the batch says so (``reset_memory``). ``mems`` is the memory the step carried
    out of the last batch handed out: saved with the position, so a resumed run reads the memory it would have."""

    def __init__(self, stream: list[int], batch_size: int, length: int, pad: int, special: set[int],
                 seed: int = 0, rank: int = 0, world_size: int = 1, k: int = PARTIAL_PREDICTION_K):
        part = len(stream) // world_size
        if part < batch_size * length:
            raise ValueError(f"the corpus gives {len(stream)} tokens ({part} for this rank), fewer than one batch of "
                             f"{batch_size} segments of {length}: add text or lower batch_size / max_seq_length")
        self.steps = document_segments(stream[rank * part:(rank + 1) * part], batch_size, length)
        self.pad, self.special, self.k = pad, frozenset(special), k
        self.position, self.rng = 0, random.Random(seed + 1000 * rank)
        self.mems: tuple[torch.Tensor, ...] | None = None

    def next_batch(self) -> dict[str, Any]:
        if self.position == len(self.steps):
            self.position = 0
        batch = plm_batch(self.steps[self.position], self.pad, self.rng, self.k, self.special)
        batch["reset_memory"] = self.position == 0
        self.position += 1
        return batch

    def state_dict(self) -> dict[str, Any]:
        mems = None if self.mems is None else [m.detach().cpu() for m in self.mems]
        return {"position": self.position, "rng": self.rng.getstate(), "mems": mems}

    def load_state_dict(self, values: dict[str, Any]) -> None:
        self.position = values["position"]
        version, internal, gauss = values["rng"]
        self.rng.setstate((version, tuple(internal), gauss))
        mems = values.get("mems")
        self.mems = None if mems is None else tuple(mems)


class PLMStep:
    """The trainer's step function: ``plm_step`` carrying each stream's memory from one step to the next — on
    ``batches`` when given (so checkpoints keep it), else on the step itself."""

    def __init__(self, batches: PLMBatches | None = None) -> None:
        self.batches = batches
        self.own_mems: tuple[torch.Tensor, ...] | None = None

    @property
    def mems(self) -> tuple[torch.Tensor, ...] | None:
        return self.own_mems if self.batches is None else self.batches.mems

    @mems.setter
    def mems(self, value: tuple[torch.Tensor, ...] | None) -> None:
        if self.batches is None:
            self.own_mems = value
        else:
            self.batches.mems = value

    def __call__(self, model: nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        if batch.get("reset_memory"):
            self.mems = None
        mems = self.mems
        if mems is not None:  # a resumed run's memory comes from the checkpoint on the CPU
            mems = tuple(m.to(batch["input_ids"].device) for m in mems)
        loss, stats, self.mems = plm_step(model, batch, mems)
        return loss, stats | {"tokens": float(batch["attention_mask"].sum())}


def unigram_log_probs(stream: list[int], vocab_size: int) -> torch.Tensor:
    """log p(token) by training frequency; every token of the vocabulary gets a pseudo-count of 0.1, so that a
    held-out token unseen in training costs much but not infinitely much."""
    counts = torch.full((vocab_size,), 0.1, dtype=torch.float64)
    for token, count in Counter(stream).items():
        counts[token] += count
    return (counts / counts.sum()).log()


@torch.no_grad()
def evaluate_plm(model: nn.Module, batches: list[dict[str, Any]], unigram: torch.Tensor | None = None
                 ) -> dict[str, float]:
    """PLM loss, accuracy and perplexity over the fixed held-out batches (in order, with memory), and the unigram
    baseline's loss on the same targets."""
    was_training = model.training
    model.eval()
    loss_sum = correct = total = baseline = 0.0
    mems = None
    for batch in batches:
        batch = move_batch(batch, model_device(model))
        if batch.get("reset_memory"):
            mems = None
        loss, stats, mems = plm_step(model, batch, mems)
        labels = batch["labels"]
        targets = labels[labels != IGNORE_INDEX]
        loss_sum += loss.item() * targets.numel()
        correct += stats["plm_accuracy"] * targets.numel()
        total += targets.numel()
        if unigram is not None:
            baseline -= unigram[targets.cpu()].sum().item()
    model.train(was_training)
    if total == 0:
        raise ValueError("the evaluation set has no predicted positions")
    metrics = {"plm_loss": loss_sum / total, "plm_accuracy": correct / total,
               "perplexity": math.exp(min(loss_sum / total, 50.0)), "predictions": total}
    if unigram is not None:
        metrics["unigram_baseline_loss"] = baseline / total
    return metrics


def plm_data(config: Any, tokenizer: Any, special: Any) -> tuple[list[int], list[dict[str, Any]], torch.Tensor]:
    """The training token stream, fixed held-out batches (every k-th document, ``eval_fraction``) and the unigram
    log-probabilities of the training stream."""
    documents = read_documents(config.corpus, config.corpus_format)
    every = max(2, round(1 / config.eval_fraction)) if config.eval_fraction else 0
    train_docs = [d for i, d in enumerate(documents) if not every or i % every]
    held_docs = documents[::every] if every else []
    stream = token_stream(train_docs, tokenizer, special.sep)
    specials = {special.cls, special.sep, special.pad, special.mask}
    eval_batches: list[dict[str, Any]] = []
    held = token_stream(held_docs, tokenizer, special.sep)
    if held:
        streams = max(1, min(config.batch_size, len(held) // config.max_seq_length))
        if len(held) < config.max_seq_length:
            raise ValueError(f"the held-out documents give {len(held)} tokens, fewer than one segment of "
                             f"{config.max_seq_length}: add documents or set eval_fraction: 0")
        rng = random.Random(config.seed + 1)  # the same held-out orders in every run with this seed
        steps = document_segments(held, streams, config.max_seq_length)[: config.eval_batches]
        k = getattr(config, "plm_k", PARTIAL_PREDICTION_K)
        eval_batches = [plm_batch(rows, special.pad, rng, k, specials) | {"reset_memory": i == 0}
                        for i, rows in enumerate(steps)]
    return stream, eval_batches, unigram_log_probs(stream, len(tokenizer))
