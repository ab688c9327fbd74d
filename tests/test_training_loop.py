"""The training loop's bookkeeping, one behaviour a test: logging windows, evaluation and checkpoint steps, the best
model and early stopping (also across a resume), the time budget, the progress bar, Ctrl-C, the head's learning rate
and what a resume reads back. Fake clocks stand in for time: nothing here waits."""

import logging
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from test_training import Killed, Regression, TinyNet, mse_step
from torch import nn

from bertkit.training import Trainer, TrainingArguments, loop
from bertkit.training.loop import TrainingInterrupted
from bertkit.training.metrics import read_metrics
from bertkit.training.state import STATE_FILE, latest_checkpoint, load_trainer_state


def trainer(tmp: Path, steps: int, compute=mse_step, evaluate=None, model=None, **extra) -> Trainer:
    """A TinyNet trainer on the noisy-line regression, seeded, quiet, logging every step unless told."""
    torch.manual_seed(123)
    settings = {"learning_rate": 0.05, "logging_steps": 1, "progress": False, "seed": 7, **extra}
    args = TrainingArguments(output_dir=str(tmp), max_steps=steps, **settings)
    return Trainer(model or TinyNet(), args, Regression(), compute, evaluate=evaluate)


def recording(seen: list[float], tokens: float | None = 16.0):
    """mse_step that notes each loss it returns; ``tokens`` None: a step that reports no token count."""

    def step(model, batch):
        loss, stats = mse_step(model, batch)
        seen.append(loss.item())
        return loss, ({} if tokens is None else {"tokens": tokens})

    return step


def fake_clock(monkeypatch, seconds_per_call: float, monotonic: bool = False) -> None:
    """The loop's perf_counter (or monotonic) advances by ``seconds_per_call`` at every reading."""
    now = [0.0]

    def clock() -> float:
        now[0] += seconds_per_call
        return now[0]

    clocks = {"perf_counter": time.perf_counter, "monotonic": time.monotonic}
    clocks["monotonic" if monotonic else "perf_counter"] = clock
    monkeypatch.setattr(loop, "time", SimpleNamespace(**clocks))


def test_max_steps_of_one_is_a_run_and_zero_is_refused(tmp_path):
    assert trainer(tmp_path, 1).train().step == 1
    with pytest.raises(ValueError, match="max_steps must be ≥ 1"):
        TrainingArguments(output_dir=str(tmp_path), max_steps=0)


def test_a_logged_record_is_the_mean_of_its_window_and_the_last_step_is_logged(tmp_path, monkeypatch):
    fake_clock(monkeypatch, 0.5)  # every window lasts 0.5 s: one reading opens it, the next closes it
    seen: list[float] = []
    result = trainer(tmp_path, 5, compute=recording(seen), logging_steps=2).train()
    train = [r for r in result.history if r["split"] == "train"]
    assert [r["step"] for r in train] == [2, 4, 5]
    windows = [seen[0:2], seen[2:4], seen[4:5]]
    assert [r["loss"] for r in train] == pytest.approx([sum(w) / len(w) for w in windows], rel=1e-12)
    assert [r["tokens_per_second"] for r in train] == pytest.approx([16 * len(w) / 0.5 for w in windows])
    assert "tokens" not in train[0]
    assert [r["step"] for r in read_metrics(tmp_path / "metrics.jsonl")] == [2, 4, 5]
    assert {r["split"] for r in read_metrics(tmp_path / "metrics.jsonl")} == {"train"}


def test_a_step_without_a_token_count_logs_zero_tokens_per_second(tmp_path):
    result = trainer(tmp_path, 2, compute=recording([], tokens=None)).train()
    assert [r["tokens_per_second"] for r in result.history] == [0.0, 0.0]


