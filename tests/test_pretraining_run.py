"""Pretraining end to end: the loss against transformers, the CLI, exact resumption after SIGKILL, DDP, bad input."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from bertkit.cli import main
from bertkit.config import BertConfig
from bertkit.corpora import rotten_tomatoes_reviews
from bertkit.model import BertForPreTraining
from bertkit.pretraining import MaskingConfig, PretrainingConfig, run_pretraining
from bertkit.pretraining.dataset import PretrainingBatches, mask_statically, to_example
from bertkit.pretraining.instances import create_instances
from bertkit.pretraining.run import build_data, special_ids
from bertkit.pretraining.tokenized import tokenize_documents
from bertkit.tokenization import BertTokenizer
from bertkit.training.metrics import read_metrics

TINY = dict(model_preset="tiny", max_seq_length=64, batch_size=8, warmup_steps=2, logging_steps=1, progress=False)


@pytest.fixture(scope="module")
def review_corpus(tmp_path_factory) -> Path:
    """Real English text in google-research/bert's format: 4 reviews (one a line) per document."""
    reviews = [text for _, text in rotten_tomatoes_reviews()[:1200]]
    path = tmp_path_factory.mktemp("corpus") / "reviews.txt"
    path.write_text("\n\n".join("\n".join(reviews[i:i + 4]) for i in range(0, len(reviews), 4)) + "\n")
    return path


@pytest.fixture(scope="module")
def tokenizer(minilm_dir) -> BertTokenizer:
    return BertTokenizer.from_pretrained(minilm_dir)


def config(corpus, tokenizer_dir, out, **extra) -> PretrainingConfig:
    return PretrainingConfig(corpus=[str(corpus)], output_dir=str(out),
                             **(TINY | {"tokenizer": str(tokenizer_dir)} | extra))


def test_loss_equals_transformers_bert_for_pretraining(review_corpus, minilm_dir, tokenizer, tmp_path):
    from transformers import BertConfig as HFConfig
    from transformers import BertForPreTraining as HFPreTraining

    torch.manual_seed(0)
    theirs = HFPreTraining(HFConfig(vocab_size=len(tokenizer), hidden_size=64, num_hidden_layers=2,
                                    num_attention_heads=4, intermediate_size=128)).eval()
    theirs.save_pretrained(tmp_path / "hf")
    ours = BertForPreTraining.from_pretrained(tmp_path / "hf")
    data = build_data(config(review_corpus, minilm_dir, tmp_path, masking="whole_word"), tokenizer)
    batches = PretrainingBatches(data.train, 16, special_ids(tokenizer), len(tokenizer), MaskingConfig())
    for _ in range(3):
        batch = batches.next_batch()
        expected = theirs(**batch).loss  # labels + next_sentence_label: transformers' MLM + NSP definition
        got = ours(**batch, only_masked_logits=True).loss  # decoder run on the masked positions only
        fused = ours(**batch, return_logits=False)  # ... chunk by chunk, logits never materialised
        full = ours(**batch).loss
        for loss in (got, fused.loss, full):
            assert abs(loss.item() - expected.item()) < 1e-4
        assert abs((fused.mlm_loss + fused.nsp_loss).item() - expected.item()) < 1e-4


def test_static_masks_repeat_dynamic_masks_change_and_ranks_read_disjoint_shards(review_corpus, tokenizer):
    from bertkit.pretraining.documents import read_documents

    documents = tokenize_documents(read_documents([review_corpus]), tokenizer, progress=False)
    special = special_ids(tokenizer)
    examples = [to_example(i) for i in create_instances(documents, 64, special, random.Random(0))]
    static = mask_statically(examples, special, len(tokenizer), MaskingConfig(), random.Random(1))

    def two_epochs(source, examples):
        per_epoch = len(source.examples) // source.batch_size
        batches = [source.next_batch() for _ in range(2 * per_epoch)]
        return [{tuple(i for i in row if i != special.pad) for b in batches[e * per_epoch:(e + 1) * per_epoch]
                 for row in b["input_ids"].tolist()} for e in range(2)]

    first, second = two_epochs(PretrainingBatches(static, 8, special, len(tokenizer), MaskingConfig(), dynamic=False),
                               static)
    assert len(first & second) > 0.95 * len(first)  # the same masked rows (but a dropped tail), in another order
    first, second = two_epochs(PretrainingBatches(examples, 8, special, len(tokenizer), MaskingConfig()), examples)
    assert len(first & second) < 0.2 * len(first)  # masked anew
    shards = [PretrainingBatches(examples, 8, special, len(tokenizer), MaskingConfig(), rank=r, world_size=2)
              for r in range(2)]
    assert {id(e) for e in shards[0].examples}.isdisjoint(id(e) for e in shards[1].examples)
    assert len(shards[0].examples) + len(shards[1].examples) == len(examples)


