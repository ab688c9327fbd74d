"""One typed config loader for every command: YAML, key=value and --flags typed alike; mistakes are one line."""

import dataclasses
import typing

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bertkit.cli import main
from bertkit.encoding.training import EmbeddingTrainConfig
from bertkit.finetuning.config import FinetuneConfig
from bertkit.finetuning.tune import SearchSpec, absolute_paths
from bertkit.pretraining import PretrainingConfig

CONFIGS = [PretrainingConfig, FinetuneConfig, EmbeddingTrainConfig, SearchSpec]
VALUES = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**6), st.floats(allow_nan=True),
                   st.text(max_size=12), st.lists(st.text(max_size=5), max_size=3),
                   st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2),
                   st.sampled_from(["1e-4", "64.5", "yes_please", "sixteen", "true", "null", "2", "0.5"]))


@pytest.mark.parametrize("config_class", CONFIGS, ids=lambda c: c.__name__)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_value_for_any_field_builds_or_is_one_clear_error(config_class, data):
    field = data.draw(st.sampled_from([f.name for f in dataclasses.fields(config_class)]))
    value = data.draw(VALUES)
    try:
        config = config_class.from_dict({field: value})
    except (ValueError, FileNotFoundError) as error:  # a message for a person, never a TypeError from deep inside
        assert "\n" not in str(error) and len(str(error)) < 400
        return
    hint = typing.get_type_hints(config_class)[field]
    kept = getattr(config, field)
    if hint in (int, float, bool, str):
        assert isinstance(kept, hint) and not (hint is int and isinstance(kept, bool))


@pytest.mark.parametrize("values,message", [
    ({"learning_rate": "fast"}, "learning_rate must be a number, got 'fast'"),
    ({"batch_size": "sixteen"}, "batch_size must be an integer, got 'sixteen'"),
    ({"max_seq_length": 64.5}, "max_seq_length must be an integer, got 64.5"),
    ({"bf16": "yes_please"}, "bf16 must be true or false, got 'yes_please'"),
    ({"lerning_rate": 1e-4}, r"unknown pretraining option\(s\) \['lerning_rate'\]; did you mean: lerning_rate → "
                             "learning_rate"),
])
def test_pretraining_mistakes_name_the_field(values, message):
    with pytest.raises(ValueError, match=message):
        PretrainingConfig.from_dict(values)


def test_yaml_numbers_and_overrides_are_typed(tmp_path):
    (tmp_path / "run.yaml").write_text("learning_rate: 1e-4\nbatch_size: 16\nbf16: yes\ncorpus: a.txt\n")
    config = PretrainingConfig.from_yaml(tmp_path / "run.yaml", ["warmup_steps=5", "max_minutes=2.5"])
    assert (config.learning_rate, config.batch_size, config.bf16, config.corpus) == (1e-4, 16, True, ["a.txt"])
    assert (config.warmup_steps, config.max_minutes) == (5, 2.5)
    finetune = FinetuneConfig.from_yaml(None, ["lr=1e-4", "threads=2", "bf16=false"])
    assert (finetune.learning_rate, finetune.threads, finetune.bf16) == (1e-4, 2, False)
    with pytest.raises(ValueError, match="threads must be a positive integer or 'auto', got 'two'"):
        FinetuneConfig.from_yaml(None, ["threads=two"])


def test_every_command_takes_key_value_and_flags(tmp_path, capsys):
    """`bertkit finetune --lr … --bf16` (refused before) reaches the config, typed; a bad value is one line."""
    assert main(["finetune", "--lr", "3e-5", "--epochs", "x"]) == 2
    assert "epochs must be an integer, got 'x'" in capsys.readouterr().err
    assert main(["finetune", "--bf16", "maybe"]) == 2
    assert "bf16 must be true or false, got 'maybe'" in capsys.readouterr().err
    assert main(["pretrain", "learning_rate=fast"]) == 2
    assert "learning_rate must be a number, got 'fast'" in capsys.readouterr().err
    assert main(["pretrain", "--batch-size", "sixteen"]) == 2
    assert "batch_size must be an integer, got 'sixteen'" in capsys.readouterr().err


def test_search_paths_are_absolute_before_ray_changes_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    base = absolute_paths({"train_file": "data/train.csv", "model": "models/m", "epochs": 2})
    assert base == {"train_file": str(tmp_path / "data" / "train.csv"), "model": str(tmp_path / "models" / "m"),
                    "epochs": 2}


def test_the_seeds_names_are_search_keys_and_a_typo_gets_a_suggestion():
    spec = SearchSpec.from_dict({"base": {"dataset": "rotten_tomatoes"},
                                 "search": {"lr": [1e-5, 2e-5], "batch": [8], "lr_type": ["linear"],
                                            "maxlength": [128]}})
    assert set(spec.search) == {"lr", "batch", "lr_type", "maxlength"}
    with pytest.raises(ValueError, match="cannot search 'learning_rat': not a fine-tuning option; did you mean: "
                                         "learning_rat → learning_rate"):
        SearchSpec.from_dict({"search": {"learning_rat": [1e-5]}})


def test_text_options_keep_what_was_typed_and_unreadable_yaml_is_text():
    """`pattern="{text} It was [MASK]."` is not YAML (a flow mapping cut short): it stays the text typed, as every
    text option does; a mapping option also takes its YAML text from a flag."""
    from bertkit.finetuning.config import FinetuneConfig
    from bertkit.training.options import coerce, parse_overrides

    typed = parse_overrides(["pattern={text} It was [MASK].", "epochs=2", "output_dir=2024", "lr=0.001",
                             "init_from_yaml={broken"], FinetuneConfig)
    assert typed == {"pattern": "{text} It was [MASK].", "epochs": 2, "output_dir": "2024", "lr": 0.001,
                     "init_from_yaml": "{broken"}
    assert parse_overrides(["pattern={text}"])["pattern"] == {"text": None}  # without the class: YAML's reading
    assert parse_overrides(["model=null"], FinetuneConfig)["model"] is None  # an optional text can be unset
    config = FinetuneConfig.from_yaml(None, ["method=prompt", "pattern={text} It was [MASK].",
                                             'verbalizer={"pos": "great", "neg": "terrible"}'])
    assert (config.pattern, config.verbalizer) == ("{text} It was [MASK].", {"pos": "great", "neg": "terrible"})
    assert coerce("verbalizer", '{"pos": "great"}', dict[str, str]) == {"pos": "great"}
    with pytest.raises(ValueError, match="verbalizer must be a mapping"):
        coerce("verbalizer", "great", dict[str, str])
