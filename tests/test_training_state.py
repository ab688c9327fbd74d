"""Checkpoints and run folders (training/state.py) called directly: which checkpoints are kept, a stale staging
folder, the GPU random state handled on a CPU-only machine (torch.cuda replaced by a recorder), refused trainer
states, the output-folder rules and the run settings a resume compares."""

import json
import random

import pytest
import torch

from bertkit.pretraining import PretrainingConfig
from bertkit.training import state


class Folder:
    """A model whose folder is one file naming the tokenizer it was saved with."""

    def save_pretrained(self, folder, tokenizer=None):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "model.txt").write_text(str(tokenizer))


def test_the_newest_checkpoints_are_kept_and_a_stale_staging_folder_is_not_carried_over(tmp_path):
    directory = tmp_path / "deep" / "checkpoints"  # parents made
    stale = directory / ".step-0000003.tmp"
    stale.mkdir(parents=True)
    (stale / "junk").write_text("from a killed run")
    for step in (1, 2, 3, 4):
        state.save_checkpoint(directory, step, Folder(), {"step": step}, tokenizer=f"vocab-{step}")
    assert sorted(p.name for p in directory.glob("step-*")) == ["step-0000003", "step-0000004"]  # keep=2
    assert not (directory / "step-0000003" / "junk").exists()
    assert (directory / "step-0000004" / "model.txt").read_text() == "vocab-4"
    assert state.latest_checkpoint(directory).name == "step-0000004"
    state.save_checkpoint(directory, 4, Folder(), {"step": 4}, keep=3)  # the same step again replaces it
    assert state.load_trainer_state(directory / "step-0000004")["step"] == 4
    assert len(list(directory.glob("step-*"))) == 2
    state.save_checkpoint(directory, 5, Folder(), {"step": 5}, keep=0)  # 0: prune nothing
    assert len(list(directory.glob("step-*"))) == 3
    state.save_checkpoint(directory, 6, Folder(), {"step": 6}, keep=1)
    assert [p.name for p in directory.glob("step-*")] == ["step-0000006"]
    rerun = tmp_path / "a" / "b" / "checkpoints"  # a rerun writes lower steps: age decides, not the step
    for step in (5, 1, 2):
        state.save_checkpoint(rerun, step, Folder(), {"step": step})
    assert sorted(p.name for p in rerun.glob("step-*")) == ["step-0000001", "step-0000002"]


def test_gpu_random_state_is_saved_and_restored_per_device(monkeypatch, caplog):
    calls = []
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: [torch.tensor([1]), torch.tensor([2])])
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda values, index: calls.append((int(values), index)))
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    saved = state.rng_states(cuda)
    assert [int(v) for v in saved["cuda"]] == [1, 2] and "cuda" not in state.rng_states(cpu)
    assert "cuda" not in state.rng_states(None)
    state.restore_rng_states(saved, cuda)
    assert calls == [(1, 0)]  # one GPU visible: the first state only
    assert "the random state of 2 GPU(s), this process sees 1" in caplog.text
    caplog.clear()
    state.restore_rng_states(saved, cpu)
    assert calls == [(1, 0)] and "this run is on the CPU" in caplog.text
    caplog.clear()
    state.restore_rng_states(state.rng_states(cpu), cuda)
    assert calls == [(1, 0)] and "holds no GPU random state" in caplog.text
    caplog.clear()
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    state.restore_rng_states(saved, cuda)
    assert calls[1:] == [(1, 0), (2, 1)] and not caplog.text


def test_python_random_state_round_trips():
    random.seed(3)
    saved = state.rng_states()
    expected = [random.random() for _ in range(3)]
    state.restore_rng_states(saved)
    assert [random.random() for _ in range(3)] == expected


class Unsafe:
    """Anything but tensors and plain values: what weights_only refuses to build."""


