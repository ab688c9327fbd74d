"""How a fine-tuned model's inputs were prepared is one typed record (InputSettings): training writes it into
config.json, predict / serve / distillation read the same record back."""

from __future__ import annotations

import dataclasses
import json

import pytest
from family_fixtures import SHAPE

from bertkit.config import BertConfig
from bertkit.finetuning.config import FinetuneConfig
from bertkit.finetuning.input_settings import InputSettings
from bertkit.finetuning.models import BertForSequenceClassification, TaskConfig
from bertkit.finetuning.predict import _settings
from bertkit.model.architectures import TASK_KEYS


def test_every_setting_is_a_fine_tuning_option_with_the_same_default():
    options = {f.name: f for f in dataclasses.fields(FinetuneConfig)}
    defaults = FinetuneConfig()
    for spec in dataclasses.fields(InputSettings):
        if spec.name == "words":  # found in the data, not an option
            continue
        assert spec.name in options, spec.name
        assert getattr(InputSettings(), spec.name) == getattr(defaults, spec.name), spec.name


def test_a_runs_settings_survive_config_json_and_give_predict_the_runs_options(tmp_path):
    run = FinetuneConfig(task="classification", max_length=48, long_text="head+tail", head_tokens=20,
                         window_aggregation="max", columns={"text": "review"}, attention="local", local_window=16)
    settings = InputSettings.of_run(run, "chars")
    base = BertConfig(**SHAPE)
    model = BertForSequenceClassification(TaskConfig.over(base, id2label={0: "neg", 1: "pos"}, finetuning=settings))
    model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())["finetuning"]
    assert saved == {f.name: getattr(settings, f.name) for f in dataclasses.fields(InputSettings)}
    read = TaskConfig.from_json_file(tmp_path / "config.json")
    assert isinstance(read.finetuning, InputSettings) and read.finetuning == settings
    predicted = _settings(read, batch_size=7)
    for name in InputSettings.run_fields():
        assert getattr(predicted, name) == getattr(run, name), name
    assert predicted.eval_batch_size == 7


@pytest.mark.parametrize("problem_type,task", [("regression", "regression"),
                                               ("multi_label_classification", "multi_label"),
                                               (None, "classification")])
def test_a_folder_without_settings_takes_its_task_from_the_problem_type(problem_type, task):
    config = TaskConfig(**SHAPE, id2label={0: "a", 1: "b"}, problem_type=problem_type)
    assert config.finetuning == InputSettings(task=task)
    assert _settings(config, 8).task == task


def test_unknown_or_mistyped_settings_are_refused_by_name():
    with pytest.raises(ValueError, match=r"does not know: \['max_lenght'\].*max_length"):
        TaskConfig(**SHAPE, finetuning={"max_lenght": 64})
    with pytest.raises(ValueError, match="max_length"):
        InputSettings.from_dict({"max_length": "long"})
    with pytest.raises(ValueError, match="words must be one of"):
        InputSettings.from_dict({"words": "sentences"})
    with pytest.raises(ValueError, match="must be an object"):
        InputSettings.from_dict(["max_length", 64])


def test_the_model_layer_ignores_exactly_the_task_configs_own_keys():
    """An encoder loaded alone from a fine-tuned folder skips these; a new TaskConfig field must be listed."""
    transformers_task_keys = {"id2label", "label2id", "problem_type", "classifier_dropout"}
    own = {f.name for f in dataclasses.fields(TaskConfig)} - {f.name for f in dataclasses.fields(BertConfig)}
    assert own - transformers_task_keys == TASK_KEYS
