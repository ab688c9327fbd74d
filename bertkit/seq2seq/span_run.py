"""``objective: span_corruption``: a T5 pretrained the T5 way on the number texts — spans of each text (15 %, mean
length 3) hidden behind sentinels, the target listing what each sentinel hides — corrupted anew at every draw;
held-out numbers' texts, corrupted once, measure the loss and how often greedy decoding restores every span.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import torch

from ..atomic import write_text_atomic
from ..model.heads import IGNORE_INDEX
from ..model.t5 import T5ForConditionalGeneration
from ..pretraining.span_corruption import SpanCorruption
from ..t5_config import T5Config
from ..training import Trainer
from ..training.batches import EpochBatches
from ..training.state import check_output_dir
from .config import NumbersConfig
from .numbers import PieceVocab, number_pairs, split_numbers

PLOT_KEYS = ("loss", "heldout_loss", "span_exact_match", "token_accuracy", "learning_rate")
Example = tuple[list[int], list[int]]  # (input, target), both closed by [EOS]


def build_vocab(texts: list, config: NumbersConfig) -> PieceVocab:
    """The pieces of the texts, then ``<extra_id_N>`` … ``<extra_id_0>`` at the top (T5's layout)."""
    pieces = PieceVocab.build(texts, config.languages, config.tokens)
    sentinels = [f"<extra_id_{i}>" for i in reversed(range(config.num_sentinels))]
    return PieceVocab(list(pieces.tokens) + sentinels, config.tokens)


def corrupt(corruption: SpanCorruption, vocab: PieceVocab, texts: list, rng: random.Random) -> list[Example]:
    """Each text's pieces corrupted once (a draw of ``rng``), ``[EOS]`` closing input and target."""
    examples = []
    for pair in texts:
        source, target = corruption(vocab.encode(pair.target, pair.language), rng)
        examples.append((source + [vocab.eos], target + [vocab.eos]))
    return examples


def collate(examples: list[Example], pad: int) -> dict[str, torch.Tensor]:
    """Right-padded inputs with their mask, labels with -100 on padding."""
    width, length = max(len(s) for s, _ in examples), max(len(t) for _, t in examples)
    input_ids = torch.full((len(examples), width), pad)
    labels = torch.full((len(examples), length), IGNORE_INDEX)
    for row, (source, target) in enumerate(examples):
        input_ids[row, :len(source)], labels[row, :len(target)] = torch.tensor(source), torch.tensor(target)
    return {"input_ids": input_ids, "attention_mask": (input_ids != pad).long(), "labels": labels}


def evaluate(model: T5ForConditionalGeneration, examples: list[Example], pad: int, eos: int,
             num_beams: int = 1) -> dict[str, float]:
    """Held-out loss, next-token accuracy under teacher forcing, and the share of targets decoded exactly."""
    batch = collate(examples, pad)
    with torch.no_grad():
        out = model(batch["input_ids"], batch["attention_mask"], labels=batch["labels"])
        real = batch["labels"] != IGNORE_INDEX
        accuracy = (out.logits.argmax(-1)[real] == batch["labels"][real]).float().mean().item()
        longest = max(len(t) for _, t in examples)
        generated = model.generate(batch["input_ids"], batch["attention_mask"], num_beams=num_beams,
                                   max_new_tokens=longest, eos_token_id=eos)
    hits = 0
    for row, (_, target) in zip(generated.tolist(), examples, strict=True):
        decoded = row[1:]
        hits += decoded[:decoded.index(eos) + 1] == target if eos in decoded else False
    return {"heldout_loss": out.loss.item(), "token_accuracy": accuracy, "span_exact_match": hits / len(examples)}


def run_span_corruption(config: NumbersConfig) -> dict:
    """Pretrain a T5 by span corruption on the number texts; evaluate on held-out numbers; write the results."""
    output = Path(config.output_dir)
    check_output_dir(output, resume=False, overwrite=config.overwrite, resumable=False)
    train_numbers, heldout_numbers = split_numbers(config.max_number, config.heldout_fraction, config.seed)
    train = number_pairs(train_numbers, config.languages, directions=("words",))
    heldout = number_pairs(heldout_numbers, config.languages, directions=("words",))
    vocab = build_vocab(train, config)
    # a one-piece text ("seven") has nothing to keep beside a span: T5 needs two tokens at least
    train, heldout = ([p for p in texts if len(vocab.encode(p.target, p.language)) > 1] for texts in (train, heldout))
    corruption = SpanCorruption(len(vocab), num_sentinels=config.num_sentinels, noise_density=config.noise_density,
                                mean_noise_span_length=config.mean_noise_span_length)
    rng = random.Random(config.seed)
    probe = corrupt(corruption, vocab, rng.sample(heldout, min(config.eval_examples, len(heldout))),
                    random.Random(config.seed + 1))
    torch.manual_seed(config.seed)
    model = T5ForConditionalGeneration(T5Config(
        vocab_size=len(vocab), hidden_size=config.hidden_size, num_hidden_layers=config.num_hidden_layers,
        decoder_layers=config.decoder_layers, num_attention_heads=config.num_attention_heads,
        attention_head_size=config.hidden_size // config.num_attention_heads,
        intermediate_size=config.intermediate_size, hidden_act=config.hidden_act,
        hidden_dropout_prob=config.dropout, attention_probs_dropout_prob=config.dropout,
        activation_dropout=config.dropout, pad_token_id=vocab.pad, eos_token_id=vocab.eos,
        decoder_start_token_id=vocab.pad, initializer_range=config.hidden_size ** -0.5))
    before = evaluate(model.eval(), probe, vocab.pad, vocab.eos)
    draws = random.Random(config.seed + 2)  # every draw corrupts its texts anew
    batches = EpochBatches(train, config.batch_size,
                           lambda texts: collate(corrupt(corruption, vocab, texts, draws), vocab.pad), seed=config.seed)

    def step(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        out = model(batch["input_ids"], batch["attention_mask"], labels=batch["labels"])
        return out.loss, {"tokens": float((batch["labels"] != IGNORE_INDEX).sum() + batch["attention_mask"].sum())}

    args = config.training_arguments(plot_keys=PLOT_KEYS)
    trainer = Trainer(model, args, batches, step, evaluate=lambda m: evaluate(m, probe, vocab.pad, vocab.eos),
                      tokenizer=vocab)
    started = time.perf_counter()
    result = trainer.train()
    minutes = (time.perf_counter() - started) / 60
    model.eval()
    model.save_pretrained(output / "model", tokenizer=vocab)
    after = {name: evaluate(model, probe, vocab.pad, vocab.eos, beams)
             for name, beams in (("greedy", 1), (f"beam{config.num_beams}", config.num_beams))}
    results = {"objective": "span_corruption", "steps": result.step, "train_minutes": round(minutes, 2),
               "train_texts": len(train), "heldout_texts": len(probe), "vocab_size": len(vocab),
               "parameters": model.num_parameters(), "untrained": before, "trained": after,
               "config": config.to_dict()}
    write_text_atomic(output / "results.json", json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    return results
