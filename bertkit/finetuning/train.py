"""Fine-tune a BERT on a task: load and check the data, build the model with its head, train with the shared
Trainer (AdamW groups with a faster head, warm-up + schedule, accumulation, early stopping on the dev metric), keep
the best model in ``output_dir/best`` (Hugging Face layout, label map in config.json) and score it on the test split.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..assets import default_model_dir
from ..atomic import write_text_atomic
from ..config import BertConfig
from ..model.auto import folder_model_type
from ..model.efficient import use_attention
from ..model.long_positions import extend_positions
from ..peft import apply_peft, trainable_parameters
from ..peft.folders import save_adapter
from ..tokenization import AutoTokenizer
from ..tokenization.batch import PAIR_RULES
from ..training import Trainer
from ..training.batches import EpochBatches
from ..training.device import resolve_device
from ..training.metrics import read_metrics
from ..training.run_options import enable_subword_sampling
from ..training.state import check_output_dir, check_resumed_config, save_run_config
from ..training.threads import cpu_threads
from . import ner, remote
from .adapter_folders import load_task_adapter
from .config import FinetuneConfig
from .data import LabelMap, load_examples, normalize_text, split_examples
from .datasets import dataset_task, load_dataset
from .input_settings import InputSettings
from .long_tasks import build_task, run_model_class
from .models import CLASS_PREFIXES, TaskConfig, encoder_config
from .own_heads import FIRST_TOKEN_HEADS, SEQUENCE_TASKS
from .pooling_choice import AUTO, folder_pooling
from .prompt_train import PromptTask, build_prompt_model, prompt_labels, save_prompt_model

logger = logging.getLogger(__name__)
PROBLEM_TYPE = {"classification": "single_label_classification", "multi_label": "multi_label_classification",
                "regression": "regression"}


@dataclass
class FinetuneResult:
    """What a run reports: the best dev metrics, the test metrics of the best model, the time it took."""

    output_dir: str
    metric: str
    dev: dict[str, float]
    test: dict[str, float] | None
    train_seconds: float
    steps: int
    epochs_run: float
    stopped_early: bool
    tokens_per_second: float
    history: list[dict] = field(default_factory=list)


def model_dir(config: FinetuneConfig) -> Path:
    return Path(config.model) if config.model else default_model_dir()


def load_splits(config: FinetuneConfig) -> dict[str, list[dict[str, Any]]]:
    """train / dev / test examples from a named set or files (no dev file: 10 % of train, seeded); checked."""
    if config.dataset:
        if dataset_task(config.dataset) != config.task:
            raise ValueError(f"data set {config.dataset} is for {dataset_task(config.dataset)}, not {config.task}")
        splits = load_dataset(config.dataset, seed=config.split_seed)
        if config.normalize:  # files are cleaned as they are read; a named set here
            splits = {name: [normalized(e) for e in examples] for name, examples in splits.items()}
    elif config.train_file:
        def read(path: str | None) -> list[dict[str, Any]]:
            return load_examples(path, config.task, config.columns, config.normalize) if path else []

        splits = {"train": read(config.train_file), "dev": read(config.dev_file), "test": read(config.test_file)}
        if not config.dev_file:
            carved = split_examples(splits["train"], seed=config.split_seed, dev=0.1, test=0.0)
            splits["train"], splits["dev"] = carved["train"], carved["dev"]
    else:
        raise ValueError("no data: give dataset (a named set) or train_file (and dev_file, test_file)")
    if config.limit_train:
        splits["train"] = splits["train"][:config.limit_train]
    if config.train_examples_per_class:  # few-shot: one seeded sample, the same whatever the method
        splits["train"] = per_class_sample(splits["train"], config.train_examples_per_class, config.seed)
    if config.limit_eval:
        splits["dev"], splits["test"] = splits["dev"][:config.limit_eval], splits["test"][:config.limit_eval]
    for name in ("train", "dev"):
        if not splits[name]:
            raise ValueError(f"the {name} split is empty")
    if config.task == "token_classification":
        for name, examples in splits.items():
            for i, example in enumerate(examples):
                where = f"{name} example {i + 1}"
                if config.bio == "strict":
                    ner.strict_bio(example["tags"], where)
                else:
                    ner.check_tags(example["tags"], where)
                    example["tags"] = ner.repair_bio(example["tags"])
    return splits


def per_class_sample(examples: list[dict[str, Any]], per_class: int, seed: int) -> list[dict[str, Any]]:
    """``per_class`` examples of each label (all of a rarer one), drawn with ``seed``, kept in file order."""
    if examples and not isinstance(examples[0].get("label"), str):
        raise ValueError("train_examples_per_class samples single-label classification examples (task: "
                         "classification)")
    by_label: dict[str, list[int]] = {}
    for i, example in enumerate(examples):
        by_label.setdefault(example["label"], []).append(i)
    rng = random.Random(seed)
    chosen = [i for label in sorted(by_label)
              for i in rng.sample(by_label[label], min(per_class, len(by_label[label])))]
    return [examples[i] for i in sorted(chosen)]


def normalized(example: dict[str, Any]) -> dict[str, Any]:
    """An example with its texts cleaned by :func:`normalize_text` (the BertSim recipe's cleaning)."""
    return example | {k: normalize_text(example[k]) for k in ("text", "text_pair") if k in example}


def task_config(config: FinetuneConfig, base: BertConfig, labels: LabelMap, words: str) -> TaskConfig:
    """The base model's shape plus the label map, head and input settings that predict needs."""
    prompt = config.peft_config()
    if prompt is not None and prompt.is_prompt and config.max_length + prompt.num_virtual_tokens > base.max_tokens:
        raise ValueError(f"a prompt of {prompt.num_virtual_tokens} virtual tokens and max_length={config.max_length} "
                         f"need more than the model's {base.max_tokens} positions; lower max_length or "
                         "num_virtual_tokens")
    positions = base.max_tokens + max(0, (config.max_positions or 0) - base.max_position_embeddings)
    if config.max_length > positions:
        raise ValueError(f"max_length={config.max_length} is beyond the model's {positions} positions; lower "
                         "max_length (long texts: see long_text) or grow the positions with max_positions")
    return TaskConfig.over(base, id2label=labels.id2label, label2id=labels.label2id,
                           problem_type=PROBLEM_TYPE.get(config.task), classifier_dropout=config.classifier_dropout,
                           classifier_head=config.classifier_head, pooling=resolved_pooling(config)[0],
                           finetuning=InputSettings.of_run(config, words))


def resolved_pooling(config: FinetuneConfig) -> tuple[str, str]:
    """The pooling this run uses and why: the config's, or for ``auto`` the folder's own (pooling_choice.py)."""
    if config.pooling != AUTO:
        return config.pooling, "as the config says"
    if (config.architecture or folder_model_type(model_dir(config))) in FIRST_TOKEN_HEADS:
        return "pooled", "the architecture's own classifier reads the first token (finetuning/own_heads.py)"
    pooling, why = folder_pooling(model_dir(config))
    if pooling == "pooled" and config.architecture not in (None, "bert", "albert"):  # init: random as another one
        return "mean", f"the mean of the tokens: a fresh {config.architecture} has no trained pooler"
    return pooling, why


def build_model(config: FinetuneConfig, labels: LabelMap, words: str = "whitespace") -> torch.nn.Module:
    """The task model: pretrained encoder weights and a fresh head (or all fresh for ``init: random``)."""
    folder = model_dir(config)
    base = encoder_config(folder)
    if config.architecture and config.architecture != base.model_type:
        base = base.as_architecture(config.architecture)
    if base.model_type not in CLASS_PREFIXES:  # a task head's folder names transformers' class for it
        raise ValueError(f"{folder} holds a {base.model_type} model; bertkit fine-tunes "
                         f"{', '.join(CLASS_PREFIXES)} models")
    model_class = run_model_class(config)  # long_text: hierarchical has its own
    tc = task_config(config, base, labels, words)
    if config.task in SEQUENCE_TASKS and remote.needs_remote_code(tc):
        remote.class_name(tc.model_type)  # a head no saved folder could name is refused now, not at the first save
    model = model_class.from_pretrained(folder, config=tc) if config.init == "pretrained" else model_class(tc)
    if config.max_positions and config.max_positions != base.max_position_embeddings:
        extend_positions(model, config.max_positions)
    if config.attention != "full":
        use_attention(model, config.attention, local_window=config.local_window)
    method = config.peft_config()  # parameter-efficient: a frozen model, a few parameters added, the head trained
    if method is not None:
        apply_peft(model, method)
    return model.train()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def finetune(
    config: FinetuneConfig, on_evaluate: Callable[[dict[str, float]], None] | None = None, resume: bool = False
) -> FinetuneResult:
    """Train, keep the best dev model in ``output_dir/best``, score it on test; ``on_evaluate`` sees every dev eval;
    ``resume`` continues from ``output_dir``'s latest checkpoint (``save_steps``); ``self_training``: rounds of
    teacher → pseudo labels → student (self_training.py)."""
    if config.self_training:
        from .self_training import self_train  # it builds on this module's functions

        if on_evaluate is not None:  # Ray Tune follows one run's dev scores; self-training is several runs
            raise ValueError("self_training runs a fine-tuning per round, whose dev scores a search cannot follow "
                             "as one trial's: search without self_training, then self-train the best settings")
        return self_train(config, resume)
    resolve_device(config.device)  # device: cuda where there is none fails here, before any work
    check_output_dir(config.output_dir, resume, config.overwrite)  # an earlier run is never silently replaced
    if resume:
        check_resumed_config(config.output_dir, config)  # the same run, or a refusal naming what differs
    if config.save_steps:  # beside the checkpoints --resume continues from
        save_run_config(config.output_dir, config)
    with cpu_threads(config.threads):
        return _finetune(config, on_evaluate, resume)


def data_summary(config: FinetuneConfig, splits: dict[str, list[dict[str, Any]]]) -> str:
    """One line: examples per split, where dev came from, and the training labels' distribution."""
    source = config.dataset or config.train_file
    dev_from = "dev_file" if config.dev_file or config.dataset else f"10 % carved from train (seed {config.split_seed})"
    line = (f"data ({source}): train {len(splits['train']):,}, dev {len(splits['dev']):,} ({dev_from}), "
            f"test {len(splits['test']):,}")
    if config.task in ("classification", "multi_label"):
        counts = Counter(label for e in splits["train"]
                         for label in (e["label"] if isinstance(e["label"], list) else [e["label"]]))
        total = sum(counts.values())
        shown = ", ".join(f"{label} {100 * n / total:.1f} %" for label, n in counts.most_common(8))
        line += f"; train labels: {shown}" + (f" (+{len(counts) - 8} more)" if len(counts) > 8 else "")
    elif config.task == "regression":
        scores = [e["score"] for e in splits["train"]]
        line += f"; train scores {min(scores):g} … {max(scores):g}, mean {sum(scores) / len(scores):.3g}"
    return line


def sampled_features(task: Any, rows: list[dict], tokenizer: Any, config: FinetuneConfig, epoch: int) -> list:
    """The training rows' features with the tokenizer sampling (``subword_alpha``), seeded by the run's seed and
    ``epoch``; the tokenizer is back to its best segmentation (dev, test, the saved folder) afterwards."""
    enable_subword_sampling(tokenizer, config, seed=config.seed * 1009 + epoch)
    try:
        return task.features(rows, training=True)
    finally:
        tokenizer.disable_sampling()


def _finetune(config: FinetuneConfig, on_evaluate: Callable[[dict[str, float]], None] | None,
              resume: bool) -> FinetuneResult:
    seed_everything(config.seed)
    splits = load_splits(config)
    print(data_summary(config, splits), file=sys.stderr)
    if config.task in ("classification", "multi_label", "regression") and config.method != "prompt":
        print("pooling: {} ({})".format(*resolved_pooling(config)), file=sys.stderr)
    tokenizer = AutoTokenizer.from_pretrained(model_dir(config))
    if any(e.get("text_pair") for e in splits["train"][:1000]) and hasattr(tokenizer, "pair_truncation"):
        print(f"pairs past max_length={config.max_length} are cut by the {tokenizer.pair_truncation!r} rule "
              f"({PAIR_RULES[tokenizer.pair_truncation]}); it is saved with the model", file=sys.stderr)
    if config.method == "prompt":  # the verbaliser's labels, in its order; the data may use no other
        labels = prompt_labels(config, splits)
    else:
        labels = LabelMap.from_examples(splits["train"], config.task)
        for name in ("dev", "test"):
            labels.check(splits[name], config.task, name)
    words = "chars" if config.task == "token_classification" and all(
        len(t) == 1 for e in splits["train"][:200] for t in e["tokens"]) else "whitespace"
    if config.method == "prompt":  # PET / LM-BFF: the MLM head read through a pattern (prompt_train.py)
        model, task = build_prompt_model(config, model_dir(config), tokenizer, labels), PromptTask(config, tokenizer,
                                                                                                  labels)
        if config.epochs == 0:
            return zero_shot(config, model, task, splits, tokenizer, labels)
    else:
        model = build_model(config, labels, words)
        task = build_task(config, tokenizer, labels, model)  # key_sentences ranks with the model's embeddings
    resample = None
    if config.subword_alpha is not None:  # subword regularisation: each epoch another segmentation of the rows
        resample = partial(sampled_features, task, splits["train"], tokenizer, config)
    data = EpochBatches(resample(0) if resample else task.features(splits["train"], training=True),
                        config.batch_size, task.collate, seed=config.seed,
                        bucket_size=50 if config.bucket_by_length else 1, length=task.length, resample=resample)
    steps_per_epoch = config.steps_per_epoch(data.steps_per_epoch)
    args = config.training_arguments(
        data.steps_per_epoch, config.metric, ("loss", "learning_rate", config.metric, "tokens_per_second"),
        head_prefixes=model.head_prefixes, head_lr_scale=config.head_lr_scale,
        greater_is_better=config.greater_is_better, early_stopping_patience=config.early_stopping_patience)
    trainer: Trainer

    def evaluate(m: torch.nn.Module) -> dict[str, float]:
        scores = task.evaluate(m, splits["dev"])
        scores["epoch"] = round(trainer.step / steps_per_epoch, 4)
        if on_evaluate:
            on_evaluate(scores)
        return scores

    save_best = None
    if config.peft:  # only the adapter and the head are written (peft's folder format)
        def save_best(m: torch.nn.Module, folder: Path) -> None:
            save_adapter(m, folder, model_dir(config), tokenizer)
    elif config.method == "prompt":  # the MLM folder and prompt.json: predict reads both
        def save_best(m: torch.nn.Module, folder: Path) -> None:
            save_prompt_model(m, folder, tokenizer, config, labels)

    trainer = Trainer(model, args, data, task.compute, evaluate=evaluate, tokenizer=tokenizer, save_best=save_best)
    started = time.perf_counter()
    outcome = trainer.train(resume=resume)
    seconds = time.perf_counter() - started
    best_dir = Path(config.output_dir) / "best"
    best = load_task_adapter(best_dir) if config.peft else type(model).from_pretrained(best_dir)
    best.to(trainer.device)  # the test split is scored where the run trained
    # every evaluation of the run, also those before a resume (metrics.jsonl keeps them)
    evals = [r for r in read_metrics(Path(config.output_dir) / "metrics.jsonl") if r["split"] == "eval"]
    best_dev = max(evals, key=lambda r: r[config.metric] * (1 if config.greater_is_better else -1))
    test = task.evaluate(best, splits["test"]) if splits["test"] else None
    speeds = [r["tokens_per_second"] for r in outcome.history if r["split"] == "train"]
    result = FinetuneResult(
        output_dir=config.output_dir, metric=config.metric,
        dev={k: v for k, v in best_dev.items() if k not in ("split",)}, test=test, train_seconds=seconds,
        steps=outcome.step, epochs_run=round(outcome.step / steps_per_epoch, 4), stopped_early=outcome.stopped_early,
        tokens_per_second=float(np.median(speeds)) if speeds else 0.0, history=outcome.history)
    write_results(config, result, splits, model)
    return result


def write_results(config: FinetuneConfig, result: FinetuneResult, splits: dict[str, list[dict[str, Any]]],
                  model: torch.nn.Module) -> None:
    """``output_dir/results.json``: the result, the config, the split sizes and the trainable parameters."""
    summary = {k: v for k, v in dataclasses.asdict(result).items() if k != "history"}
    summary["config"] = config.to_dict()
    summary["sizes"] = {name: len(examples) for name, examples in splits.items()}
    trainable, total = trainable_parameters(model)
    summary["trainable_parameters"] = {"count": trainable, "total": total, "fraction": trainable / total}
    write_text_atomic(Path(config.output_dir) / "results.json", json.dumps(summary, indent=2) + "\n")


def zero_shot(config: FinetuneConfig, model: torch.nn.Module, task: PromptTask,
              splits: dict[str, list[dict[str, Any]]], tokenizer: Any, labels: LabelMap) -> FinetuneResult:
    """``method: prompt`` with ``epochs: 0``: the MLM model scored through the pattern untrained, saved as ``best``."""
    model.to(resolve_device(config.device))
    save_prompt_model(model, Path(config.output_dir) / "best", tokenizer, config, labels)
    test = task.evaluate(model, splits["test"]) if splits["test"] else None
    result = FinetuneResult(output_dir=config.output_dir, metric=config.metric, dev=task.evaluate(model, splits["dev"]),
                            test=test, train_seconds=0.0, steps=0, epochs_run=0.0, stopped_early=False,
                            tokens_per_second=0.0)
    write_results(config, result, splits, model)
    return result
