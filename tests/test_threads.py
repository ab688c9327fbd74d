"""``threads: auto``: the first steps time 1 thread against all of torch's and keep the faster (timed here with a
fake clock: no real timing in a unit test)."""

import dataclasses

import pytest
import torch
from test_training import Regression, TinyNet, mse_step

from bertkit.finetuning.config import FinetuneConfig
from bertkit.pretraining import PretrainingConfig
from bertkit.training import Trainer, TrainingArguments, threads
from bertkit.training.threads import ThreadTrial, check_threads


@pytest.fixture()
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def fake_clock(seconds_per_step: dict[int, float]):
    """A clock whose every second reading is one step later, by the time a step takes at torch's thread count."""
    now, calls = [0.0], [0]

    def clock() -> float:
        calls[0] += 1
        if calls[0] % 2 == 0:
            now[0] += seconds_per_step[torch.get_num_threads()]
        return now[0]

    return clock


def trial_choice(seconds_per_step: dict[int, float], cores: int = 2) -> ThreadTrial:
    trial = ThreadTrial(cores)
    while trial.chosen is None:
        count = trial.next_count()
        trial.record(count, seconds_per_step[count])
    return trial


def test_a_busy_machine_gets_one_thread_an_idle_one_all(two_threads):
    busy = trial_choice({1: 0.37, 2: 1.9})  # 22 s vs 115 s for 60 steps on the busy machine
    assert busy.chosen == 1 and busy.seen == 4  # a clear case: one step on each count after the warm-up
    idle = trial_choice({1: 0.13, 2: 0.12})  # 5.2 s vs 4.8 s for 40 steps on an idle one
    assert idle.chosen == 2 and idle.seen == idle.steps == 8
    assert trial_choice({1: 0.2, 2: 0.2}).chosen == 1  # a tie: the fewer threads leave the others room
    assert ThreadTrial(4).candidates == [1, 4]


def test_the_warm_up_steps_are_not_timed_and_the_median_decides(two_threads):
    trial = ThreadTrial(2)
    assert trial.next_count() == 1  # the warm-up runs on 1 thread: on a busy machine a step on all can take 10×
    times = iter([50.0, 40.0, 0.3, 0.2, 9.0, 0.2, 0.3, 0.2])  # two slow warm-up steps, then one outlier at 1
    while trial.chosen is None:
        count = trial.next_count()
        trial.record(count, next(times))
    assert trial.seen == trial.steps == 8 and trial.medians() == {1: 0.3, 2: 0.2} and trial.chosen == 2
    assert torch.get_num_threads() == 2
    assert trial.describe() == "threads: auto → 2 (median of 3 steps each: 1 thread 0.3 s/step, 2 threads 0.2 s/step)"
    assert ThreadTrial(1).chosen == 1  # one core: nothing to try


def test_the_trainer_keeps_the_faster_count_and_the_progress_line_says_it(tmp_path, two_threads, monkeypatch,
                                                                            capsys):
    monkeypatch.setattr(threads, "CLOCK", fake_clock({1: 0.1, 2: 0.5}))  # a busy machine
    torch.manual_seed(0)
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=24, learning_rate=0.05, logging_steps=4,
                             seed=7, threads="auto")
    Trainer(TinyNet(), args, Regression(), mse_step).train()
    err = capsys.readouterr().err
    assert "threads: auto → 1 (median of 1 step each: 1 thread 0.1 s/step, 2 threads 0.5 s/step)" in err
    assert "threads=1" in err.rsplit("\r", 1)[-1]  # the progress bar's last line
    assert torch.get_num_threads() == 1  # the run's setting (cpu_threads around a run restores the caller's)
    torch.set_num_threads(2)
    short = TrainingArguments(output_dir=str(tmp_path / "short"), max_steps=6, progress=False, threads="auto")
    Trainer(TinyNet(), short, Regression(), mse_step).train()
    assert "threads: auto → 2 (too few steps to time 1 thread against 2)" in capsys.readouterr().err


def test_a_resumed_run_keeps_the_runs_choice(tmp_path, two_threads, monkeypatch, capsys):
    """Another thread count rounds sums differently: a resumed run computes on the count the run chose, untimed."""
    monkeypatch.setattr(threads, "CLOCK", fake_clock({1: 0.1, 2: 0.5}))
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=24, save_steps=12, progress=False, seed=7,
                             threads="auto")
    Trainer(TinyNet(), args, Regression(), mse_step).train()
    capsys.readouterr()
    torch.set_num_threads(2)
    monkeypatch.setattr(threads, "CLOCK", fake_clock({1: 0.5, 2: 0.1}))  # the machine now favours 2: not asked
    resumed = Trainer(TinyNet(), dataclasses.replace(args, max_steps=40), Regression(), mse_step)
    resumed.train(resume=True)
    assert "threads: auto → 1 (the run's choice, kept on resume)" in capsys.readouterr().err
    assert torch.get_num_threads() == 1 and resumed.chosen_threads == 1


def test_auto_is_the_default_and_flags_are_typed():
    assert FinetuneConfig().threads == PretrainingConfig().threads == "auto"
    assert FinetuneConfig.from_dict({"threads": "1"}).threads == 1  # `--threads 1` arrives as text
    assert check_threads(None) is None and check_threads(3) == 3
    for bad in (0, "many", 1.5, True):
        with pytest.raises(ValueError, match="threads must be a positive integer or 'auto'"):
            check_threads(bad)


def test_the_configs_here_and_the_command_line_agree():
    """Every pretraining and fine-tuning config leaves threads to auto, as `bertkit pretrain` / `finetune` do."""
    from pathlib import Path

    import yaml

    configs = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))
    checked = []
    for path in configs:
        values = yaml.safe_load(path.read_text(encoding="utf-8"))
        kind = PretrainingConfig if "corpus" in values or "model_preset" in values else FinetuneConfig
        try:
            config = kind.from_yaml(path)
        except ValueError:  # another command's config (distill, train-embeddings, seq2seq, pretrain-gpt)
            continue
        checked.append(path.name)
        assert config.threads == "auto", path.name
    assert {"pretrain-en.yaml", "rotten_tomatoes.yaml", "wnut16.yaml", "bertsim.yaml"} <= set(checked)
