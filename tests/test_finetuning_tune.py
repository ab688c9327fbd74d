"""A real 2-trial Ray Tune grid on a tiny model: per-epoch reports, the results table, best config and plot."""

import csv
import json

import pytest
import yaml
from finetuning_fixtures import sentiment_examples, tiny_dir  # noqa: F401

from bertkit.finetuning.tune import SearchSpec, run_search


def test_two_trial_grid_reports_each_epoch_and_writes_results(tmp_path, tiny_dir, ray_to_itself):  # noqa: F811
    pytest.importorskip("ray.tune")
    for split, rows in (("train", sentiment_examples(320, 0)), ("dev", sentiment_examples(40, 1))):
        (tmp_path / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    base = {"model": str(tiny_dir), "train_file": str(tmp_path / "train.jsonl"),
            "dev_file": str(tmp_path / "dev.jsonl"), "epochs": 3, "batch_size": 16, "max_length": 32,
            "head_lr_scale": 1.0}
    (tmp_path / "search.yaml").write_text(yaml.safe_dump({
        "base": base, "search": {"learning_rate": [3e-3, 1e-6]}, "output_dir": str(tmp_path / "tune")}))
    spec = SearchSpec.from_yaml(tmp_path / "search.yaml")
    best = run_search(spec)
    rows = list(csv.DictReader(open(tmp_path / "tune" / "trials.csv")))
    assert len(rows) == 2 and {float(r["learning_rate"]) for r in rows} == {3e-3, 1e-6}
    assert all(r["evaluations"] == "3" for r in rows)  # one dev report per epoch
    assert float(rows[0]["best_accuracy"]) >= float(rows[1]["best_accuracy"])
    assert best["learning_rate"] == 3e-3 and best["best_accuracy"] >= 0.75  # 1e-6 barely moves the weights
    assert float(rows[1]["best_accuracy"]) < best["best_accuracy"]
    chosen = yaml.safe_load(open(tmp_path / "tune" / "best.yaml"))
    assert chosen["learning_rate"] == 3e-3 and chosen["train_file"] == base["train_file"]
    assert (tmp_path / "tune" / "search.png").read_bytes()[:4] == b"\x89PNG"


def test_bad_search_files_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="cannot search 'learning_speed'"):
        SearchSpec(search={"learning_speed": [1, 2]})
    with pytest.raises(ValueError, match="needs mode: random"):
        SearchSpec(search={"learning_rate": {"loguniform": [1e-5, 1e-4]}})
    with pytest.raises(ValueError, match="epochs must be a positive integer, got 0"):
        SearchSpec(search={"epochs": [0]})
    with pytest.raises(ValueError, match="lr_schedule must be one of \\('constant', 'linear', 'cosine'\\)"):
        SearchSpec(search={"lr_schedule": ["linear", "exponential"]})
    assert SearchSpec().search["learning_rate"] == [1e-5, 2e-5, 3e-5, 4e-5]  # the default grid