def test_trainer_states_that_are_not_plain_values_or_lack_a_step_are_refused(tmp_path):
    torch.save({"step": 1, "payload": Unsafe()}, tmp_path / state.STATE_FILE)  # a pickle that runs code to load
    with pytest.raises(ValueError, match="corrupt or truncated"):
        state.load_trainer_state(tmp_path)
    torch.save({"optimizer": {}}, tmp_path / state.STATE_FILE)
    with pytest.raises(ValueError, match="not a bertkit trainer state"):
        state.load_trainer_state(tmp_path)
    torch.save([1, 2], tmp_path / state.STATE_FILE)
    with pytest.raises(ValueError, match="not a bertkit trainer state"):
        state.load_trainer_state(tmp_path)
    with pytest.raises(FileNotFoundError, match="not a training checkpoint"):
        state.load_trainer_state(tmp_path / "nowhere")


def test_output_folder_rules(tmp_path):
    state.check_output_dir(tmp_path / "new", resume=False, overwrite=False)  # nothing there: fine
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "metrics.jsonl").write_text("{}\n")
    (run / "notes.txt").write_text("the user's own file")
    with pytest.raises(ValueError, match=r"already holds a run \(metrics.jsonl, checkpoints\): continue it with "):
        state.check_output_dir(run, resume=False, overwrite=False)
    with pytest.raises(ValueError, match=r"already holds a run \(metrics.jsonl, checkpoints\): replace it"):
        state.check_output_dir(run, resume=False, overwrite=False, resumable=False)
    with pytest.raises(ValueError, match="has no checkpoint to continue from"):
        state.check_output_dir(run, resume=True, overwrite=False)
    state.check_output_dir(run, resume=False, overwrite=True, clear=False)  # another rank: leaves the files
    assert (run / "metrics.jsonl").exists()
    state.check_output_dir(run, resume=False, overwrite=True)
    assert not (run / "metrics.jsonl").exists() and not (run / "checkpoints").exists()
    assert (run / "notes.txt").exists()  # only the run's own files go
    state.save_checkpoint(run / "checkpoints", 1, Folder(), {"step": 1})
    state.check_output_dir(run, resume=True, overwrite=False)
    (run / "checkpoints" / state.LATEST).write_text("step-0000009\n")
    with pytest.raises(ValueError, match="names step-0000009, which does not exist"):
        state.latest_checkpoint(run / "checkpoints")


def test_a_resume_compares_the_settings_that_change_the_run(tmp_path, caplog):
    config = PretrainingConfig(output_dir=str(tmp_path), max_seq_length=64, learning_rate=1e-4, max_steps=10)
    assert state.saved_run_config(tmp_path) is None
    state.check_resumed_config(tmp_path, config)  # an older run kept no settings: warned, accepted
    assert "keeps no run settings" in caplog.text
    state.save_run_config(tmp_path, config)
    assert state.saved_run_config(tmp_path) == json.loads(json.dumps(config.to_dict(), default=str))
    state.check_resumed_config(tmp_path, config)
    longer = PretrainingConfig(output_dir=str(tmp_path), max_seq_length=64, learning_rate=1e-4, max_steps=20)
    state.check_resumed_config(tmp_path, longer)  # how long it runs may change
    changed = PretrainingConfig(output_dir=str(tmp_path), max_seq_length=128, learning_rate=3e-4, max_steps=10)
    with pytest.raises(ValueError, match=r"max_seq_length 128 \(the run's: 64\); learning_rate 0.0003"):
        state.check_resumed_config(tmp_path, changed)
    (tmp_path / "checkpoints" / state.RUN_CONFIG).write_text("{not json")
    with pytest.raises(ValueError, match="the run's settings"):
        state.saved_run_config(tmp_path)
    (tmp_path / "checkpoints" / state.RUN_CONFIG).write_text("[1]")
    assert state.saved_run_config(tmp_path) is None
    (tmp_path / "checkpoints" / state.RUN_CONFIG).write_text('{"no_such_option": 1}')
    with pytest.raises(ValueError, match="no longer reads as"):
        state.check_resumed_config(tmp_path, config)
