"""Hyper-parameter search over any ``FinetuneConfig`` field on Ray Tune: grid or random, optional ASHA early
stopping, local by default (each trial gets ``cpus_per_trial`` cores and as many torch threads) or on a running
cluster (``address``). Every trial reports its dev metrics after each evaluation (an epoch by default).

A search file (YAML)::

    base: {dataset: rotten_tomatoes, epochs: 2, limit_train: 2000}   # or base_config: finetune.yaml
    search:                      # the default grid (used when search is left out)
      batch_size: [8, 16]
      learning_rate: [1.0e-5, 2.0e-5, 3.0e-5, 4.0e-5]
      lr_schedule: [constant, linear, cosine]
      max_length: [128, 256]
    mode: grid                   # or random: num_samples draws; a value may be {loguniform: [1e-5, 1e-4]}
    asha: {grace_period: 1, reduction_factor: 2}   # optional
    output_dir: out/tune

Results: ``trials.csv`` (one row per trial: its values, best and last metric, epochs run), ``best.yaml`` (the full
config of the best trial, ready for ``bertkit finetune --config``) and ``search.png`` (metric against learning rate,
one line per schedule).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import yaml

from ..atomic import write_atomic, write_text_atomic
from ..textio import read_text
from ..training.options import Options, suggestions
from .config import FinetuneConfig

SEEDS_GRID = {"batch_size": [8, 16], "learning_rate": [1e-5, 2e-5, 3e-5, 4e-5],
              "lr_schedule": ["constant", "linear", "cosine"], "max_length": [128, 256]}
DISTRIBUTIONS = ("choice", "uniform", "loguniform", "randint")


@dataclass
class SearchSpec(Options):
    """What to search, how, and where the results go (typed by the same loader as every command's options)."""

    KIND: ClassVar[str] = "search"

    base: dict[str, Any] = field(default_factory=dict)
    search: dict[str, Any] = field(default_factory=lambda: dict(SEEDS_GRID))
    mode: str = "grid"
    num_samples: int = 1
    asha: dict[str, Any] | None = None
    cpus_per_trial: int = 1
    max_concurrent_trials: int | None = None
    address: str | None = None
    output_dir: str = "out/tune"

    def __post_init__(self) -> None:
        if self.mode not in ("grid", "random"):
            raise ValueError(f"mode must be 'grid' or 'random', got {self.mode!r}")
        if not self.search:
            raise ValueError("search is empty: name at least one option and its values")
        known = [f.name for f in dataclasses.fields(FinetuneConfig)]
        for name, values in self.search.items():
            name = FinetuneConfig.ALIASES.get(name, name)  # the short names (lr, batch, …) are search keys too
            if name not in known:
                raise ValueError(f"cannot search {name!r}: not a fine-tuning option{suggestions([name], known)}")
            if isinstance(values, dict) and (len(values) != 1 or next(iter(values)) not in DISTRIBUTIONS):
                raise ValueError(f"search.{name}: a distribution is one of {DISTRIBUTIONS} with its arguments, "
                                 f"e.g. {{loguniform: [1e-5, 1e-4]}}; got {values!r}")
            if isinstance(values, dict) and self.mode == "grid":
                raise ValueError(f"search.{name} is a distribution, which needs mode: random")
            if not isinstance(values, dict | list) or (isinstance(values, list) and not values):
                raise ValueError(f"search.{name} must be a non-empty list of values or a distribution")
        FinetuneConfig.from_dict(self.base)  # a bad base option fails now, not in every trial
        for name, values in self.search.items():  # and so does a bad searched value
            for value in values if isinstance(values, list) else []:
                FinetuneConfig.from_dict(self.base | {name: value})

    @classmethod
    def from_yaml(cls, path: str | os.PathLike, overrides: dict[str, Any] | None = None) -> SearchSpec:
        """A search file; ``base_config: FILE`` loads the base options from a fine-tuning YAML."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no such search file: {path}")
        values = yaml.safe_load(read_text(path)) or {}
        if not isinstance(values, dict):
            raise ValueError(f"{path} must hold a mapping")
        base_file = values.pop("base_config", None)
        if base_file:
            base_path = (path.parent / base_file) if not Path(base_file).is_absolute() else Path(base_file)
            values["base"] = (yaml.safe_load(read_text(base_path)) or {}) | values.get("base", {})
        return cls.from_dict(values | (overrides or {}))

    @property
    def metric(self) -> str:
        return FinetuneConfig.from_dict(self.base).metric


def param_space(spec: SearchSpec) -> dict[str, Any]:
    """Ray Tune's param space: ``grid_search`` lists (grid) or samplers (random)."""
    from ray import tune

    space = {}
    for name, values in spec.search.items():
        if isinstance(values, list):
            space[name] = tune.grid_search(values) if spec.mode == "grid" else tune.choice(values)
        else:
            (kind, arguments), = values.items()
            space[name] = tune.choice(arguments) if kind == "choice" else getattr(tune, kind)(*arguments)
    return space


def run_trial(params: dict[str, Any], base: dict[str, Any], output_dir: str, cpus: int) -> None:
    """One trial: fine-tune with the base options plus ``params``, reporting every dev evaluation to Tune."""
    from ray import tune

    from .train import finetune

    trial_dir = Path(output_dir) / "trials" / tune.get_context().get_trial_id()
    config = FinetuneConfig.from_dict(base | params | {"output_dir": str(trial_dir), "progress": False,
                                                       "overwrite": True,  # the search owns its trial folders
                                                       "threads": cpus})
    finetune(config, on_evaluate=lambda scores: tune.report({k: float(v) for k, v in scores.items()}))


PATH_OPTIONS = ("train_file", "dev_file", "test_file", "model")


def absolute_paths(base: dict[str, Any]) -> dict[str, Any]:
    """Ray runs trials in folders of its own: relative data and model paths are made absolute first, against the
    folder the user ran the search from."""
    return {k: str(Path(v).resolve()) if k in PATH_OPTIONS and isinstance(v, str) else v for k, v in base.items()}


def run_search(spec: SearchSpec) -> dict[str, Any]:
    """Run the search; write trials.csv, best.yaml and search.png under ``output_dir``; return the best trial."""
    try:
        import ray
        from ray import tune
        from ray.tune.schedulers import ASHAScheduler
    except ImportError:
        raise ValueError("hyper-parameter search needs Ray Tune: pip install 'ray[tune]' "
                         "(or pip install 'bertkit[tune]')") from None
    output_dir = Path(spec.output_dir).resolve()
    spec.base = absolute_paths(spec.base)
    metric, greater = spec.metric, FinetuneConfig.from_dict(spec.base).greater_is_better
    mode = "max" if greater else "min"
    if not ray.is_initialized():
        ray.init(address=spec.address, include_dashboard=False, log_to_driver=False,
                 **({} if spec.address else {"num_cpus": os.cpu_count()}))
    trainable = tune.with_parameters(run_trial, base=spec.base, output_dir=str(output_dir), cpus=spec.cpus_per_trial)
    trainable = tune.with_resources(trainable, {"cpu": spec.cpus_per_trial})
    scheduler = ASHAScheduler(**spec.asha) if spec.asha else None
    tuner = tune.Tuner(
        trainable, param_space=param_space(spec),
        tune_config=tune.TuneConfig(metric=metric, mode=mode, scheduler=scheduler, num_samples=spec.num_samples,
                                    max_concurrent_trials=spec.max_concurrent_trials),
        run_config=tune.RunConfig(name="ray", storage_path=str(output_dir), verbose=0))
    results = tuner.fit()
    rows = []
    for result in results:
        if result.error:
            raise ValueError(f"trial {result.config} failed: {result.error}")
        history = result.metrics_dataframe
        values = history[metric].tolist() if history is not None and metric in history else []
        best = (max if greater else min)(values) if values else math.nan
        rows.append({**{k: result.config[k] for k in spec.search}, f"best_{metric}": best,
                     f"last_{metric}": values[-1] if values else math.nan, "evaluations": len(values)})
    rows.sort(key=lambda r: r[f"best_{metric}"], reverse=greater)
    write_results(rows, spec, output_dir, metric)
    return rows[0]


def write_results(rows: list[dict[str, Any]], spec: SearchSpec, output_dir: Path, metric: str) -> None:
    """trials.csv (best first), best.yaml and search.png."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(output_dir / "trials.csv", buffer.getvalue())
    best = FinetuneConfig.from_dict(spec.base | {k: rows[0][k] for k in spec.search}).to_dict()
    best["output_dir"] = str(output_dir / "best-run")
    write_text_atomic(output_dir / "best.yaml", yaml.safe_dump(best, sort_keys=False))
    plot_search(rows, output_dir / "search.png", metric)


def plot_search(rows: list[dict[str, Any]], path: Path, metric: str) -> None:
    """The best metric of each trial against its learning rate, one line per schedule (and other settings)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    key = f"best_{metric}"
    x_name = "learning_rate" if "learning_rate" in rows[0] else next(iter(rows[0]))
    others = [k for k in rows[0] if k not in (x_name, key, f"last_{metric}", "evaluations")]
    lines: dict[str, list[tuple[Any, float]]] = {}
    for row in rows:
        label = ", ".join(f"{k}={row[k]}" for k in others) or metric
        lines.setdefault(label, []).append((row[x_name], row[key]))
    figure, axis = plt.subplots(figsize=(7, 4))
    for label, points in sorted(lines.items()):
        points.sort(key=lambda p: p[0])
        axis.plot([p[0] for p in points], [p[1] for p in points], "o-", label=label, markersize=4)
    if x_name == "learning_rate":
        axis.set_xscale("log")
    axis.set_xlabel(x_name)
    axis.set_ylabel(f"dev {metric} (best epoch)")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7)
    figure.tight_layout()
    write_atomic(path, lambda tmp: figure.savefig(tmp, format="png", dpi=90))
    plt.close(figure)
