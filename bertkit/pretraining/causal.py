"""Causal-LM pretraining (GPT): next-token prediction on a corpus, measured against n-gram baselines.

The corpus's documents become one stream of token ids, each document ended by the end-of-text token (the
tokenizer's ``[SEP]`` for a WordPiece vocabulary); training draws random windows of ``block_size`` tokens from the
training stream (nanoGPT's sampler, seeded and resumable), evaluation reads the held-out stream in consecutive
windows. Held-out perplexity is reported beside two baselines computed on the same predicted tokens: an add-one
unigram model and a Witten-Bell interpolated bigram model, both counted on the training stream — a model that does
not beat the bigram has learned no more than which word follows which.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from tqdm.auto import tqdm

from ..atomic import write_text_atomic
from ..config import BertConfig
from ..model.gpt2 import GPT2LMHeadModel
from ..tokenization import AutoTokenizer
from ..training import Trainer
from ..training.run_options import StepTrainingOptions
from ..training.state import check_output_dir
from ..training.threads import cpu_threads
from .documents import read_documents


@dataclass
class CausalPretrainingConfig(StepTrainingOptions):
    """A GPT pretraining run: corpus, tokenizer, model shape, optimisation, evaluation, samples."""

    KIND: ClassVar[str] = "causal pretraining"

    corpus: list[str] = field(default_factory=list)
    corpus_format: str = "lines"  # as `bertkit pretrain`: a sentence a line, blank lines between documents
    eval_fraction: float = 0.05  # every k-th document is held out
    tokenizer: str | None = None  # a folder with vocab.txt
    num_hidden_layers: int = 4
    hidden_size: int = 256
    num_attention_heads: int = 4
    intermediate_size: int | None = None  # default 4 × hidden_size
    dropout: float = 0.1
    block_size: int = 64  # tokens per training window (and the model's positions)
    batch_size: int = 16
    eval_batches: int = 20
    prompts: list[str] = field(default_factory=lambda: ["the module provides"])
    sample_tokens: int = 24
    # the shared training options (bertkit.training.run_options) with this command's defaults
    learning_rate: float = 1e-3
    warmup_steps: int = 100
    lr_schedule: str = "cosine"
    weight_decay: float = 0.1
    eval_steps: int = 200
    output_dir: str = "out/gpt"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.corpus_format not in ("lines", "raw"):
            raise ValueError(f"corpus_format must be lines or raw, got {self.corpus_format!r}")
        if not 0.0 < self.eval_fraction < 1.0:
            raise ValueError(f"eval_fraction must be in (0, 1), got {self.eval_fraction}")
        if self.block_size < 4 or self.batch_size < 1:
            raise ValueError("block_size must be ≥ 4 and batch_size ≥ 1")


def token_streams(config: CausalPretrainingConfig, tokenizer: Any, eos: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, held-out) streams of token ids: each document's sentences, then ``eos``."""
    documents = read_documents(config.corpus, config.corpus_format)
    every = max(2, round(1 / config.eval_fraction))
    streams: list[list[int]] = [[], []]  # [train, held-out]
    for i, document in enumerate(tqdm(documents, desc="tokenizing", unit="doc", disable=not config.progress)):
        # tokens → ids, not encode(): a stream has no length limit (encode warns past model_max_length)
        ids = [t for sentence in document for t in tokenizer.convert_tokens_to_ids(tokenizer.tokenize(sentence))]
        if ids:
            streams[i % every == 0].extend(ids + [eos])
    train, held_out = (torch.tensor(s, dtype=torch.long) for s in streams)
    if len(train) <= config.block_size or len(held_out) <= config.block_size:
        raise ValueError(f"the corpus gives {len(train)} training and {len(held_out)} held-out tokens: need more "
                         f"than block_size={config.block_size} on each side")
    return train, held_out


