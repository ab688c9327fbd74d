"""XLM-R folders as models: transformers' XLMRobertaModel / XLMRobertaForMaskedLM folders load through bertkit's Auto
classes, bertkit's load in transformers, with the same outputs (≤ 1e-5; tiny config, every weight perturbed, padded
batch); and an XLM-R folder with a bertkit-trained SentencePiece tokenizer runs end to end as transformers does.

Oracle: transformers' XLM-R classes and its AutoTokenizer on the same folders."""

from __future__ import annotations

import json

import pytest
import torch
import transformers
from family_fixtures import max_diff, perturb
from sentencepiece_fixtures import held_out_lines, training_lines

from bertkit.config import BertConfig
from bertkit.model import AutoModel, AutoModelForMaskedLM, AutoModelForPreTraining, RobertaModel
from bertkit.model.xlm_roberta import XLMRobertaForMaskedLM, XLMRobertaModel
from bertkit.tokenization import AutoTokenizer
from bertkit.tokenization.unigram_training import train_unigram_folder

# odd sizes; pad_token_id 1 as XLM-R's, positions counted after it (so 42 positions give 40 tokens)
SHAPE = dict(vocab_size=103, hidden_size=36, num_hidden_layers=3, num_attention_heads=3, intermediate_size=37,
             max_position_embeddings=42, type_vocab_size=1, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
             layer_norm_eps=1e-5)
ROLES = {"model": (AutoModel, "XLMRobertaModel"), "masked_lm": (AutoModelForMaskedLM, "XLMRobertaForMaskedLM"),
         "pretraining": (AutoModelForPreTraining, "XLMRobertaForMaskedLM")}


def _theirs(role: str, seed: int = 0) -> torch.nn.Module:
    """A perturbed random transformers XLM-R model in ``role``."""
    torch.manual_seed(seed)
    model = getattr(transformers, ROLES[role][1])(transformers.XLMRobertaConfig(**SHAPE))
    return perturb(model, seed).eval()


