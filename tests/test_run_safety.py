"""Nothing is lost: a new run never overwrites an earlier one unasked, --resume needs a checkpoint, pruning keeps
what `latest` names, a resumed run with other sizes or another max_steps says so."""

import logging
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from bertkit.cli import main
from bertkit.corpora import rotten_tomatoes_reviews
from bertkit.training import state


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    reviews = [text for _, text in rotten_tomatoes_reviews()[:240]]
    path = tmp_path_factory.mktemp("corpus") / "reviews.txt"
    path.write_text("\n\n".join("\n".join(reviews[i:i + 4]) for i in range(0, len(reviews), 4)) + "\n")
    return path


def pretrain(corpus, tokenizer, out, *extra):
    return main(["pretrain", "--corpus", str(corpus), "--tokenizer", str(tokenizer), "--model-preset", "tiny",
                 "--max-seq-length", "32", "--batch-size", "8", "--max-steps", "2", "--save-steps", "2",
                 "--progress", "false", "--eval-fraction", "0", "--output-dir", str(out), *extra])


def test_a_second_run_is_refused_unless_resumed_or_overwritten(corpus, minilm_dir, tmp_path, capsys, caplog):
    out = tmp_path / "run"
    assert pretrain(corpus, minilm_dir, out, "--resume") == 2
    assert "has no checkpoint to continue from" in capsys.readouterr().err
    assert pretrain(corpus, minilm_dir, out) == 0
    first = (out / "metrics.jsonl").read_text()
    assert pretrain(corpus, minilm_dir, out) == 2
    error = capsys.readouterr().err
    assert "already holds a run (metrics.jsonl, checkpoints, summary.json, model)" in error and "--overwrite" in error
    assert (out / "metrics.jsonl").read_text() == first  # untouched
    with caplog.at_level(logging.WARNING, logger="bertkit.training.loop"):
        assert pretrain(corpus, minilm_dir, out, "--resume", "--max-steps", "4") == 0
    assert "resuming a run of max_steps 2 with max_steps 4" in caplog.text
    assert pretrain(corpus, minilm_dir, out, "--overwrite", "--hidden-size", "64", "--num-attention-heads", "2") == 0
    assert [p.name for p in (out / "checkpoints").glob("step-*")] == ["step-0000002"]  # the old run's are gone
    capsys.readouterr()
    assert pretrain(corpus, minilm_dir, out, "--resume", "--max-steps", "4", "--hidden-size", "128") == 2
    assert "these differ: hidden_size 128 (the run's: 64)" in capsys.readouterr().err
    (out / "checkpoints" / state.RUN_CONFIG).unlink()  # a run of an older bertkit: the checkpoint's shapes decide
    assert pretrain(corpus, minilm_dir, out, "--resume", "--max-steps", "4") == 2
    assert "cannot resume from" in capsys.readouterr().err


def test_resume_alone_continues_the_run_with_its_own_settings(corpus, minilm_dir, tmp_path, capsys):
    import json
    import shutil

    from bertkit.pretraining import PretrainingConfig, run_pretraining
    from bertkit.training.metrics import read_metrics

    full = tmp_path / "full"
    assert pretrain(corpus, minilm_dir, full, "--max-steps", "4", "--learning-rate", "3e-4", "--masking", "span",
                    "--logging-steps", "1", "--warmup-steps", "1") == 0
    killed = tmp_path / "killed"  # the full run as a kill after step 2 would have left it
    shutil.copytree(full, killed)
    for name in ("model", "summary.json", "checkpoints/step-0000004"):
        shutil.rmtree(killed / name) if (killed / name).is_dir() else (killed / name).unlink()
    (killed / "checkpoints" / "latest").write_text("step-0000002\n")
    lines = (killed / "metrics.jsonl").read_text().splitlines(keepends=True)
    (killed / "metrics.jsonl").write_text("".join(lines[:2]))
    assert main(["pretrain", f"output_dir={killed}", "--resume"]) == 0  # nothing else: the run's own settings
    keys = ("step", "loss", "mlm_accuracy", "learning_rate")
    runs = [[{k: r.get(k) for k in keys} for r in read_metrics(folder / "metrics.jsonl")] for folder in (full, killed)]
    assert len(runs[0]) == 4 and runs[0] == runs[1]  # bit for bit, at lr 3e-4 with span masking
    summaries = [json.loads((folder / "summary.json").read_text())["config"] for folder in (full, killed)]
    assert summaries[1] == summaries[0] | {"output_dir": str(killed)}
    capsys.readouterr()
    assert main(["pretrain", f"output_dir={killed}", "max_seq_length=64", "--resume", "--masking", "token"]) == 2
    error = capsys.readouterr().err
    assert "masking 'token' (the run's: 'span'); max_seq_length 64 (the run's: 32)" in error and "--overwrite" in error
    config = PretrainingConfig(**{**summaries[0], "learning_rate": 1e-4, "output_dir": str(killed)})
    with pytest.raises(ValueError, match=r"learning_rate 0.0001 \(the run's: 0.0003\)"):
        run_pretraining(config, resume=True)  # the library's resume checks the same


