"""ERNIE beyond the family parity cases (tests/test_family_parity.py runs ErnieModel / ErnieForMaskedLM /
ErnieForPreTraining both ways with task types): parameter counts equal transformers', bad settings are refused."""

import pytest
import torch
import transformers
from family_fixtures import batch, hf_model

from bertkit.config import BertConfig
from bertkit.model import AutoModel
from bertkit.model.parameters import total_parameters


@pytest.mark.parametrize("use_task_id", [False, True])
def test_parameter_counts_equal_transformers(use_task_id):
    config = BertConfig.preset("base", model_type="ernie", use_task_id=use_task_id)
    theirs = transformers.ErnieConfig(use_task_id=use_task_id)
    with torch.device("meta"):
        model, pretraining = transformers.ErnieModel(theirs), transformers.ErnieForPreTraining(theirs)
    assert total_parameters(config) == model.num_parameters()
    assert total_parameters(config, with_heads=True) == pretraining.num_parameters()


def test_task_types_are_refused_where_they_cannot_be_used(tmp_path):
    with pytest.raises(ValueError, match="use_task_id .* is ERNIE's"):
        BertConfig(use_task_id=True)
    with pytest.raises(ValueError, match="task_type_vocab_size must be an integer ≥ 1"):
        BertConfig(model_type="ernie", task_type_vocab_size=0)
    hf_model("ernie-no-task", "model").save_pretrained(tmp_path)
    no_tasks = AutoModel.from_pretrained(tmp_path)
    inputs = batch("ernie-no-task")
    with pytest.raises(ValueError, match="no task-type embeddings"):
        no_tasks(**inputs, task_type_ids=torch.zeros_like(inputs["input_ids"]))
    hf_model("ernie", "model").save_pretrained(tmp_path / "tasks")
    tasks = AutoModel.from_pretrained(tmp_path / "tasks")
    with pytest.raises(ValueError, match=r"task_type_ids must lie in \[0, 4\)"):
        tasks(**batch("ernie") | dict(task_type_ids=torch.full_like(inputs["input_ids"], 4)))
    with pytest.raises(ValueError, match="task_type_ids has shape"):
        tasks(**batch("ernie") | dict(task_type_ids=torch.zeros(3, 2, dtype=torch.long)))