def test_micro_batches_average_the_loss_and_add_up_the_tokens(tmp_path, monkeypatch):
    fake_clock(monkeypatch, 0.5)
    seen: list[float] = []
    result = trainer(tmp_path, 3, compute=recording(seen, tokens=8.0), gradient_accumulation_steps=2).train()
    assert [r["loss"] for r in result.history] == pytest.approx(
        [(seen[i] + seen[i + 1]) / 2 for i in (0, 2, 4)], rel=1e-12)
    assert [r["tokens_per_second"] for r in result.history] == pytest.approx([16 / 0.5] * 3)


def test_eval_and_save_steps_and_the_last_step_does_both(tmp_path):
    fixed = Regression(seed=3).next_batch()
    model_seen = []

    def evaluate(model):
        model_seen.append(model)
        return {"mse": nn.functional.mse_loss(model.body(fixed["x"]), fixed["y"]).item()}

    run = trainer(tmp_path, 7, evaluate=evaluate, eval_steps=3, save_steps=2, save_total_limit=3, logging_steps=10)
    result = run.train()
    assert result.step == 7 and result.stopped_early is False and result.best_metric is None
    evals = [r for r in result.history if r["split"] == "eval"]
    assert [r["step"] for r in evals] == [3, 6, 7] and all(m is run.model for m in model_seen)
    assert evals[-1]["mse"] < evals[0]["mse"]  # evaluated on the model being trained
    assert [r["step"] for r in read_metrics(tmp_path / "metrics.jsonl") if r["split"] == "eval"] == [3, 6, 7]
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("step-*")) == [
        "step-0000004", "step-0000006", "step-0000007"]  # 2, 4, 6, 7 written; save_total_limit keeps three


def scored_run(tmp: Path, steps: int, scores: dict[int, float], **extra) -> Trainer:
    """A trainer whose evaluation at step s scores ``scores[s]``."""
    run = trainer(tmp, steps, evaluate=lambda model: {"score": scores[run.step]}, metric_for_best="score",
                  logging_steps=100, **extra)
    return run


@pytest.mark.parametrize("greater", [True, False])
def test_a_tie_is_no_improvement_and_lower_can_be_better(tmp_path, greater):
    sign = 1 if greater else -1
    scores = {2: 0.5 * sign, 4: 0.7 * sign, 6: 0.7 * sign, 8: 0.9 * sign, 10: 0.9 * sign}
    saved = []
    run = scored_run(tmp_path, 10, scores, eval_steps=2, early_stopping_patience=2, greater_is_better=greater)
    run.save_best = lambda model, folder: saved.append((run.step, folder))
    result = run.train()
    assert saved == [(2, tmp_path / "best"), (4, tmp_path / "best"), (8, tmp_path / "best")]
    assert result.best_metric == 0.9 * sign and not result.stopped_early
    scores[8] = 0.7 * sign  # a second tie with the best: patience 2 runs out at step 8
    result = scored_run(tmp_path / "again", 10, scores, eval_steps=2, early_stopping_patience=2,
                        greater_is_better=greater).train()
    assert result.stopped_early and result.step == 8 and result.best_metric == 0.7 * sign


def test_the_default_best_model_saver_writes_the_tokenizer_too(tmp_path):
    class Vocab:
        def save_pretrained(self, folder):
            (Path(folder) / "vocab.txt").write_text("[PAD]\n[UNK]\n")

    class WithTokenizer(TinyNet):
        def save_pretrained(self, folder, tokenizer=None):
            super().save_pretrained(folder)
            if tokenizer is not None:
                tokenizer.save_pretrained(folder)

    torch.manual_seed(0)
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=2, save_steps=2, progress=False,
                             metric_for_best="score")
    Trainer(WithTokenizer(), args, Regression(), mse_step, evaluate=lambda m: {"score": 1.0},
            tokenizer=Vocab()).train()
    assert (tmp_path / "best" / "vocab.txt").is_file() and (tmp_path / "best" / "model.safetensors").is_file()
    assert (latest_checkpoint(tmp_path / "checkpoints") / "vocab.txt").is_file()


