"""The budget recipe's switches (Cramming): packed full-length sequences that cross a document boundary only when
asked, the tokenization filter, and the from-scratch block changes (dropout, pre-LN, projections without biases).

Oracles: the documents' own tokens (nothing lost, nothing from another document), the filter's rule computed by the
test with the tokenizer, and the built model's modules."""

from __future__ import annotations

import random

import pytest
import torch

from bertkit.corpora import rotten_tomatoes_reviews
from bertkit.pretraining import PretrainingConfig, run_pretraining
from bertkit.pretraining.instances import Sentence, SpecialIds
from bertkit.pretraining.packing import packed_instances
from bertkit.pretraining.run import build_model, fresh_config
from bertkit.pretraining.tokenized import tokenize_documents
from bertkit.tokenization import BertTokenizer
from bertkit.training.metrics import read_metrics

SPECIAL = SpecialIds(cls=1, sep=2, pad=0, mask=3)


def documents(lengths: list[list[int]]) -> list[list[Sentence]]:
    """Documents of sentences with these lengths; document d's tokens are 1000·(d+1), 1000·(d+1) + 1, …"""
    out = []
    for d, sentence_lengths in enumerate(lengths):
        ids = iter(range(1000 * (d + 1), 1000 * (d + 2)))
        out.append([Sentence([next(ids) for _ in range(n)], [True] * n) for n in sentence_lengths])
    return out


def text_of(instance) -> list[int]:
    assert instance.input_ids[0] == SPECIAL.cls and instance.input_ids[-1] == SPECIAL.sep
    return instance.input_ids[1:-1]


