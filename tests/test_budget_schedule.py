"""The learning-rate schedule on the clock (``lr_schedule_clock: budget``, Cramming's budget schedule): the rate at
each step is the step-schedule's formula at ``spent share × max_steps``, it ends when the time budget does, and a
resumed run continues the same budget. A fake clock stands in for time."""

import pytest
import torch
from test_training import Regression, TinyNet, mse_step

from bertkit.training import Trainer, TrainingArguments
from bertkit.training.run_options import StepTrainingOptions
from bertkit.training.schedule import lr_multiplier


class FakeClock:
    """A trainer's clock that moves only when the step function says so."""

    def __init__(self) -> None:
        self.now = 1000.0


def budget_trainer(tmp, clock: FakeClock, seconds_per_step: float, **extra) -> Trainer:
    def step(model, batch):
        clock.now += seconds_per_step
        return mse_step(model, batch)

    torch.manual_seed(0)
    settings = dict(learning_rate=0.1, warmup_steps=10, lr_schedule="linear", max_minutes=1.0,
                    lr_schedule_clock="budget", logging_steps=1, progress=False) | extra
    trainer = Trainer.__new__(Trainer)
    trainer.clock = lambda: clock.now  # before __init__ reads it
    Trainer.__init__(trainer, TinyNet(), TrainingArguments(output_dir=str(tmp), max_steps=100, **settings),
                     Regression(), step)
    return trainer


def test_the_rate_follows_the_formula_at_the_spent_share_and_ends_with_the_budget(tmp_path):
    clock = FakeClock()
    result = budget_trainer(tmp_path, clock, seconds_per_step=3.0).train()  # 20 steps fill the 60-second budget
    assert result.step == 21  # the step that goes past the budget is the last
    rates = [r["learning_rate"] for r in result.history if r["split"] == "train"]
    # step k (1-based) runs at the rate computed after step k − 1, when 3 (k − 1) of the 60 seconds were spent
    expected = [0.1 * lr_multiplier(min(1.0, 3 * (k - 1) / 60) * 100, 10, 100, "linear") for k in range(1, 22)]
    assert rates == pytest.approx(expected, abs=1e-12)
    assert rates[0] < rates[1] < rates[2] == pytest.approx(0.1)  # warm-up: 10 % of 100 steps = the first 6 s
    assert rates[-1] == pytest.approx(0.0, abs=1e-12)  # decayed to zero when the time is spent


def test_twice_as_fast_steps_take_the_same_shares_of_the_budget(tmp_path):
    slow = budget_trainer(tmp_path / "slow", FakeClock(), seconds_per_step=3.0).train()
    fast = budget_trainer(tmp_path / "fast", FakeClock(), seconds_per_step=1.5).train()
    slow_rates = [r["learning_rate"] for r in slow.history]
    fast_rates = [r["learning_rate"] for r in fast.history]
    assert fast.step == 41 and fast_rates[::2] == pytest.approx(slow_rates, abs=1e-12)


def test_a_resumed_run_continues_the_budget_and_the_schedule(tmp_path):
    whole = budget_trainer(tmp_path / "whole", FakeClock(), seconds_per_step=3.0).train()
    clock = FakeClock()
    first = budget_trainer(tmp_path / "part", clock, seconds_per_step=3.0, save_steps=8)
    first.args.max_steps = 8  # stop early, as a killed run would, with a checkpoint at step 8
    first.train()
    clock.now += 5000.0  # the time between the runs is not spent on the budget
    resumed = budget_trainer(tmp_path / "part", clock, seconds_per_step=3.0, save_steps=8)
    result = resumed.train(resume=True)
    assert result.step == whole.step == 21
    whole_rates = [r["learning_rate"] for r in whole.history]
    assert [r["learning_rate"] for r in result.history] == pytest.approx(whole_rates[8:], abs=1e-12)


def test_the_budget_clock_needs_a_budget(tmp_path):
    with pytest.raises(ValueError, match="set max_minutes"):
        StepTrainingOptions(lr_schedule_clock="budget", max_steps=10)
    with pytest.raises(ValueError, match="lr_schedule_clock must be steps or budget"):
        StepTrainingOptions(lr_schedule_clock="minutes", max_steps=10, max_minutes=1)
    with pytest.raises(ValueError, match="set max_minutes"):
        TrainingArguments(output_dir=str(tmp_path), max_steps=5, lr_schedule_clock="budget")
    args = StepTrainingOptions(lr_schedule_clock="budget", max_steps=10, max_minutes=2).training_arguments()
    assert (args.lr_schedule_clock, args.max_minutes) == ("budget", 2)
