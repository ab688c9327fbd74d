"""The shared training options: declared once (bertkit.training.run_options), one mapping to TrainingArguments,
the same counting rules for every command, and every run's Trainer built from that mapping."""

import dataclasses
import json

import pytest
from finetuning_fixtures import save_tiny_model, sentiment_examples, tiny_tokenizer
from test_distillation import tiny_classifier

from bertkit.distillation import DistillConfig
from bertkit.encoding.training import EmbeddingTrainConfig
from bertkit.finetuning.config import FinetuneConfig
from bertkit.pretraining.causal import CausalPretrainingConfig
from bertkit.pretraining.config import PretrainingConfig
from bertkit.seq2seq.config import NumbersConfig
from bertkit.training import TrainingArguments
from bertkit.training.options import add_option_flags, declared_by
from bertkit.training.run_options import EpochTrainingOptions, StepTrainingOptions, TrainingOptions

BASES = (TrainingOptions, EpochTrainingOptions, StepTrainingOptions)
# each command's config with the least it needs to build, and the kind of run it is
CONFIGS = {FinetuneConfig: ({}, EpochTrainingOptions), DistillConfig: ({"teacher": "t"}, EpochTrainingOptions),
           EmbeddingTrainConfig: ({"train_file": "t"}, EpochTrainingOptions),
           PretrainingConfig: ({}, StepTrainingOptions), CausalPretrainingConfig: ({}, StepTrainingOptions),
           NumbersConfig: ({}, StepTrainingOptions)}
# TrainingArguments settings a command computes from options of its own (fine-tuning's head and early stopping)
RUN_OWN = {"head_lr_scale", "early_stopping_patience"}
# a value other than every default, for each shared option TrainingArguments takes
GIVEN = {"learning_rate": 3e-4, "weight_decay": 0.03, "lr_schedule": "cosine", "max_grad_norm": 0.5,
         "gradient_accumulation_steps": 2, "seed": 7, "save_total_limit": 3, "max_minutes": 5.0, "threads": 1,
         "device": "cpu", "progress": False}


def own_fields(klass: type) -> dict[str, dataclasses.Field]:
    """The fields a class's own body declares (an inherited one redeclared counts)."""
    names = vars(klass).get("__annotations__", {})
    return {f.name: f for f in dataclasses.fields(klass) if f.name in names}


@pytest.mark.parametrize("config_class", list(CONFIGS), ids=lambda c: c.__name__)
def test_shared_options_are_declared_once_and_only_defaults_differ(config_class):
    kind = CONFIGS[config_class][1]
    assert issubclass(config_class, kind)
    shared = {f.name for f in dataclasses.fields(kind)}
    for name in shared:
        owner = declared_by(config_class, name)
        assert owner in BASES, f"{config_class.__name__}.{name} is declared by {owner.__name__}"
        redeclared = own_fields(config_class).get(name)
        if redeclared is not None:  # only to give this command its own default: same type, another default
            base_field = next(f for f in dataclasses.fields(kind) if f.name == name)
            assert redeclared.type == base_field.type, name
            assert redeclared.default != base_field.default, f"{config_class.__name__}.{name} repeats the default"
    # a setting the Trainer takes is either a shared option or one the command computes from its own
    trainer_settings = {f.name for f in dataclasses.fields(TrainingArguments)}
    copies = {f.name for f in dataclasses.fields(config_class)} & trainer_settings - shared - RUN_OWN
    assert not copies, f"{config_class.__name__} declares its own {sorted(copies)}"


def test_help_lists_a_commands_own_options_before_the_shared_ones():
    import argparse

    parser = argparse.ArgumentParser()
    add_option_flags(parser, FinetuneConfig)
    flags = [a.option_strings[0] for a in parser._actions if a.option_strings and a.dest != "help"]
    assert flags.index("--task") < flags.index("--batch-size") < flags.index("--learning-rate")
    assert flags.index("--early-stopping-patience") < flags.index("--epochs") < flags.index("--max-steps")