def _batch() -> dict[str, torch.Tensor]:
    """Three rows, two of them right-padded with XLM-R's pad id 1 (the positions must skip it)."""
    ids = torch.randint(3, SHAPE["vocab_size"], (3, 17), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    mask[1, 11:], mask[2, 5:] = 0, 0
    ids[mask == 0] = 1
    return dict(input_ids=ids, attention_mask=mask)


def _outputs(model: torch.nn.Module, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Per-token output (hidden state or logits), pooled vector when there is one, and every layer's hidden states."""
    with torch.no_grad():
        out = model(**inputs, output_hidden_states=True)
    found = {"tokens": out.logits if getattr(out, "logits", None) is not None else out.last_hidden_state,
             "hidden_states": torch.stack(out.hidden_states)}
    if getattr(out, "pooler_output", None) is not None:
        found["pooled"] = out.pooler_output
    return found


def _assert_same(ours: torch.nn.Module, theirs: torch.nn.Module) -> None:
    """Equal outputs at every real position (≤ 1e-5)."""
    inputs = _batch()
    a, b = _outputs(ours, inputs), _outputs(theirs, inputs)
    assert a.keys() == b.keys()
    mask = inputs["attention_mask"]
    assert max_diff(a["tokens"], b["tokens"], mask) <= 1e-5
    assert max_diff(a["hidden_states"], b["hidden_states"], mask.bool()[None].expand(a["hidden_states"].shape[:3])) \
        <= 1e-5
    if "pooled" in a:
        assert max_diff(a["pooled"], b["pooled"]) <= 1e-5


@pytest.mark.parametrize("role", ROLES)
def test_transformers_folders_load_with_the_same_outputs(tmp_path, role):
    theirs = _theirs(role)
    theirs.save_pretrained(tmp_path)
    ours = ROLES[role][0].from_pretrained(tmp_path)
    assert type(ours).__name__ == type(theirs).__name__
    assert ours.loading_report.missing == [] and ours.loading_report.unexpected == []
    _assert_same(ours, theirs)


@pytest.mark.parametrize("role", ROLES)
def test_bertkit_folders_load_in_transformers_with_the_same_outputs(tmp_path, role):
    (tmp_path / "shape").mkdir()
    (tmp_path / "shape" / "config.json").write_text(transformers.XLMRobertaConfig(**SHAPE).to_json_string())
    torch.manual_seed(3)
    ours = perturb(ROLES[role][0].from_config(BertConfig.from_json_file(tmp_path / "shape" / "config.json")), 3)
    folder = ours.eval().save_pretrained(tmp_path / "ours")
    written = json.loads((folder / "config.json").read_text())
    assert written["model_type"] == "xlm-roberta" and written["architectures"] == [ROLES[role][1]]
    theirs = getattr(transformers, ROLES[role][1]).from_pretrained(folder).eval()
    _assert_same(ours, theirs)
    assert {name: getattr(theirs.config, name) for name in SHAPE} == SHAPE  # the shape survives the round trip


def test_a_config_that_omits_fields_reads_xlm_robertas_defaults(tmp_path):
    values = dict(model_type="xlm-roberta", hidden_size=36, num_attention_heads=3, num_hidden_layers=1)
    (tmp_path / "config.json").write_text(json.dumps(values))
    ours, theirs = BertConfig.from_json_file(tmp_path / "config.json"), transformers.AutoConfig.from_pretrained(
        tmp_path)
    for name in ("vocab_size", "pad_token_id", "max_position_embeddings", "type_vocab_size", "layer_norm_eps",
                 "intermediate_size", "hidden_act"):
        assert getattr(ours, name) == getattr(theirs, name), name


def test_a_roberta_class_refuses_an_xlm_roberta_folder_and_back(tmp_path):
    _theirs("model").save_pretrained(tmp_path / "xlmr")
    with pytest.raises(ValueError, match="'xlm-roberta' model"):
        RobertaModel.from_pretrained(tmp_path / "xlmr")
    transformers.RobertaModel(transformers.RobertaConfig(**SHAPE)).save_pretrained(tmp_path / "roberta")
    with pytest.raises(ValueError, match="'roberta' model"):
        XLMRobertaModel.from_pretrained(tmp_path / "roberta")
    assert issubclass(XLMRobertaForMaskedLM, AutoModelForMaskedLM.classes["roberta"])  # one model, two names


@pytest.fixture(scope="module")
def xlmr_folder(tmp_path_factory):
    """An XLM-R-shaped folder: a bertkit-trained unigram tokenizer (300 pieces) and random transformers weights."""
    root = tmp_path_factory.mktemp("xlmr")
    text = root / "text.txt"
    text.write_text("\n".join(training_lines()[:600]) + "\n", encoding="utf-8")
    folder = root / "folder"
    tokenizer = train_unigram_folder([str(text)], folder, 300, "xlm-roberta", character_coverage=0.995)
    config = transformers.XLMRobertaConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2,
                                           num_attention_heads=4, intermediate_size=64)
    torch.manual_seed(0)
    perturb(transformers.XLMRobertaForMaskedLM(config)).save_pretrained(folder)
    return folder


def test_an_xlm_roberta_folder_runs_end_to_end_as_in_transformers(xlmr_folder):
    lines = [line[:8 + 12 * i] for i, line in enumerate(line for line in held_out_lines()[::500] if line.strip())]
    lines = lines[:6]  # of growing length, so that the short rows are padded
    pairs = [line[::-1] for line in lines]
    ours_tokens = AutoTokenizer.from_pretrained(xlmr_folder)(lines, pairs, padding=True, truncation=True,
                                                             max_length=48, return_tensors="pt")
    theirs_tokens = transformers.AutoTokenizer.from_pretrained(xlmr_folder)(lines, pairs, padding=True,
                                                                            truncation=True, max_length=48,
                                                                            return_tensors="pt")
    assert type(AutoTokenizer.from_pretrained(xlmr_folder)).__name__ == "XLMRobertaTokenizer"
    assert ours_tokens["input_ids"].tolist() == theirs_tokens["input_ids"].tolist()
    assert (ours_tokens["input_ids"] == 1).any()  # the batch is padded: positions must skip the pads
    inputs = dict(input_ids=ours_tokens["input_ids"], attention_mask=ours_tokens["attention_mask"])
    mask = theirs_tokens["attention_mask"]
    with torch.no_grad():
        hidden = AutoModel.from_pretrained(xlmr_folder)(**inputs).last_hidden_state
        logits = AutoModelForMaskedLM.from_pretrained(xlmr_folder)(**inputs).logits
        expected_hidden = transformers.AutoModel.from_pretrained(xlmr_folder).eval()(**theirs_tokens)
        expected_logits = transformers.AutoModelForMaskedLM.from_pretrained(xlmr_folder).eval()(**theirs_tokens)
    assert max_diff(hidden, expected_hidden.last_hidden_state, mask) <= 1e-5
    assert max_diff(logits, expected_logits.logits, mask) <= 1e-5


def test_an_input_past_the_positions_is_refused_by_name_not_an_index_error():
    """XLM-R counts positions after the padding index, as RoBERTa: max_position_embeddings − 2 tokens fit."""
    model = XLMRobertaModel(BertConfig(model_type="xlm-roberta", pad_token_id=1, **SHAPE)).eval()
    fits = SHAPE["max_position_embeddings"] - 2
    with torch.no_grad():
        model(torch.full((1, fits), 5))
        with pytest.raises(ValueError, match=f"{fits}"):
            model(torch.full((1, fits + 1), 5))
