"""A numbers ↔ words run: pairs → character batches → Trainer (teacher forcing) → greedy and beam exact match on
numbers never seen in training → ``results.json``, ``metrics.jsonl``, ``metrics.png``, the model folder."""

from __future__ import annotations

import json
import logging
import random
import time
from collections import defaultdict
from pathlib import Path

import torch

from ..atomic import write_text_atomic
from ..config import Seq2SeqConfig
from ..model.heads import IGNORE_INDEX
from ..model.seq2seq import TransformerForConditionalGeneration
from ..training import Trainer
from ..training.batches import EpochBatches
from ..training.state import check_output_dir
from ..training.threads import cpu_threads
from .config import NumbersConfig
from .numbers import Pair, PieceVocab, number_pairs, split_numbers

logger = logging.getLogger(__name__)
PLOT_KEYS = ("loss", "heldout_loss", "greedy_exact_match", "token_accuracy", "learning_rate", "tokens_per_second")


def collate(vocab: PieceVocab, pairs: list[Pair]) -> dict[str, torch.Tensor]:
    """Right-padded sources with their mask, and labels (target + ``[EOS]``, -100 on padding)."""
    sources = [vocab.encode_source(p) for p in pairs]
    targets = [vocab.encode(p.target, p.language) + [vocab.eos] for p in pairs]
    width, length = max(map(len, sources)), max(map(len, targets))
    input_ids = torch.full((len(pairs), width), vocab.pad)
    labels = torch.full((len(pairs), length), IGNORE_INDEX)
    for row, (source, target) in enumerate(zip(sources, targets, strict=True)):
        input_ids[row, :len(source)] = torch.tensor(source)
        labels[row, :len(target)] = torch.tensor(target)
    return {"input_ids": input_ids, "attention_mask": (input_ids != vocab.pad).long(), "labels": labels}


def build_model(config: NumbersConfig, vocab: PieceVocab) -> TransformerForConditionalGeneration:
    """A Transformer of the configured size: shared, tied character embeddings, sinusoidal positions."""
    model_config = Seq2SeqConfig(
        vocab_size=len(vocab), hidden_size=config.hidden_size, num_hidden_layers=config.num_hidden_layers,
        decoder_layers=config.decoder_layers, num_attention_heads=config.num_attention_heads,
        intermediate_size=config.intermediate_size, hidden_act=config.hidden_act, norm_first=config.norm_first,
        hidden_dropout_prob=config.dropout, attention_probs_dropout_prob=0.0,  # SDPA: no CPU dropout path
        max_position_embeddings=config.max_position_embeddings, pad_token_id=vocab.pad,
        # fairseq's / Vaswani's scale: embeddings × √d then have unit size beside the sinusoids (BERT's 0.02 leaves
        # tokens at a fifth of the positions' size; on this task its loss after 100 steps was 38× higher)
        initializer_range=config.hidden_size ** -0.5,
        decoder_start_token_id=vocab.bos, bos_token_id=vocab.bos, eos_token_id=vocab.eos)
    return TransformerForConditionalGeneration(model_config)


def translate(model: TransformerForConditionalGeneration, vocab: PieceVocab, pairs: list[Pair], num_beams: int,
              max_new_tokens: int, batch_size: int = 128) -> list[str]:
    """Decode every pair's source (greedy with ``num_beams=1``) with the model's ``generate``."""
    outputs = []
    for start in range(0, len(pairs), batch_size):
        batch = collate(vocab, pairs[start:start + batch_size])
        generated = model.generate(batch["input_ids"], batch["attention_mask"], num_beams=num_beams,
                                   max_new_tokens=max_new_tokens)
        outputs += [vocab.decode(row[1:].tolist()) for row in generated]  # after the decoder's start token
    return outputs


def exact_match(pairs: list[Pair], outputs: list[str]) -> dict[str, float]:
    """Exact match overall and per language × direction."""
    hits: dict[str, list[bool]] = defaultdict(list)
    for pair, output in zip(pairs, outputs, strict=True):
        ok = output == pair.target
        hits["all"].append(ok)
        hits[f"{pair.language}->{pair.direction}"].append(ok)
    return {key: sum(v) / len(v) for key, v in sorted(hits.items())}