def test_early_stopping_counts_on_across_a_resume(tmp_path):
    scores = {3: 0.5, 6: 0.7, 9: 0.6, 12: 0.65, 15: 0.9}
    whole = scored_run(tmp_path / "whole", 15, scores, eval_steps=3, save_steps=3, early_stopping_patience=2).train()
    assert whole.stopped_early and whole.step == 12 and whole.best_metric == 0.7
    calls = iter(range(100))

    def dies_in_step_10(model, batch):
        if next(calls) == 9:
            raise Killed
        return mse_step(model, batch)

    with pytest.raises(Killed):
        scored_run(tmp_path / "part", 15, scores, eval_steps=3, save_steps=3, early_stopping_patience=2,
                   compute=dies_in_step_10).train()
    saved = load_trainer_state(latest_checkpoint(tmp_path / "part" / "checkpoints"))
    assert (saved["step"], saved["best_metric"], saved["bad_evals"]) == (9, 0.7, 1)
    resumed = scored_run(tmp_path / "part", 15, scores, eval_steps=3, save_steps=3, early_stopping_patience=2)
    result = resumed.train(resume=True)
    assert (result.stopped_early, result.step, result.best_metric) == (True, 12, 0.7)


def test_the_time_budget_stops_evaluates_and_checkpoints_at_the_step_it_is_spent(tmp_path, monkeypatch):
    fake_clock(monkeypatch, 0.125, monotonic=True)  # one reading at the start, then one after each step
    fixed = Regression(seed=3).next_batch()
    evaluate = lambda model: {"mse": nn.functional.mse_loss(model.body(fixed["x"]), fixed["y"]).item()}  # noqa: E731
    result = trainer(tmp_path, 500, evaluate=evaluate, max_minutes=0.125, save_steps=1000,
                     logging_steps=1000).train()
    # the deadline is 0.125 s + 60 × 0.125 min = 7.625 s; step k reads 0.125 (k + 1) s: strictly past it at k = 61
    assert result.step == 61 and result.stopped_early is False
    assert [(r["step"], r["split"]) for r in result.history if r["split"] == "eval"] == [(61, "eval")]
    assert [r["step"] for r in result.history if r["split"] == "train"] == [61]  # the partial window is logged
    assert latest_checkpoint(tmp_path / "checkpoints").name == "step-0000061"


def test_without_a_budget_the_run_goes_to_max_steps(tmp_path, monkeypatch):
    fake_clock(monkeypatch, 3600.0, monotonic=True)  # hours pass between steps: no budget, no stop
    result = trainer(tmp_path, 4, max_minutes=None).train()
    assert result.step == 4 and result.stopped_early is False


def test_ctrl_c_names_the_step_and_the_checkpoint(tmp_path):
    calls = iter(range(100))

    def interrupted_in_step_6(model, batch):
        if next(calls) == 5:
            raise KeyboardInterrupt
        return mse_step(model, batch)

    with pytest.raises(TrainingInterrupted) as caught:
        trainer(tmp_path, 9, compute=interrupted_in_step_6, save_steps=2).train()
    stop = caught.value
    assert isinstance(stop, KeyboardInterrupt)
    assert (stop.step, stop.max_steps, stop.checkpoint) == (5, 9, tmp_path / "checkpoints" / "step-0000004")
    assert str(stop) == stop.describe() == (f"stopped after step 5 of 9; --resume continues from step 4, "
                                            f"{stop.checkpoint} (steps 5–5 are redone)")


def test_ctrl_c_messages_with_and_without_a_checkpoint():
    folder = Path("run") / "checkpoints" / "step-0000012"
    assert TrainingInterrupted(12, 20, folder).describe() == (
        f"stopped after step 12 of 20; --resume continues from step 12, {folder}")
    assert TrainingInterrupted(15, 20, folder).describe() == (
        f"stopped after step 15 of 20; --resume continues from step 12, {folder} (steps 13–15 are redone)")
    assert TrainingInterrupted(15, 20, folder).describe(resumable=False) == (
        "stopped after step 15 of 20; this command does not resume: run it again with --overwrite to start over")
    assert str(TrainingInterrupted(3, 20, None)).startswith(
        "stopped after step 3 of 20; no checkpoint was written yet (save_steps)")