def test_packing_fills_every_sequence_within_each_document():
    docs = documents([[5, 9, 7, 3], [4], [12, 12]])
    instances = packed_instances(docs, 10, SPECIAL, random.Random(0))
    for d, doc in enumerate(docs):
        mine = sorted((text_of(i) for i in instances if text_of(i)[0] // 1000 == d + 1), key=lambda ids: ids[0])
        assert all(t // 1000 == d + 1 for ids in mine for t in ids)  # never a token of another document
        assert [t for ids in mine for t in ids] == [t for s in doc for t in s.ids]  # every token, in order
        assert all(len(ids) == 8 for ids in mine[:-1])  # full length but the document's last
    assert all(i.token_type_ids == [0] * len(i.input_ids) and i.word_starts[1] for i in instances)


def test_packing_across_documents_runs_them_on_with_a_separator():
    docs = documents([[5, 9], [4], [12, 3]])
    instances = packed_instances(docs, 10, SPECIAL, random.Random(0), across_documents=True)
    stream = [t for i in sorted(instances, key=lambda i: (text_of(i)[0] == SPECIAL.sep, text_of(i)))
              for t in text_of(i)]
    expected = [t for d, doc in enumerate(docs) for t in [*(x for s in doc for x in s.ids)] + [SPECIAL.sep] * (d < 2)]
    assert sorted(stream) == sorted(expected) and len(stream) == len(expected)
    assert sum(len(text_of(i)) < 8 for i in instances) == 1  # only the corpus's last sequence is short
    assert any(len({t // 1000 for t in text_of(i) if t > 999}) == 2 for i in instances)  # asked: it crosses


def test_the_tokenization_filter_drops_what_the_vocabulary_splits_finely(minilm_dir):
    tokenizer = BertTokenizer.from_pretrained(minilm_dir)
    text = ["A plain English sentence about films.", "Xqzt vlkp wrrbn gzzh qwv plk.", "Another good movie."]
    kept = tokenize_documents([text], tokenizer, progress=False, max_tokens_per_char=0.25)
    expected = [tokenizer.text_to_ids(t) for t in text if len(tokenizer.text_to_ids(t)) <= 0.25 * len(t)]
    assert [s.ids for s in kept[0]] == expected and 0 < len(expected) < len(text)


def test_block_switches_shape_the_model_from_scratch(minilm_dir, tmp_path):
    tokenizer = BertTokenizer.from_pretrained(minilm_dir)
    run = PretrainingConfig(corpus=["unused"], tokenizer=str(minilm_dir), model_preset="tiny", pair_task="none",
                            dropout=0.0, norm_first=True, projection_bias=False, output_dir=str(tmp_path))
    shape = fresh_config(run, tokenizer)
    assert (shape.hidden_dropout_prob, shape.attention_probs_dropout_prob, shape.norm_first, shape.use_bias) == (
        0.0, 0.0, True, False)
    model = build_model(run, tokenizer)
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    encoder_linears = [m for name, m in model.named_modules() if ".encoder.layer." in f".{name}"
                       and isinstance(m, torch.nn.Linear)]
    assert encoder_linears and all(m.bias is None for m in encoder_linears)
    assert linears and model.bert.encoder.LayerNorm is not None  # pre-LN: a final LayerNorm
    assert all(m.p == 0.0 for m in model.modules() if isinstance(m, torch.nn.Dropout))
    plain = fresh_config(PretrainingConfig(corpus=["unused"], tokenizer=str(minilm_dir), model_preset="tiny",
                                           output_dir=str(tmp_path)), tokenizer)
    assert (plain.hidden_dropout_prob, plain.norm_first, plain.use_bias) == (0.1, False, True)


@pytest.mark.parametrize(("changes", "message"), [
    (dict(pack_sequences=True, pair_task="nsp"), "needs pair_task: none"),
    (dict(pack_sequences=True, objective="plm", architecture="xlnet"), "objective mlm or electra"),
    (dict(pack_across_documents=True), "set pack_sequences: true"),
    (dict(pack_sequences=True, short_seq_prob=0.3), "leave it out"),
    (dict(max_tokens_per_char=0), "max_tokens_per_char must be"),
    (dict(dropout=1.0), "dropout must be a probability"),
    (dict(norm_first=True, init_from="somewhere"), "init_from's checkpoint keeps its own blocks"),
    (dict(projection_bias=False, architecture="albert"), "not architecture albert"),
])
def test_recipe_refusals(changes, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        PretrainingConfig(corpus=["unused"], tokenizer="unused", output_dir=str(tmp_path), **changes)


def test_the_recipe_trains(minilm_dir, tmp_path):
    """Every switch on at once: a tiny run learns (held-out loss falls) and logs as any other."""
    reviews = [text for _, text in rotten_tomatoes_reviews()[:400]]
    corpus = tmp_path / "reviews.txt"
    corpus.write_text("\n\n".join("\n".join(reviews[i:i + 4]) for i in range(0, len(reviews), 4)) + "\n")
    run = PretrainingConfig(corpus=[str(corpus)], tokenizer=str(minilm_dir), model_preset="tiny", pair_task="none",
                            pack_sequences=True, pack_across_documents=True, max_tokens_per_char=0.5, dropout=0.0,
                            norm_first=True, projection_bias=False, max_seq_length=64, batch_size=8, max_steps=40,
                            learning_rate=2e-3, warmup_steps=4, eval_steps=20, eval_batches=4, logging_steps=5,
                            progress=False, threads=1, output_dir=str(tmp_path / "out"))
    run_pretraining(run)
    evals = [r for r in read_metrics(tmp_path / "out" / "metrics.jsonl") if r.get("split") == "eval"]
    assert len(evals) == 2 and evals[-1]["mlm_loss"] < evals[0]["mlm_loss"]


def test_the_fast_recipe_config_turns_every_switch_on():
    from pathlib import Path

    recipe = PretrainingConfig.from_yaml(Path(__file__).resolve().parents[1] / "configs" / "pretrain-en-fast.yaml")
    assert (recipe.pair_task, recipe.pack_sequences, recipe.pack_across_documents, recipe.dropout, recipe.norm_first,
            recipe.projection_bias, recipe.short_seq_prob) == ("none", True, True, 0.0, True, False, 0.0)
    assert recipe.max_tokens_per_char is not None and recipe.max_minutes == 10
    assert recipe.training_arguments().lr_schedule_clock == "budget"


def test_pair_task_none_read_from_text_stays_none(tmp_path):
    """`pair_task: none` in YAML or on the command line is the choice none, not "unset" (which gave BERT NSP)."""
    from bertkit.training.options import parse_overrides

    config = tmp_path / "run.yaml"
    config.write_text("pair_task: none\ncorpus: [c.txt]\ntokenizer: t\n")
    assert PretrainingConfig.from_yaml(config).pair_task == "none"
    assert PretrainingConfig.from_yaml(None, parse_overrides(["pair_task=none", "tokenizer=t"], PretrainingConfig)
                                       | {"output_dir": str(tmp_path / "o")}).pair_task == "none"
    assert PretrainingConfig(tokenizer="t", output_dir=str(tmp_path)).pair_task == "nsp"  # auto: BERT's own
