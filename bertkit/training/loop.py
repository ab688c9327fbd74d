"""The training loop shared by pretraining and fine-tuning.

The task supplies a batch source (``next_batch()``, ``state_dict()``, ``load_state_dict()``) and a step function
``compute(model, batch) -> (loss, stats)``; the loop does the rest: AdamW groups, warm-up and decay, gradient
accumulation and clipping, the device (model and batches moved there, ``device.py``) and bf16 autocast on it,
progress bar, JSON-lines metrics and PNG plots, periodic evaluation with early stopping, atomic checkpoints and exact
resumption, and DDP when launched by ``torchrun``.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn
from tqdm.auto import tqdm

from . import distributed, state
from .device import autocast_context, check_spec, move_batch, resolve_device
from .metrics import MetricsLog, plot_metrics
from .optim import build_optimizer
from .schedule import build_scheduler
from .threads import AUTO, ThreadTrial

logger = logging.getLogger(__name__)


class BatchSource(Protocol):
    """An endless, resumable stream of batches."""

    def next_batch(self) -> dict[str, torch.Tensor]: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, values: dict[str, Any]) -> None: ...


StepFunction = Callable[[nn.Module, dict[str, torch.Tensor]], tuple[torch.Tensor, dict[str, float]]]


@dataclass
class TrainingArguments:
    """How to train; field names follow transformers' ``TrainingArguments`` where one exists."""

    output_dir: str
    max_steps: int
    learning_rate: float = 1e-4
    weight_decay: float = 0.01
    warmup_steps: int = 0
    lr_schedule: str = "linear"
    gradient_accumulation_steps: int = 1
    max_grad_norm: float | None = 1.0
    bf16: bool = False
    device: str | torch.device = "auto"  # auto | cpu | cuda | cuda:N (device.py); torchrun: cuda:LOCAL_RANK per rank
    seed: int = 0
    logging_steps: int = 10
    eval_steps: int = 0  # 0: evaluate only at the end
    save_steps: int = 0  # 0: no intermediate checkpoints
    save_total_limit: int = 2
    head_prefixes: tuple[str, ...] = ()
    head_lr_scale: float = 1.0
    metric_for_best: str | None = None  # an eval metric: the best model is saved, early stopping watches it
    greater_is_better: bool = True
    early_stopping_patience: int = 0  # evaluations without improvement before stopping; 0 = never stop early
    plot_keys: Sequence[str] = ("loss", "learning_rate")
    progress: bool = True
    max_minutes: float | None = None  # a time budget: stop (evaluate, checkpoint) once it is spent
    lr_schedule_clock: str = "steps"  # steps: warm-up and decay over max_steps; budget: over max_minutes' seconds
    threads: int | str | None = None  # "auto": the first steps time 1 thread against torch's count (threads.py)

    def __post_init__(self) -> None:
        if self.max_steps < 1:
            raise ValueError(f"max_steps must be ≥ 1, got {self.max_steps}")
        if self.gradient_accumulation_steps < 1:
            raise ValueError("gradient_accumulation_steps must be ≥ 1")
        if self.lr_schedule_clock not in ("steps", "budget"):
            raise ValueError(f"lr_schedule_clock must be steps or budget, got {self.lr_schedule_clock!r}")
        if self.lr_schedule_clock == "budget" and not self.max_minutes:
            raise ValueError("lr_schedule_clock budget spreads the schedule over max_minutes: set max_minutes")
        check_spec(self.device)


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training: the step it stopped at and the checkpoint a resumed run would continue from."""

    def __init__(self, step: int, max_steps: int, checkpoint: Path | None):
        self.step, self.max_steps, self.checkpoint = step, max_steps, checkpoint
        super().__init__(self.describe())

    def describe(self, resumable: bool = True) -> str:
        """One line for the user; ``resumable``: whether the command takes ``--resume``."""
        done = f"stopped after step {self.step} of {self.max_steps}"
        if not resumable:
            return f"{done}; this command does not resume: run it again with --overwrite to start over"
        if self.checkpoint is None:
            return (f"{done}; no checkpoint was written yet (save_steps), so --resume has nothing to continue from: "
                    "run it again with --overwrite to start over")
        saved = int(self.checkpoint.name.rpartition("-")[2])
        lost = f" (steps {saved + 1}–{self.step} are redone)" if saved < self.step else ""
        return f"{done}; --resume continues from step {saved}, {self.checkpoint}{lost}"


@dataclass
class TrainingResult:
    """What a finished run reports."""

    step: int
    history: list[dict] = field(default_factory=list)
    best_metric: float | None = None
    stopped_early: bool = False


class Trainer:
    """Runs ``args.max_steps`` optimizer steps of ``compute`` over ``data``; resumes from ``output_dir`` if asked."""

    def __init__(
        self,
        model: nn.Module,
        args: TrainingArguments,
        data: BatchSource,
        compute: StepFunction,
        evaluate: Callable[[nn.Module], dict[str, float]] | None = None,
        tokenizer: Any = None,
        save_best: Callable[[nn.Module, Path], None] | None = None,
    ):
        self.model, self.args, self.data, self.compute = model, args, data, compute
        self.evaluate_fn, self.tokenizer = evaluate, tokenizer
        self.save_best = save_best or (lambda m, folder: m.save_pretrained(folder, tokenizer=tokenizer))
        self.output_dir = Path(args.output_dir)
        self.device = resolve_device(args.device)
        model.to(self.device)  # before the optimizer: its state (and fused kernels) follow the parameters
        self.device_type = self.device.type  # where bf16 autocast applies
        self.optimizer = build_optimizer(model, args.learning_rate, args.weight_decay, args.head_prefixes,
                                         args.head_lr_scale)
        self.spent_before, self.started = 0.0, self.clock()  # budget clock: seconds of earlier runs, this start
        on_clock = self.budget_spent if args.lr_schedule_clock == "budget" else None
        self.scheduler = build_scheduler(self.optimizer, args.lr_schedule, args.warmup_steps, args.max_steps,
                                         on_clock)
        self.wrapped = distributed.wrap(model, self.device)
        self.step, self.best_metric, self.bad_evals = 0, None, 0
        self.chosen_threads: int | None = None  # what threads: auto settled on (kept in checkpoints)

    # -- checkpoints ---------------------------------------------------------------------------------------------
    def resume(self, folder: str | Path | None = None) -> int:
        """Load the latest checkpoint of ``output_dir`` (or ``folder``); returns the step it continues from."""
        folder = Path(folder) if folder else state.latest_checkpoint(self.output_dir / "checkpoints")
        if folder is None:
            return 0
        trainer_state = state.load_trainer_state(folder)
        from ..checkpoint import load_weights

        try:
            load_weights(self.model, folder)
        except ValueError as error:
            raise ValueError(f"cannot resume from {folder}: its model differs from this run's ({error})") from None
        saved_steps = trainer_state.get("max_steps", self.args.max_steps)
        if saved_steps != self.args.max_steps:
            # LambdaLR saves its step, not its formula: the schedule continues at step N of the new max_steps
            logger.warning("resuming a run of max_steps %d with max_steps %d: the learning rate follows the new "
                           "schedule from step %d (warm-up as configured, decay ending at step %d)", saved_steps,
                           self.args.max_steps, trainer_state["step"], self.args.max_steps)
        self.optimizer.load_state_dict(trainer_state["optimizer"])
        self.scheduler.load_state_dict(trainer_state["scheduler"])
        self.data.load_state_dict(trainer_state["data"][distributed.rank()])
        state.restore_rng_states(trainer_state["rng"][distributed.rank()], self.device)
        self.step = trainer_state["step"]
        self.best_metric, self.bad_evals = trainer_state.get("best_metric"), trainer_state.get("bad_evals", 0)
        self.chosen_threads = trainer_state.get("chosen_threads")
        if self.args.lr_schedule_clock == "budget":  # the budget spans the resumed runs: the schedule goes on
            self.spent_before = float(trainer_state.get("spent_seconds", 0.0))
        return self.step

    def save_checkpoint(self) -> None:
        """Every rank contributes its data position and RNG; rank 0 writes."""
        data_states = distributed.gather(self.data.state_dict())
        rngs = distributed.gather(state.rng_states(self.device))
        if distributed.is_main():
            values = {"step": self.step, "max_steps": self.args.max_steps, "optimizer": self.optimizer.state_dict(),
                      "scheduler": self.scheduler.state_dict(), "data": data_states, "rng": rngs,
                      "best_metric": self.best_metric, "bad_evals": self.bad_evals,
                      "chosen_threads": self.chosen_threads,
                      "spent_seconds": self.spent_before + self.clock() - self.started}
            state.save_checkpoint(self.output_dir / "checkpoints", self.step, self.model, values, self.tokenizer,
                                  keep=self.args.save_total_limit)
        distributed.barrier()

    # -- the loop ------------------------------------------------------------------------------------------------
    def train(self, resume: bool = False) -> TrainingResult:
        """Train to ``max_steps`` (or an early stop), logging, evaluating and checkpointing on the way."""
        return self._train(resume)

    def _train(self, resume: bool) -> TrainingResult:
        args = self.args
        if resume:
            self.resume()
        else:
            torch.manual_seed(args.seed)
        main = distributed.is_main()
        self.output_dir.mkdir(parents=True, exist_ok=True)
        log = MetricsLog(self.output_dir / "metrics.jsonl", resume_step=self.step if resume else None) if main else None
        history: list[dict] = []
        bar = tqdm(total=args.max_steps, initial=self.step, disable=not (args.progress and main), unit="step",
                   dynamic_ncols=True)
        self.started = self.clock()
        deadline = self.started + 60 * args.max_minutes - self.spent_before if args.max_minutes else math.inf
        self.wrapped.train()
        try:
            stopped_early = self._loop(history, log, bar, deadline)
        except KeyboardInterrupt:
            bar.close()
            raise TrainingInterrupted(self.step, args.max_steps, self._latest_checkpoint()) from None
        bar.close()
        if main:
            plot_metrics(self.output_dir / "metrics.jsonl", self.output_dir / "metrics.png", args.plot_keys)
        return TrainingResult(self.step, history, self.best_metric, stopped_early)

    def clock(self) -> float:
        """Seconds on the monotonic clock: what the time budget and the budget schedule read."""
        return time.monotonic()

    def budget_spent(self) -> float:
        """The share of the time budget spent so far, earlier runs of a resumed one included (0 → 1)."""
        return (self.spent_before + self.clock() - self.started) / (60 * self.args.max_minutes)

    def _latest_checkpoint(self) -> Path | None:
        try:
            return state.latest_checkpoint(self.output_dir / "checkpoints")
        except ValueError:  # `latest` names a folder that is gone: nothing to resume from
            return None

    def _loop(self, history: list[dict], log: MetricsLog | None, bar: tqdm, deadline: float) -> bool:
        """Steps until max_steps, the time budget or an early stop; returns whether it stopped early."""
        args = self.args
        window: dict[str, float] = {}
        window_steps, window_tokens, window_start = 0, 0.0, time.perf_counter()
        stopped_early = False
        trial = self._thread_trial()
        while self.step < args.max_steps and not stopped_early:
            if trial is not None and trial.chosen is None:
                stats = trial.run(self.optimizer_step)
                if trial.chosen is not None:
                    self.chosen_threads = trial.chosen
                    self._say(trial.describe())
            else:
                stats = self.optimizer_step()
            self.step += 1
            window_steps += 1
            window_tokens += stats.pop("tokens", 0.0)
            for key, value in stats.items():
                window[key] = window.get(key, 0.0) + value
            # rank 0's clock decides for every rank, so that all of them stop at the same step
            out_of_time = bool(args.max_minutes) and distributed.gather(self.clock() > deadline)[0]
            last = self.step == args.max_steps or out_of_time
            if self.step % args.logging_steps == 0 or last:  # a stopped run logs its last, partial window too
                elapsed = time.perf_counter() - window_start
                record = {"step": self.step, "split": "train", **{k: v / window_steps for k, v in window.items()},
                          "tokens_per_second": window_tokens * distributed.world_size() / max(elapsed, 1e-9)}
                history.append(record)
                if log:
                    log.write(record)
                bar.set_postfix({**{k: f"{record[k]:.3g}" for k in ("loss", "mlm_accuracy", "tokens_per_second")
                                    if k in record}, "threads": torch.get_num_threads()})
                window, window_steps, window_tokens, window_start = {}, 0, 0.0, time.perf_counter()
            bar.update(1)
            if self.evaluate_fn and ((args.eval_steps and self.step % args.eval_steps == 0) or last):
                stopped_early = self.run_evaluation(history, log)
            if args.save_steps and (self.step % args.save_steps == 0 or last or stopped_early):
                self.save_checkpoint()
            if out_of_time:
                logger.warning("the time budget of %s minutes is spent: stopping at step %d of %d",
                               args.max_minutes, self.step, args.max_steps)
                break
        return stopped_early

    def _thread_trial(self) -> ThreadTrial | None:
        """For ``threads: auto``: a trial of 1 thread against torch's count on this run's first steps, where it
        can tell (one process on the CPU, steps enough); else None, and torch's count stays."""
        cores = torch.get_num_threads()
        if self.args.threads != AUTO or self.device.type != "cpu" or distributed.world_size() > 1 or cores == 1:
            return None
        if self.chosen_threads:  # a resumed run keeps the run's choice: another count rounds sums differently
            torch.set_num_threads(self.chosen_threads)
            self._say(f"threads: auto → {self.chosen_threads} (the run's choice, kept on resume)")
            return None
        trial = ThreadTrial(cores)
        if self.args.max_steps - self.step < 2 * trial.steps:
            self._say(f"threads: auto → {cores} (too few steps to time 1 thread against {cores})")
            return None
        return trial

    def _say(self, line: str) -> None:
        if distributed.is_main():
            tqdm.write(line, file=sys.stderr)

    def optimizer_step(self) -> dict[str, float]:
        """Accumulate gradients over micro-batches, clip, step; returns the micro-batches' mean stats."""
        args = self.args
        totals: dict[str, float] = {}
        for micro in range(args.gradient_accumulation_steps):
            batch = move_batch(self.data.next_batch(), self.device)
            last_micro = micro == args.gradient_accumulation_steps - 1
            sync = nullcontext() if last_micro else distributed.no_sync(self.wrapped)
            autocast = autocast_context(self.device, args.bf16)
            with sync:  # DDP skips the all-reduce on all but the last micro-batch
                with autocast:
                    loss, stats = self.compute(self.wrapped, batch)
                if not math.isfinite(loss.item()):
                    raise FloatingPointError(f"the loss became {loss.item()} at step {self.step + 1}; lower the "
                                             "learning rate or check the data")
                (loss / args.gradient_accumulation_steps).backward()
            stats = {"loss": loss.item(), **stats}
            for key, value in stats.items():
                weight = 1.0 if key == "tokens" else 1.0 / args.gradient_accumulation_steps
                totals[key] = totals.get(key, 0.0) + weight * value
        if args.max_grad_norm:
            totals["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), args.max_grad_norm))
        totals["learning_rate"] = self.scheduler.get_last_lr()[0]  # the rate this step used
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return totals

    def run_evaluation(self, history: list[dict], log: MetricsLog | None) -> bool:
        """Evaluate, keep the best model, and say whether patience has run out."""
        args = self.args
        self.wrapped.eval()
        with torch.no_grad():
            metrics = self.evaluate_fn(self.model)
        self.wrapped.train()
        record = {"step": self.step, "split": "eval", **metrics}
        history.append(record)
        if log:
            log.write(record)
        if args.metric_for_best is None:
            return False
        if args.metric_for_best not in metrics:
            raise ValueError(f"metric_for_best={args.metric_for_best!r} is not among the evaluation metrics "
                             f"{sorted(metrics)}")
        value = metrics[args.metric_for_best]
        improved = self.best_metric is None or (value > self.best_metric if args.greater_is_better
                                                else value < self.best_metric)
        if improved:
            self.best_metric, self.bad_evals = value, 0
            if distributed.is_main():
                self.save_best(self.model, self.output_dir / "best")
            return False
        self.bad_evals += 1
        return bool(args.early_stopping_patience) and self.bad_evals >= args.early_stopping_patience