def test_ctrl_c_after_the_checkpoint_vanished_offers_none(tmp_path):
    calls = iter(range(100))

    def interrupted_in_step_4(model, batch):
        if next(calls) == 3:
            import shutil

            shutil.rmtree(tmp_path / "checkpoints" / "step-0000002")  # `latest` now names a missing folder
            raise KeyboardInterrupt
        return mse_step(model, batch)

    with pytest.raises(TrainingInterrupted) as caught:
        trainer(tmp_path, 9, compute=interrupted_in_step_4, save_steps=2).train()
    assert caught.value.checkpoint is None and caught.value.step == 3


def test_the_progress_bar_counts_steps_to_max_steps_and_from_the_resumed_step(tmp_path, capsys):
    trainer(tmp_path, 3, save_steps=3, progress=True).train()
    err = capsys.readouterr().err
    assert "0/3" in err and "3/3" in err and ("step/s" in err or "s/step" in err)
    trainer(tmp_path, 6, save_steps=3, progress=True).train(resume=True)
    err = capsys.readouterr().err
    assert "3/6" in err and "6/6" in err and "0/6" not in err
    trainer(tmp_path / "quiet", 3, progress=False).train()  # progress off: no bar
    assert "3/3" not in capsys.readouterr().err


def test_the_progress_bar_shows_the_last_record_and_the_thread_count(tmp_path, capsys, monkeypatch):
    fake_clock(monkeypatch, 0.5)

    def with_accuracy(model, batch):
        loss, stats = mse_step(model, batch)
        return loss, {**stats, "mlm_accuracy": 0.25}

    result = trainer(tmp_path, 2, compute=with_accuracy, progress=True).train()
    last = capsys.readouterr().err.rsplit("\r", 1)[-1]
    record = result.history[-1]
    for key in ("loss", "mlm_accuracy", "tokens_per_second"):
        assert f"{key}={record[key]:.3g}" in last
    assert f"threads={torch.get_num_threads()}" in last


def test_train_starts_afresh_unless_asked_to_resume(tmp_path):
    trainer(tmp_path, 4, save_steps=2).train()
    again = trainer(tmp_path, 4, save_steps=2).train()
    assert [r["step"] for r in again.history] == [1, 2, 3, 4]


def test_resume_from_a_named_checkpoint_and_from_nothing(tmp_path):
    trainer(tmp_path, 6, save_steps=3).train()
    assert trainer(tmp_path / "empty", 6).resume() == 0
    early = tmp_path / "checkpoints" / "step-0000003"
    run = trainer(tmp_path, 6, save_steps=3)
    assert run.resume(early) == 3 and run.step == 3
    assert run.resume() == 6


def test_resuming_with_another_max_steps_warns_and_the_same_does_not(tmp_path, caplog):
    trainer(tmp_path, 4, save_steps=2).train()
    with caplog.at_level(logging.WARNING, logger="bertkit.training.loop"):
        trainer(tmp_path, 4, save_steps=2).resume()
        assert not caplog.records
        trainer(tmp_path, 8, save_steps=2).resume()
    assert "resuming a run of max_steps 4 with max_steps 8" in caplog.text


def test_a_checkpoint_without_the_later_fields_resumes_with_their_defaults(tmp_path, caplog):
    """Checkpoints of an older bertkit hold no max_steps, best metric, bad evaluations or thread choice."""
    trainer(tmp_path, 4, save_steps=2).train()
    path = latest_checkpoint(tmp_path / "checkpoints") / STATE_FILE
    values = torch.load(path, weights_only=True)
    values.update(best_metric=0.3, bad_evals=2)
    for key in ("max_steps", "chosen_threads"):
        values.pop(key)
    torch.save(values, path)
    run = trainer(tmp_path, 8, save_steps=2)
    with caplog.at_level(logging.WARNING, logger="bertkit.training.loop"):
        assert run.resume() == 4
    assert not caplog.records and (run.best_metric, run.bad_evals) == (0.3, 2)
    for key in ("best_metric", "bad_evals"):
        values.pop(key)
    torch.save(values, path)
    run = trainer(tmp_path, 8, save_steps=2)
    run.resume()
    assert (run.best_metric, run.bad_evals, run.chosen_threads) == (None, 0, None)


