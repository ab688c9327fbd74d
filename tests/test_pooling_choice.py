"""``pooling: auto``: fine-tuning reads the sentence vector the folder's model was trained to give."""

import json

import pytest
import torch

from bertkit import BertConfig, BertForPreTraining, BertModel
from bertkit.finetuning.config import FinetuneConfig
from bertkit.finetuning.pooling_choice import folder_pooling
from bertkit.model import ElectraModel


def tiny(model_type: str = "bert") -> BertConfig:
    return BertConfig.preset("tiny", model_type=model_type, vocab_size=120, hidden_size=32, num_attention_heads=2,
                             intermediate_size=64, max_position_embeddings=64)


def test_the_default_is_auto():
    assert FinetuneConfig().pooling == "auto"
    with pytest.raises(ValueError, match="pooling must be one of"):
        FinetuneConfig(pooling="automatic")


def test_a_sentence_transformers_folder_pools_as_it_was_trained(minilm_dir, tmp_path):
    assert folder_pooling(minilm_dir)[0] == "mean"  # MiniLM: 1_Pooling says mean; its pooler was never trained
    folder = tmp_path / "st-cls"
    BertModel(tiny()).save_pretrained(folder)
    (folder / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]))
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({"word_embedding_dimension": 32,
                                                                  "pooling_mode_cls_token": True}))
    pooling, why = folder_pooling(folder)
    assert pooling == "cls" and "sentence-transformers" in why


def test_the_pooler_only_where_a_pair_head_trained_it(tmp_path):
    torch.manual_seed(0)
    BertForPreTraining(tiny()).save_pretrained(tmp_path / "nsp")  # MLM + NSP: the pooler was trained
    assert folder_pooling(tmp_path / "nsp") == ("pooled", "BERT's pooler, trained with the checkpoint's "
                                                           "sentence-pair head (NSP / SOP)")
    BertModel(tiny()).save_pretrained(tmp_path / "encoder")  # a pooler, but nothing says it was trained
    assert folder_pooling(tmp_path / "encoder")[0] == "mean"
    ElectraModel(tiny("electra")).save_pretrained(tmp_path / "electra")
    assert folder_pooling(tmp_path / "electra") == ("mean", "the mean of the tokens: the folder has no pooler")
    (tmp_path / "tuned").mkdir()  # a classifier bertkit fine-tuned goes on with its own
    (tmp_path / "tuned" / "config.json").write_text(json.dumps({"pooling": "max"}))
    assert folder_pooling(tmp_path / "tuned")[0] == "max"


@pytest.mark.parametrize("model_type", ["bert", "roberta", "albert", "electra", "distilbert", "ernie", "nezha", "xlm",
                                        "gpt2"])
def test_over_a_bare_config_the_pooler_only_where_the_architecture_builds_one(model_type):
    """One rule for a head over a config without a folder (PEFT counts, a peft adapter without task_config.json):
    read from the architecture's encoder itself, so it cannot disagree with it (it once did for GPT-2 and XLM)."""
    from bertkit.finetuning.models import default_pooling
    from bertkit.model import AutoModel

    with torch.device("meta"):
        encoder = AutoModel.model_class(model_type)(BertConfig.preset("base", model_type=model_type))
    assert default_pooling(model_type) == ("pooled" if getattr(encoder, "pooler", None) is not None else "cls")