class RandomWindows:
    """An endless, resumable stream of (batch, block_size) windows at random offsets of the training stream."""

    def __init__(self, stream: torch.Tensor, batch_size: int, block_size: int, seed: int):
        self.stream, self.batch_size, self.block_size = stream, batch_size, block_size
        self.generator = torch.Generator().manual_seed(seed)

    def next_batch(self) -> dict[str, torch.Tensor]:
        starts = torch.randint(0, len(self.stream) - self.block_size, (self.batch_size,), generator=self.generator)
        return {"input_ids": torch.stack([self.stream[s: s + self.block_size] for s in starts.tolist()])}

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, values: dict[str, Any]) -> None:
        self.generator.set_state(values["generator"])


def causal_step(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
    """Next-token cross-entropy of one batch of windows."""
    ids = batch["input_ids"]
    return model(ids, labels=ids).loss, {"tokens": float(ids.numel())}


class NgramBaselines:
    """Add-one unigram and Witten-Bell interpolated bigram models counted on the training stream."""

    def __init__(self, stream: torch.Tensor, vocab_size: int):
        ids = stream.tolist()
        self.vocab_size, self.total = vocab_size, len(ids)
        self.unigrams = Counter(ids)
        self.bigrams = Counter(zip(ids, ids[1:], strict=False))
        self.context = Counter(ids[:-1])
        self.followers = Counter(v for v, _ in self.bigrams)  # distinct words seen after each word

    def unigram(self, word: int) -> float:
        return (self.unigrams[word] + 1) / (self.total + self.vocab_size)

    def bigram(self, previous: int, word: int) -> float:
        """P_WB(w | v) = (c(v, w) + T(v) · P_uni(w)) / (c(v) + T(v)); the unigram alone for an unseen v."""
        seen, types = self.context[previous], self.followers[previous]
        if seen == 0:
            return self.unigram(word)
        return (self.bigrams[(previous, word)] + types * self.unigram(word)) / (seen + types)


def held_out_windows(stream: torch.Tensor, config: CausalPretrainingConfig) -> list[torch.Tensor]:
    """Consecutive (batch, block_size) windows of the held-out stream, at most ``eval_batches`` batches."""
    count = min(len(stream) // config.block_size, config.eval_batches * config.batch_size)
    windows = stream[: count * config.block_size].view(count, config.block_size)
    return [windows[i: i + config.batch_size] for i in range(0, count, config.batch_size)]


def baseline_perplexities(batches: list[torch.Tensor], baselines: NgramBaselines) -> dict[str, float]:
    """Perplexity of each baseline on the tokens the model predicts (every window position after the first)."""
    unigram = bigram = 0.0
    count = 0
    for batch in batches:
        for row in batch.tolist():
            for previous, word in zip(row, row[1:], strict=False):
                unigram -= math.log(baselines.unigram(word))
                bigram -= math.log(baselines.bigram(previous, word))
                count += 1
    return {"unigram_perplexity": math.exp(unigram / count), "bigram_perplexity": math.exp(bigram / count)}


@torch.no_grad()
def evaluate_causal(model: torch.nn.Module, batches: list[torch.Tensor], baselines: dict[str, float]
                    ) -> dict[str, float]:
    """Held-out loss and perplexity per predicted token, with the baselines' perplexities beside them."""
    loss_sum, count = 0.0, 0
    for batch in batches:
        predicted = batch.shape[0] * (batch.shape[1] - 1)
        loss_sum += model(batch, labels=batch).loss.item() * predicted
        count += predicted
    loss = loss_sum / count
    return {"eval_loss": loss, "perplexity": math.exp(min(loss, 50.0)), **baselines}


def samples(model: GPT2LMHeadModel, tokenizer: Any, config: CausalPretrainingConfig) -> list[dict[str, str]]:
    """A greedy and a seeded sampled continuation of each prompt, as text."""
    out = []
    for prompt in config.prompts:
        ids = torch.tensor([tokenizer.encode(prompt, add_special_tokens=False)[-config.block_size // 2:]])
        greedy = model.generate(ids, max_new_tokens=config.sample_tokens, repetition_penalty=1.3)
        sampled = model.generate(ids, max_new_tokens=config.sample_tokens, do_sample=True, top_k=40,
                                 temperature=0.8, generator=torch.Generator().manual_seed(config.seed))
        out.append({"prompt": prompt, **{name: tokenizer.decode(ids_[0, ids.shape[1]:].tolist(),
                                                                skip_special_tokens=True)
                                         for name, ids_ in (("greedy", greedy), ("sampled", sampled))}})
    return out


def print_samples(title: str, rows: list[dict[str, str]]) -> None:
    print(f"\n{title}")
    for row in rows:
        print(f"  {row['prompt']!r}\n    greedy : {row['greedy']}\n    sampled: {row['sampled']}")


def run_causal_pretraining(config: CausalPretrainingConfig) -> dict:
    """Train a GPT from scratch; write the model (with its tokenizer), metrics, samples and ``summary.json``."""
    check_output_dir(config.output_dir, False, config.overwrite, clear=True, resumable=False)
    with cpu_threads(config.threads):
        return _causal_pretraining(config)


def _causal_pretraining(config: CausalPretrainingConfig) -> dict:
    torch.manual_seed(config.seed)
    if not config.tokenizer or not Path(config.tokenizer).is_dir():
        raise FileNotFoundError(f"no tokenizer folder {config.tokenizer!r}: train one with `bertkit train-tokenizer "
                                "CORPUS.txt -o DIR` (make gpt-en runs every step)")
    tokenizer = AutoTokenizer.from_pretrained(config.tokenizer)
    eos = tokenizer.convert_tokens_to_ids(tokenizer.sep_token)
    train, held_out = token_streams(config, tokenizer, eos)
    model = GPT2LMHeadModel(BertConfig(
        model_type="gpt2", vocab_size=len(tokenizer), hidden_size=config.hidden_size,
        num_hidden_layers=config.num_hidden_layers, num_attention_heads=config.num_attention_heads,
        intermediate_size=config.intermediate_size or 4 * config.hidden_size, hidden_act="gelu_new",
        hidden_dropout_prob=config.dropout, attention_probs_dropout_prob=config.dropout,
        max_position_embeddings=config.block_size, type_vocab_size=0, layer_norm_eps=1e-5, norm_first=True,
        is_decoder=True, pad_token_id=tokenizer.convert_tokens_to_ids(tokenizer.pad_token), bos_token_id=eos,
        eos_token_id=eos))
    eval_batches = held_out_windows(held_out, config)
    baselines = baseline_perplexities(eval_batches, NgramBaselines(train, len(tokenizer)))
    before = samples(model, tokenizer, config)
    print_samples("samples before training (random weights):", before)
    args = config.training_arguments(plot_keys=(
        "loss", "perplexity", "unigram_perplexity", "bigram_perplexity", "learning_rate", "tokens_per_second"))
    trainer = Trainer(model, args, RandomWindows(train, config.batch_size, config.block_size, config.seed),
                      causal_step, evaluate=lambda m: evaluate_causal(m, eval_batches, baselines),
                      tokenizer=tokenizer)
    result = trainer.train()
    after = samples(model, tokenizer, config)
    print_samples(f"samples after {result.step} steps:", after)
    final = next((r for r in reversed(result.history) if r["split"] == "eval"), None)
    summary = {"steps": result.step, "train_tokens": len(train), "held_out_tokens": len(held_out),
               "evaluated_tokens": sum(b.shape[0] * (b.shape[1] - 1) for b in eval_batches),
               "parameters": model.num_parameters(), "final_eval": final,
               "samples_before": before, "samples_after": after, "config": config.to_dict()}
    out = Path(config.output_dir)
    model.save_pretrained(out / "model", tokenizer=tokenizer)
    write_text_atomic(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary
