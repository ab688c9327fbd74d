"""The shared training pieces: parameter groups, schedules, the loop, checkpoints and exact resumption."""

import math

import pytest
import torch
from torch import nn

from bertkit.config import BertConfig
from bertkit.model import BertForPreTraining
from bertkit.training import Trainer, TrainingArguments, build_optimizer, build_scheduler, parameter_groups
from bertkit.training.metrics import read_metrics
from bertkit.training.schedule import lr_multiplier
from bertkit.training.state import latest_checkpoint, load_trainer_state


def test_weight_decay_skips_biases_and_layernorm_and_head_learns_faster():
    model = BertForPreTraining(BertConfig.preset("tiny", vocab_size=50))
    groups = {g["name"]: g for g in parameter_groups(model, 0.01, head_prefixes=("cls.",), head_lr_scale=10.0)}
    names = {id(p): n for n, p in model.named_parameters()}
    no_decay = [names[id(p)] for p in groups["body/no_decay"]["params"]]
    assert all(n.endswith("bias") or "LayerNorm" in n for n in no_decay)
    assert "bert.embeddings.LayerNorm.weight" in no_decay and "bert.pooler.dense.bias" in no_decay
    decay = [names[id(p)] for p in groups["body/decay"]["params"]]
    assert "bert.encoder.layer.0.attention.self.query.weight" in decay and groups["body/decay"]["weight_decay"] == 0.01
    assert groups["body/no_decay"]["weight_decay"] == 0.0
    assert groups["head/decay"]["lr_scale"] == 10.0 and groups["body/decay"]["lr_scale"] == 1.0
    optimizer = build_optimizer(model, 1e-3, head_prefixes=("cls.",), head_lr_scale=10.0)
    assert sorted({g["lr"] for g in optimizer.param_groups}) == pytest.approx([1e-3, 1e-2])
    # every trainable parameter exactly once (the tied decoder is the word-embedding matrix)
    assert sum(len(g["params"]) for g in groups.values()) == len(list(model.parameters()))


@pytest.mark.parametrize("kind", ["linear", "cosine", "constant"])
def test_schedules_warm_up_linearly_then_decay(kind):
    assert [lr_multiplier(s, 4, 12, kind) for s in range(4)] == [0.0, 0.25, 0.5, 0.75]
    assert lr_multiplier(4, 4, 12, kind) == 1.0
    end = lr_multiplier(12, 4, 12, kind)
    middle = lr_multiplier(8, 4, 12, kind)
    assert {"linear": (0.0, 0.5), "cosine": (0.0, 0.5), "constant": (1.0, 1.0)}[kind] == pytest.approx((end, middle))
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=2.0)
    scheduler = build_scheduler(optimizer, kind, 4, 12)
    for _ in range(6):
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(2.0 * lr_multiplier(6, 4, 12, kind))
    with pytest.raises(ValueError, match="unknown schedule"):
        build_scheduler(optimizer, "exponential", 0, 10)


def test_schedule_edges_one_decay_step_past_the_end_and_refusals():
    assert lr_multiplier(5, 4, 5, "linear") == 0.0 and lr_multiplier(5, 4, 5, "cosine") == pytest.approx(0.0)
    assert lr_multiplier(14, 4, 12, "cosine") == pytest.approx(0.0)  # past the last step: stays at zero
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    assert build_scheduler(optimizer, "linear", 0, 1).get_last_lr() == [1.0]  # a one-step run is a run
    for warmup, total in ((-1, 10), (0, 0)):
        with pytest.raises(ValueError, match="need warmup_steps ≥ 0 and total_steps ≥ 1"):
            build_scheduler(optimizer, "linear", warmup, total)


class Regression:
    """A tiny resumable batch source: noisy y = 3x + 1, drawn from its own generator."""

    def __init__(self, seed: int = 0):
        self.generator = torch.Generator().manual_seed(seed)

    def next_batch(self):
        x = torch.randn(16, 4, generator=self.generator)
        return {"x": x, "y": x.sum(1, keepdim=True) * 3 + 1 + 0.1 * torch.randn(16, 1, generator=self.generator)}

    def state_dict(self):
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, values):
        self.generator.set_state(values["generator"])


class TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.config = BertConfig.preset("tiny")
        self.body = nn.Sequential(nn.Linear(4, 16), nn.Dropout(0.2), nn.ReLU(), nn.Linear(16, 1))

    def save_pretrained(self, folder, tokenizer=None):
        from safetensors.torch import save_file

        folder.mkdir(parents=True, exist_ok=True)
        save_file(self.state_dict(), str(folder / "model.safetensors"))
        (folder / "config.json").write_text(self.config.to_json_string())


def mse_step(model, batch):
    loss = nn.functional.mse_loss(model.body(batch["x"]), batch["y"])
    return loss, {"tokens": float(batch["x"].shape[0])}


def run(tmp, steps, resume=False, save_steps=3, evaluate=None, compute=mse_step, **extra):
    torch.manual_seed(123)  # different initial weights would be overwritten on resume anyway
    model = TinyNet()
    args = TrainingArguments(output_dir=str(tmp), max_steps=steps, learning_rate=0.05, warmup_steps=2,
                             logging_steps=1, save_steps=save_steps, progress=False, seed=7, **extra)
    return Trainer(model, args, Regression(), compute, evaluate=evaluate).train(resume=resume), model


def test_loop_learns_and_writes_metrics_plot_and_checkpoints(tmp_path):
    result, _ = run(tmp_path, 30, gradient_accumulation_steps=2)
    losses = [r["loss"] for r in result.history]
    assert losses[-1] < 0.2 * losses[0]
    records = read_metrics(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in records] == list(range(1, 31))
    assert records[0]["learning_rate"] == 0.0 and records[2]["learning_rate"] == pytest.approx(0.05)
    assert (tmp_path / "metrics.png").read_bytes()[:4] == b"\x89PNG"
    assert latest_checkpoint(tmp_path / "checkpoints").name == "step-0000030"
    assert len(list((tmp_path / "checkpoints").glob("step-*"))) == 2  # save_total_limit
    assert not list((tmp_path / "checkpoints").glob(".*tmp"))


class Killed(Exception):
    """Stands in for SIGKILL (the pretraining tests kill a real process)."""


def test_resumed_run_continues_identically(tmp_path):
    full, full_model = run(tmp_path / "full", 9)
    calls = iter(range(100))

    def dies_in_step_5(model, batch):
        if next(calls) == 4:
            raise Killed
        return mse_step(model, batch)

    with pytest.raises(Killed):
        run(tmp_path / "part", 9, compute=dies_in_step_5)
    assert latest_checkpoint(tmp_path / "part" / "checkpoints").name == "step-0000003"
    resumed, resumed_model = run(tmp_path / "part", 9, resume=True)
    assert [r["loss"] for r in resumed.history] == [r["loss"] for r in full.history[3:]]
    for a, b in zip(full_model.parameters(), resumed_model.parameters(), strict=True):
        assert torch.equal(a, b)
    steps = [r["step"] for r in read_metrics(tmp_path / "part" / "metrics.jsonl")]
    assert steps == list(range(1, 10))  # records after the checkpoint were replaced, not duplicated


def test_early_stopping_keeps_the_best_model(tmp_path):
    scores = iter([0.5, 0.7, 0.6, 0.65, 0.9])
    result, _ = run(tmp_path, 50, save_steps=0, evaluate=lambda m: {"accuracy": next(scores)}, eval_steps=5,
                    metric_for_best="accuracy", early_stopping_patience=2)
    assert result.stopped_early and result.step == 20 and result.best_metric == 0.7
    assert (tmp_path / "best" / "model.safetensors").is_file()
    evals = [r for r in read_metrics(tmp_path / "metrics.jsonl") if r["split"] == "eval"]
    assert [r["accuracy"] for r in evals] == [0.5, 0.7, 0.6, 0.65]


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    run(tmp_path, 3)
    state_file = latest_checkpoint(tmp_path / "checkpoints") / "trainer_state.pt"
    state_file.write_bytes(state_file.read_bytes()[:100])
    with pytest.raises(ValueError, match="corrupt or truncated"):
        load_trainer_state(state_file.parent)
    with pytest.raises(ValueError, match="corrupt or truncated"):
        run(tmp_path, 6, resume=True)


def test_nan_loss_stops_with_a_message(tmp_path):
    def nan_step(model, batch):
        return model.body(batch["x"]).sum() * math.nan, {}

    args = TrainingArguments(output_dir=str(tmp_path), max_steps=3, progress=False)
    with pytest.raises(FloatingPointError, match="lower the learning rate"):
        Trainer(TinyNet(), args, Regression(), nan_step).train()


class Halves(Regression):
    """The batches of :class:`Regression`, each served whole or as ``parts`` equal micro-batches in turn."""

    def __init__(self, parts: int):
        super().__init__()
        self.parts, self.pending = parts, []

    def next_batch(self):
        if not self.pending:
            batch = super().next_batch()
            self.pending = [dict(zip(batch, rows, strict=True))
                            for rows in zip(*(value.chunk(self.parts) for value in batch.values()), strict=True)]
        return self.pending.pop(0)


def plain_trainer(tmp, parts: int = 1, **extra) -> Trainer:
    torch.manual_seed(5)
    model = nn.Module()  # no dropout: the two runs draw nothing
    model.body = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 1))
    args = TrainingArguments(output_dir=str(tmp), max_steps=6, learning_rate=0.05, logging_steps=1, progress=False,
                             gradient_accumulation_steps=parts, **extra)
    return Trainer(model, args, Halves(parts), mse_step)


def test_two_micro_batches_of_8_equal_one_batch_of_16(tmp_path):
    whole, halves = plain_trainer(tmp_path / "whole"), plain_trainer(tmp_path / "halves", parts=2)
    whole_run, halves_run = whole.train(), halves.train()
    for key in ("loss", "grad_norm"):
        assert [r[key] for r in halves_run.history] == pytest.approx([r[key] for r in whole_run.history], rel=1e-5)
    assert whole_run.history[0]["grad_norm"] > 1.0  # the default max_grad_norm 1.0 clips both runs alike
    for a, b in zip(whole.model.parameters(), halves.model.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_clipping_bounds_the_gradient_and_logs_the_norm_before_clipping(tmp_path):
    seen = {}
    for name, limit in (("clipped", 1e-3), ("free", 1e9)):
        trainer = plain_trainer(tmp_path / name, max_grad_norm=limit)
        norms = seen[name] = []
        trainer.optimizer.register_step_pre_hook(lambda optimizer, *_, norms=norms: norms.append(float(
            torch.linalg.vector_norm(torch.stack([p.grad.norm() for g in optimizer.param_groups for p in g["params"]
                                                  if p.grad is not None])))))
        seen[name + "_log"] = [r["grad_norm"] for r in trainer.train().history]
    assert max(seen["clipped"]) <= 1e-3 * (1 + 1e-4)  # what the optimizer stepped with
    assert seen["free"][0] > 1.0 and seen["free"] == pytest.approx(seen["free_log"], rel=1e-5)
    assert seen["clipped_log"][0] == pytest.approx(seen["free"][0], rel=1e-5)  # the same first step, before clipping


def test_resume_restores_pythons_global_random_state(tmp_path):
    """A step drawing from Python's ``random`` (a user's augmentation) draws on after a resume as if uninterrupted."""
    import random

    def drawing_step(model, batch):
        loss, stats = mse_step(model, batch)
        return loss, {**stats, "draw": random.random()}

    calls = iter(range(100))

    def dies_in_step_5(model, batch):
        if next(calls) == 4:
            raise Killed
        return drawing_step(model, batch)

    random.seed(11)
    full, _ = run(tmp_path / "full", 8, compute=drawing_step)
    random.seed(11)
    with pytest.raises(Killed):
        run(tmp_path / "part", 8, compute=dies_in_step_5)
    random.seed(999)  # whatever the process drew since
    resumed, _ = run(tmp_path / "part", 8, resume=True, compute=drawing_step)
    assert [r["draw"] for r in resumed.history] == [r["draw"] for r in full.history[3:]]