def test_the_head_learns_at_its_scale_and_the_body_rate_is_logged(tmp_path):
    torch.manual_seed(0)
    model = TinyNet()
    model.body = nn.Sequential(nn.Linear(4, 16, bias=False), nn.ReLU(), nn.Linear(16, 1))  # groups: body, head …
    run = trainer(tmp_path, 2, model=model, head_prefixes=("body.2.",), head_lr_scale=10.0, warmup_steps=0)
    rates = {g["name"]: g["lr"] for g in run.optimizer.param_groups}
    assert rates == pytest.approx({"body/decay": 0.05, "head/no_decay": 0.5, "head/decay": 0.5})
    assert [r["learning_rate"] for r in run.train().history] == pytest.approx([0.05, 0.025])  # linear decay


def test_a_parameter_without_a_gradient_in_a_step_stays_put(tmp_path):
    """AdamW skips a parameter whose gradient is None: one used in step 1 only is not moved by its momentum later."""
    torch.manual_seed(0)
    model = TinyNet()
    model.side = nn.Linear(4, 1)
    calls = iter(range(100))

    def side_in_step_1(model, batch):
        loss, stats = mse_step(model, batch)
        if next(calls) == 0:
            loss = loss + model.side(batch["x"]).pow(2).mean()
        return loss, stats

    run = trainer(tmp_path, 3, model=model, compute=side_in_step_1, warmup_steps=0)
    before, after = model.side.weight.detach().clone(), []
    run.optimizer.register_step_post_hook(lambda *_: after.append(model.side.weight.detach().clone()))
    run.train()
    assert not torch.equal(after[0], before)
    assert torch.equal(after[1], after[0]) and torch.equal(after[2], after[0])


def test_a_nested_output_dir_is_made(tmp_path):
    deep = tmp_path / "a" / "b" / "run"
    trainer(deep, 2).train()
    assert [r["step"] for r in read_metrics(deep / "metrics.jsonl")] == [1, 2]


@pytest.mark.parametrize("cores, threads", [(1, "auto"), (2, None), (2, 2)])
def test_no_thread_trial_on_one_core_or_without_threads_auto(tmp_path, capsys, cores, threads):
    before = torch.get_num_threads()
    torch.set_num_threads(cores)
    try:
        run = trainer(tmp_path, 24, threads=threads)
        run.train()
        assert "threads: auto" not in capsys.readouterr().err and run.chosen_threads is None
        assert torch.get_num_threads() == cores
    finally:
        torch.set_num_threads(before)


def test_the_thread_trial_needs_twice_its_steps_left(tmp_path, capsys):
    """With 2 cores the trial takes 2 + 3 × 2 = 8 steps: it runs when 16 steps are left, not 15 (resumed: left)."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        trainer(tmp_path / "16", 16, threads="auto").train()
        err = capsys.readouterr().err
        assert "threads: auto → " in err and "too few steps" not in err
        torch.set_num_threads(2)
        trainer(tmp_path / "15", 15, threads="auto").train()
        assert "threads: auto → 2 (too few steps to time 1 thread against 2)" in capsys.readouterr().err
        trainer(tmp_path / "resumed", 10, save_steps=10).train()  # no trial: threads not auto
        torch.set_num_threads(2)
        trainer(tmp_path / "resumed", 24, save_steps=10, threads="auto").train(resume=True)  # 14 left
        assert "too few steps" in capsys.readouterr().err
    finally:
        torch.set_num_threads(before)