def expected_epoch_counts(batches: int, accumulation: int, epochs: int, evals: int, ratio: float,
                          max_steps: int | None) -> tuple[int, int, int, int]:
    """(max_steps, eval_steps, logging_steps, warmup_steps) by the rule, in plain arithmetic."""
    per_epoch = -(-batches // accumulation)  # a last partial accumulation is a step
    steps = max_steps or per_epoch * epochs
    every = max(1, -(-per_epoch // evals))  # at most `evals` evaluations in an epoch
    return steps, every, max(1, min(50, every // 2)), round(ratio * steps)


@pytest.mark.parametrize("batches,accumulation,epochs,evals,ratio,max_steps", [
    (10, 1, 3, 4, 0.1, None), (10, 3, 2, 1, 0.0, None), (7, 2, 1, 3, 0.3, None), (1, 1, 5, 2, 0.2, None),
    (250, 1, 2, 2, 0.06, None), (10, 1, 3, 1, 0.1, 7)])
def test_epoch_runs_count_steps_by_one_rule(batches, accumulation, epochs, evals, ratio, max_steps):
    expected = expected_epoch_counts(batches, accumulation, epochs, evals, ratio, max_steps)
    for config_class in (FinetuneConfig, DistillConfig, EmbeddingTrainConfig):
        config = config_class(**CONFIGS[config_class][0], epochs=epochs, evals_per_epoch=evals, warmup_ratio=ratio,
                              gradient_accumulation_steps=accumulation, max_steps=max_steps)
        args = config.training_arguments(batches)
        assert (args.max_steps, args.eval_steps, args.logging_steps, args.warmup_steps) == expected, config_class
    assert -(-batches // accumulation) // expected[1] <= evals  # never more evaluations in an epoch than asked


@pytest.mark.parametrize("config_class", [PretrainingConfig, CausalPretrainingConfig, NumbersConfig])
def test_step_runs_pass_their_counts_and_a_ratio_wins_over_warmup_steps(config_class):
    config = config_class(max_steps=40, eval_steps=8, logging_steps=3, warmup_steps=5)
    args = config.training_arguments()
    assert (args.max_steps, args.eval_steps, args.logging_steps, args.warmup_steps) == (40, 8, 3, 5)
    assert config_class(max_steps=40, warmup_steps=5, warmup_ratio=0.3).training_arguments().warmup_steps == 12
    with pytest.raises(ValueError, match="max_steps must be a positive integer: this run counts steps"):
        config_class(max_steps=None)
    with pytest.raises(ValueError, match="logging_steps must be a positive integer, got 0"):
        config_class(logging_steps=0)
    with pytest.raises(ValueError, match="eval_steps must be an integer ≥ 0, got -1"):
        config_class(eval_steps=-1)


@pytest.mark.parametrize("config_class", list(CONFIGS), ids=lambda c: c.__name__)
def test_every_shared_option_reaches_the_trainer(config_class):
    config = config_class(**CONFIGS[config_class][0], **GIVEN, output_dir="out/given", max_steps=9)
    args = config.training_arguments(4, "loss", ("loss",), head_prefixes=("head.",))
    for name, value in GIVEN.items():
        assert getattr(args, name) == value, name
    assert (args.output_dir, args.max_steps, args.metric_for_best, args.plot_keys, args.head_prefixes) == (
        "out/given", 9, "loss", ("loss",), ("head.",))


@pytest.mark.parametrize("config_class", list(CONFIGS), ids=lambda c: c.__name__)
@pytest.mark.parametrize("option,value,message", [
    ("warmup_ratio", 1.5, r"warmup_ratio must be in \[0, 1\), got 1.5"),
    ("lr_schedule", "steep", "lr_schedule must be one of"),
    ("gradient_accumulation_steps", 0, "gradient_accumulation_steps must be a positive integer, got 0"),
    ("threads", 0, "threads must be a positive integer or 'auto', got 0"),
    ("device", "tpu", "device"),
    ("max_minutes", -1.0, "max_minutes must be ≥ 0"),
    ("max_steps", 0, "max_steps must be a positive integer, got 0"),
    ("warmup_steps", -2, "warmup_steps must be an integer ≥ 0, got -2")])
def test_bad_shared_values_are_refused_by_name(config_class, option, value, message):
    with pytest.raises(ValueError, match=message):
        config_class.from_dict(CONFIGS[config_class][0] | {option: value})


class Captured(Exception):
    """Raised by the stand-in Trainer: the run got as far as building its Trainer."""


def capture_trainer(monkeypatch, module) -> dict:
    """Replace ``module``'s Trainer by one that records its settings and data, then stops the run."""
    seen = {}

    def trainer(model, args, data, *rest, **options):
        seen.update(args=args, data=data)
        raise Captured

    monkeypatch.setattr(module, "Trainer", trainer)
    return seen


def check_shared_settings(args: TrainingArguments, config: TrainingOptions) -> None:
    """Every shared option the config holds is what the Trainer got."""
    for name in GIVEN:
        assert getattr(args, name) == getattr(config, name), name


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


def test_fine_tuning_and_distillation_runs_count_by_the_rule(monkeypatch, tmp_path):
    from bertkit.distillation import distill
    from bertkit.distillation import task as distill_task
    from bertkit.finetuning import train as finetune_run

    model = save_tiny_model(tmp_path / "model")
    train = write_jsonl(tmp_path / "train.jsonl", sentiment_examples(40, seed=0))
    dev = write_jsonl(tmp_path / "dev.jsonl", sentiment_examples(8, seed=1))
    seen = capture_trainer(monkeypatch, finetune_run)
    config = FinetuneConfig(model=str(model), train_file=train, dev_file=dev, batch_size=8, epochs=2,
                            evals_per_epoch=2, warmup_ratio=0.2, max_length=32, output_dir=str(tmp_path / "ft"),
                            **GIVEN)
    with pytest.raises(Captured):
        finetune_run.finetune(config)
    assert seen["data"].steps_per_epoch == 5  # 40 examples in batches of 8
    check_shared_settings(seen["args"], config)
    assert (seen["args"].max_steps, seen["args"].eval_steps, seen["args"].logging_steps,
            seen["args"].warmup_steps) == expected_epoch_counts(5, 2, 2, 2, 0.2, None)

    tiny_classifier(layers=2).save_pretrained(tmp_path / "teacher", tokenizer=tiny_tokenizer())
    seen = capture_trainer(monkeypatch, distill_task)
    config = DistillConfig(teacher=str(tmp_path / "teacher"), train_file=train, dev_file=dev, test_file=dev,
                           student_num_layers=1, batch_size=8, epochs=3, evals_per_epoch=2, warmup_ratio=0.2,
                           output_dir=str(tmp_path / "kd"), speed_rounds=1, **GIVEN)
    with pytest.raises(Captured):
        distill(config)
    batches = seen["data"].steps_per_epoch
    check_shared_settings(seen["args"], config)
    counts = expected_epoch_counts(batches, 2, 3, 2, 0.2, None)
    assert (seen["args"].max_steps, seen["args"].eval_steps, seen["args"].logging_steps,
            seen["args"].warmup_steps) == counts


def test_bi_encoder_training_counts_by_the_rule(monkeypatch, tmp_path, minilm_dir):
    from bertkit.encoding import training

    rows = [{"anchor": f"question {i}", "positive": f"answer {i}"} for i in range(30)]
    train = write_jsonl(tmp_path / "train.jsonl", rows[:24])
    dev = write_jsonl(tmp_path / "dev.jsonl", rows[24:])
    seen = capture_trainer(monkeypatch, training)
    config = EmbeddingTrainConfig(model=str(minilm_dir), train_file=train, dev_file=dev, batch_size=4, epochs=2,
                                  evals_per_epoch=3, warmup_ratio=0.1, output_dir=str(tmp_path / "emb"), **GIVEN)
    with pytest.raises(Captured):
        training.train_embeddings(config)
    assert seen["data"].steps_per_epoch == 6  # 24 pairs in batches of 4
    check_shared_settings(seen["args"], config)
    assert (seen["args"].max_steps, seen["args"].eval_steps, seen["args"].logging_steps,
            seen["args"].warmup_steps) == expected_epoch_counts(6, 2, 2, 3, 0.1, None)
    assert seen["args"].metric_for_best == "mrr@10"


STEP_RUN_GIVEN = {"max_steps": 12, "eval_steps": 4, "logging_steps": 3, "warmup_steps": 1, "warmup_ratio": 0.25}


def test_step_counted_runs_build_their_trainer_from_the_shared_mapping(monkeypatch, tmp_path, minilm_dir):
    from bertkit.pretraining import causal
    from bertkit.pretraining import run as pretraining_run
    from bertkit.seq2seq import run as numbers_run
    from bertkit.seq2seq import span_run

    corpus = tmp_path / "corpus.txt"
    lines = ["the module provides functions for files .", "install the package with apt - get ."]
    corpus.write_text("\n\n".join("\n".join(lines) for _ in range(40)) + "\n")
    runs = [
        (numbers_run, numbers_run.run_numbers, NumbersConfig(max_number=200, num_hidden_layers=1, decoder_layers=1,
                                                             hidden_size=16, intermediate_size=32)),
        (span_run, numbers_run.run_numbers, NumbersConfig(objective="span_corruption", max_number=200,
                                                          num_hidden_layers=1, decoder_layers=1, hidden_size=16,
                                                          intermediate_size=32)),
        (causal, causal.run_causal_pretraining, CausalPretrainingConfig(
            corpus=[str(corpus)], tokenizer=str(minilm_dir), num_hidden_layers=1, hidden_size=16,
            num_attention_heads=2, block_size=16, batch_size=4, eval_batches=1, prompts=["the"], sample_tokens=1)),
        (pretraining_run, pretraining_run.run_pretraining, PretrainingConfig(
            corpus=[str(corpus)], tokenizer=str(minilm_dir), model_preset="tiny", max_seq_length=32, batch_size=4))]
    for number, (module, run, config) in enumerate(runs):
        config = dataclasses.replace(config, **STEP_RUN_GIVEN, **GIVEN, output_dir=str(tmp_path / f"run{number}"))
        seen = capture_trainer(monkeypatch, module)
        with pytest.raises(Captured):
            run(config)
        check_shared_settings(seen["args"], config)
        args = seen["args"]
        assert (args.max_steps, args.eval_steps, args.logging_steps, args.warmup_steps) == (12, 4, 3, 3), module