def test_cli_pretrain_from_yaml_with_overrides_then_fill_mask(review_corpus, minilm_dir, tmp_path, capsys):
    (tmp_path / "run.yaml").write_text(f"corpus: {review_corpus}\ntokenizer: {minilm_dir}\nmodel_preset: tiny\n"
                                       f"max_steps: 100\nbatch_size: 8\nmax_seq_length: 64\nprogress: false\n"
                                       f"eval_steps: 3\neval_batches: 2\nlearning_rate: 0.001\n")
    out = tmp_path / "out"
    assert main(["pretrain", "--config", str(tmp_path / "run.yaml"), "--max-steps", "6", "--output-dir", str(out),
                 "--masking", "span", "--logging-steps", "2", "pair_task=sop", "warmup_steps=1"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 6 and summary["config"]["masking"] == "span" and summary["config"]["pair_task"] == "sop"
    records = read_metrics(out / "metrics.jsonl")
    assert [r["step"] for r in records if r["split"] == "train"] == [2, 4, 6]
    evals = [r for r in records if r["split"] == "eval"]
    assert [r["step"] for r in evals] == [3, 6] and 0 < evals[-1]["unigram_baseline_accuracy"] < 0.2
    assert all(k in records[0] for k in ("loss", "mlm_accuracy", "nsp_accuracy", "learning_rate", "tokens_per_second"))
    assert (out / "metrics.png").read_bytes()[:4] == b"\x89PNG"
    from transformers import BertForPreTraining as HFPreTraining

    HFPreTraining.from_pretrained(out / "model")  # the saved model is a transformers checkpoint
    capsys.readouterr()
    assert main(["fill-mask", "--model", str(out / "model"), "the movie is [MASK] .", "--top-k", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "the movie is [MASK] ." and lines[1].startswith("  [MASK] 1:") and len(lines[1].split()) == 8


def run_cli(args, **kwargs):
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "bertkit", "pretrain", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)


def test_sigkill_then_resume_continues_identically(review_corpus, minilm_dir, tmp_path):
    common = ["--corpus", str(review_corpus), "--tokenizer", str(minilm_dir), "--model-preset", "tiny",
              "--max-seq-length", "64", "--batch-size", "8", "--max-steps", "10", "--save-steps", "3",
              "--logging-steps", "1", "--warmup-steps", "2", "--progress", "false", "--eval-fraction", "0"]
    full = run_cli([*common, "--output-dir", str(tmp_path / "full")])
    killed = run_cli([*common, "--output-dir", str(tmp_path / "killed")])
    latest = tmp_path / "killed" / "checkpoints" / "latest"
    deadline = time.time() + 120
    while not (latest.is_file() and latest.read_text().strip() == "step-0000006") and time.time() < deadline:
        assert killed.poll() is None, killed.stdout.read()
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    assert killed.wait() == -signal.SIGKILL  # it died mid-run ...
    assert len(read_metrics(tmp_path / "killed" / "metrics.jsonl")) < 10  # ... before its last step
    assert full.wait(timeout=120) == 0, full.stdout.read()
    resumed = run_cli([*common, "--output-dir", str(tmp_path / "killed"), "--resume"])
    assert resumed.wait(timeout=120) == 0, resumed.stdout.read()
    losses = {name: [r["loss"] for r in read_metrics(tmp_path / name / "metrics.jsonl")] for name in ("full", "killed")}
    assert len(losses["full"]) == 10 and losses["killed"] == losses["full"]  # bit for bit
    assert not list((tmp_path / "killed" / "checkpoints").glob(".*.tmp"))


def test_torchrun_two_ranks_train_with_equal_weights(review_corpus, minilm_dir, tmp_path):
    out = tmp_path / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
               str(29500 + os.getpid() % 1000), "-m", "bertkit", "pretrain", "--corpus", str(review_corpus),
               "--tokenizer", str(minilm_dir), "--model-preset", "tiny", "--max-seq-length", "64", "--batch-size",
               "4", "--max-steps", "4", "--progress", "false", "--eval-fraction", "0", "--output-dir", str(out),
               "--device", "cpu"]  # gloo on the CPU, also on a machine with GPUs
    result = subprocess.run(command, capture_output=True, text=True, timeout=240,
                            env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("pretrained 4 steps") == 1  # rank 0 alone prints
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ranks"] == 2 and summary["steps"] == 4
    assert summary["device"] == "cpu" and summary["ddp_backend"] == "gloo"  # the backend follows the device
    first, second = summary["rank_checksums"]
    assert first == second
    initial = BertForPreTraining(BertConfig.preset("tiny", vocab_size=30522))
    assert first != pytest.approx(sum((p.double() * (i + 1)).sum().item() for i, p in enumerate(initial.parameters())))


def test_continued_pretraining_from_a_model_without_heads(review_corpus, minilm_dir, tmp_path):
    summary = run_pretraining(config(review_corpus, minilm_dir, tmp_path, init_from=str(minilm_dir), tokenizer=None,
                                     max_steps=2, batch_size=4, eval_fraction=0))
    assert summary["steps"] == 2
    model = BertForPreTraining.from_pretrained(tmp_path / "model")
    assert not model.loading_report.missing  # the fresh heads were trained and saved
    original = BertForPreTraining.from_pretrained(minilm_dir)
    assert "cls.predictions.bias" in original.loading_report.missing


@pytest.mark.parametrize("case, message", [
    ("empty", "corpus is empty"),
    ("one_sentence", "at least two documents"),
    ("smaller_than_batch", "fewer than one batch"),
    ("too_long", "exceeds the model's 32 positions"),
    ("no_specials", "lacks the special token"),
])
def test_bad_input_is_a_clear_error(case, message, review_corpus, minilm_dir, tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text({"empty": "\n\n", "one_sentence": "Just one sentence here.\n"}.get(case, "a b.\nc d.\n\ne f.\n"))
    tokenizer_dir = minilm_dir
    if case == "no_specials":
        tokenizer_dir = tmp_path / "vocab"
        tokenizer_dir.mkdir()
        (tokenizer_dir / "vocab.txt").write_text("a\nb\nc\n")
    args = ["pretrain", "--corpus", str(corpus), "--tokenizer", str(tokenizer_dir), "--model-preset", "tiny",
            "--progress", "false", "--eval-fraction", "0", "--output-dir", str(tmp_path / "out")]
    if case == "too_long":
        args += ["--max-position-embeddings", "32", "--max-seq-length", "64"]
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_truncated_checkpoint_is_refused_on_resume(review_corpus, minilm_dir, tmp_path, capsys):
    run_pretraining(config(review_corpus, minilm_dir, tmp_path, max_steps=2, save_steps=2, eval_fraction=0))
    state = tmp_path / "checkpoints" / "step-0000002" / "trainer_state.pt"
    state.write_bytes(state.read_bytes()[:1000])
    args = ["pretrain", "--corpus", str(review_corpus), "--tokenizer", str(minilm_dir), "--model-preset", "tiny",
            "--max-steps", "4", "--output-dir", str(tmp_path), "--resume", "--eval-fraction", "0", "--progress",
            "false", "--batch-size", "8"]
    assert main(args) == 2
    assert "corrupt or truncated" in capsys.readouterr().err


def test_explain_masking_shows_what_was_masked(capsys):
    assert main(["explain", "masking", "The unaffable dog slept. Then it woke up and ran around the garden.",
                 "--strategy", "whole_word", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "[CLS]" in out and "[SEP]" in out and "maskable tokens chosen (whole_word" in out
    rows = [line.split() for line in out.splitlines()[1:] if line and line[0].isdigit()]
    assert [r[2] for r in rows].count("1") > 0  # segment B present
    assert any(len(r) > 4 for r in rows)  # at least one position masked, with its original token to predict