def test_ctrl_c_names_the_step_and_the_checkpoint_resume_continues_from(corpus, minilm_dir, tmp_path):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "bertkit", "pretrain", "--corpus", str(corpus), "--tokenizer", str(minilm_dir),
               "--model-preset", "tiny", "--max-seq-length", "32", "--batch-size", "8", "--max-steps", "100000",
               "--save-steps", "3", "--progress", "false", "--eval-fraction", "0", "--output-dir", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        while not (out / "checkpoints" / "latest").is_file():  # training, with a checkpoint behind it
            assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130 and "Traceback" not in err, err
    found = re.search(r"bertkit pretrain: interrupted: stopped after step (\d+) of 100000; --resume continues from "
                      r"step (\d+), (\S+?)(?: \(steps|$)", err, re.MULTILINE)
    assert found, err
    step, saved, folder = int(found[1]), int(found[2]), Path(found[3])
    assert 3 <= saved <= step and saved % 3 == 0
    assert folder == state.latest_checkpoint(out / "checkpoints") and state.load_trainer_state(folder)["step"] == saved


@pytest.mark.parametrize("command", [["distill", "mode=embedding"], ["pretrain-gpt", "corpus=[CORPUS]"]])
def test_commands_without_resume_do_not_advise_it(command, corpus, tmp_path, capsys):
    (tmp_path / "metrics.jsonl").write_text("")  # an earlier run
    argv = [part.replace("CORPUS", str(corpus)) for part in command] + [f"output_dir={tmp_path}"]
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert "already holds a run (metrics.jsonl): replace it with --overwrite" in error and "--resume" not in error


def test_pruning_never_removes_what_latest_names(tmp_path):
    class Tiny(torch.nn.Linear):
        def save_pretrained(self, folder, tokenizer=None):
            folder.mkdir(parents=True, exist_ok=True)

    model = Tiny(2, 2)
    for step in (10, 20, 2, 4):  # a rerun into the same folder writes lower steps after higher ones
        state.save_checkpoint(tmp_path, step, model, {"step": step}, keep=2)
    assert state.latest_checkpoint(tmp_path).name == "step-0000004"
    assert sorted(p.name for p in tmp_path.glob("step-*")) == ["step-0000002", "step-0000004"]


def test_a_small_corpus_keeps_two_documents_on_each_side_for_nsp(tmp_path):
    from bertkit.pretraining import PretrainingConfig
    from bertkit.pretraining.run import split_documents

    documents = [[f"document {i}."] for i in range(12)]
    train, held_out = split_documents(PretrainingConfig(corpus=["x"], eval_fraction=0.05), documents)
    assert len(held_out) == 2 and len(train) == 10
    with pytest.raises(ValueError, match="3 document.*two documents on each side"):
        split_documents(PretrainingConfig(corpus=["x"]), documents[:3])
    assert PretrainingConfig.from_dict({"warmup_ratio": "0.1"}).warmup_ratio == 0.1


def test_vocabulary_training_says_why_the_vocabulary_is_smaller(tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("a few words repeated\n" * 30)
    assert main(["train-tokenizer", str(corpus), "--vocab-size", "2000", "-o", str(tmp_path / "v")]) == 0
    assert "fewer than --vocab-size 2000: no further pair or word occurs often enough" in capsys.readouterr().err


def test_a_missing_tokenizer_says_how_to_make_it(corpus, tmp_path, capsys):
    assert pretrain(corpus, tmp_path / "vocab", tmp_path / "out") == 2
    assert f"no tokenizer folder {tmp_path / 'vocab'}: train one first with `bertkit train-tokenizer" in \
        capsys.readouterr().err


def test_fine_tuning_checkpoints_resumes_and_refuses_to_overwrite(tmp_path, capsys):
    import json

    from finetuning_fixtures import save_tiny_model, sentiment_examples

    folder = save_tiny_model(tmp_path / "tiny")
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps(e) + "\n" for e in sentiment_examples(64, 0)))
    out = tmp_path / "out"
    common = ["finetune", f"model={folder}", f"train_file={train}", f"output_dir={out}", "batch_size=8",
              "max_length=24", "progress=false", "threads=1", "--save-steps", "2"]
    assert main([*common, "--max-steps", "4"]) == 0
    assert json.loads(capsys.readouterr().out)["epochs_run"] == 0.5  # 7 batches an epoch → 4 steps
    assert main([*common, "--max-steps", "6"]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert main([*common, "--max-steps", "6", "--resume"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["epochs_run"] == 0.75 and report["dev"]["step"] in (4, 6)
    assert state.latest_checkpoint(out / "checkpoints").name == "step-0000006"
    assert main([*common, "--max-steps", "8", "--resume", "--lr", "1e-3"]) == 2  # not the run's learning rate
    assert "learning_rate 0.001 (the run's: 2e-05)" in capsys.readouterr().err