def evaluate(model: TransformerForConditionalGeneration, vocab: PieceVocab, pairs: list[Pair],
             config: NumbersConfig) -> dict[str, float]:
    """Held-out loss and next-token accuracy under teacher forcing, and greedy exact match."""
    batch = collate(vocab, pairs)
    out = model(batch["input_ids"], batch["attention_mask"], labels=batch["labels"])
    real = batch["labels"] != IGNORE_INDEX
    accuracy = (out.logits.argmax(-1)[real] == batch["labels"][real]).float().mean().item()
    outputs = translate(model, vocab, pairs, 1, config.max_new_tokens)
    return {"heldout_loss": out.loss.item(), "token_accuracy": accuracy,
            "greedy_exact_match": exact_match(pairs, outputs)["all"]}


def run_numbers(config: NumbersConfig) -> dict:
    """Train, evaluate greedy and beam on the held-out numbers, write the results; returns them."""
    with cpu_threads(config.threads):
        if config.objective == "span_corruption":
            from .span_run import run_span_corruption

            return run_span_corruption(config)
        return _translation_run(config)


def _translation_run(config: NumbersConfig) -> dict:
    output = Path(config.output_dir)
    check_output_dir(output, resume=False, overwrite=config.overwrite, resumable=False)
    train_numbers, heldout_numbers = split_numbers(config.max_number, config.heldout_fraction, config.seed)
    train = number_pairs(train_numbers, config.languages)
    heldout = number_pairs(heldout_numbers, config.languages)
    vocab = PieceVocab.build(train, config.languages, config.tokens)
    rng = random.Random(config.seed)
    probe = rng.sample(heldout, min(config.eval_examples, len(heldout)))
    test = heldout if not config.test_examples else rng.sample(heldout, min(config.test_examples, len(heldout)))
    longest = max(len(vocab.encode_source(p)) for p in train + heldout)
    if longest > config.max_position_embeddings:
        raise ValueError(f"the longest source has {longest} tokens but max_position_embeddings is "
                         f"{config.max_position_embeddings}: raise it or lower max_number")
    print(f"{len(train):,} training pairs ({len(train_numbers):,} numbers), {len(heldout):,} held-out pairs "
          f"({len(heldout_numbers):,} numbers never trained on); {len(vocab)} tokens ({config.tokens}); "
          f"languages {', '.join(config.languages)}")
    torch.manual_seed(config.seed)
    model = build_model(config, vocab)
    print(f"model: {config.num_hidden_layers}+{config.decoder_layers} layers, d {config.hidden_size}, "
          f"{model.num_parameters():,} parameters")
    batches = EpochBatches(train, config.batch_size, lambda pairs: collate(vocab, pairs), seed=config.seed,
                           bucket_size=8, length=lambda p: len(p.source) + len(p.target))

    def step(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        out = model(batch["input_ids"], batch["attention_mask"], labels=batch["labels"])
        tokens = float((batch["labels"] != IGNORE_INDEX).sum() + batch["attention_mask"].sum())
        return out.loss, {"tokens": tokens}

    args = config.training_arguments(plot_keys=PLOT_KEYS)
    trainer = Trainer(model, args, batches, step, evaluate=lambda m: evaluate(m, vocab, probe, config),
                      tokenizer=vocab)
    started = time.perf_counter()
    result = trainer.train()
    minutes = (time.perf_counter() - started) / 60
    model.eval()
    model.save_pretrained(output / "model", tokenizer=vocab)
    scores, examples = {}, {}
    for name, beams in (("greedy", 1), (f"beam{config.num_beams}", config.num_beams)):
        began = time.perf_counter()
        with torch.no_grad():
            outputs = translate(model, vocab, test, beams, config.max_new_tokens)
        scores[name] = exact_match(test, outputs) | {"seconds": round(time.perf_counter() - began, 1)}
        examples[name] = [{"source": f"<{p.language}> <{p.direction}> {p.source}", "target": p.target, "output": o}
                          for p, o in list(zip(test, outputs, strict=True))[:12]]
    results = {"steps": result.step, "train_minutes": round(minutes, 2), "train_pairs": len(train),
               "heldout_pairs": len(test), "heldout_numbers": len(heldout_numbers),
               "parameters": model.num_parameters(), "exact_match": scores, "examples": examples,
               "config": config.to_dict()}
    write_text_atomic(output / "results.json", json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    return results
