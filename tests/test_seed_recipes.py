"""The recipes exactly: the BertSim recipe's text cleaning, the auto head+tail length rule, the BertSim run.

The oracle of ``normalize_text`` is the BertSim recipe's own function, transcribed literally below (its notes,
``CustomDataset.text_normal_l1``); bertkit's port in ``finetuning/data.py`` is written apart from it.
"""

import json
import re
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from bertkit.finetuning import long_text
from bertkit.finetuning.config import FinetuneConfig
from bertkit.finetuning.data import normalize_text
from bertkit.finetuning.predict import load_predictor
from bertkit.finetuning.train import finetune, load_splits

ROOT = Path(__file__).resolve().parents[1]


def text_normal_l1(text):  # the BertSim recipe's function, literally (the oracle)
    rule_url = re.compile('(https?://)?(www\\.)?[-a-zA-Z0-9@:%._+~#=]{1,256}\\.[a-zA-Z0-9()]{1,6}\\b([-a-zA-Z0-9()@:%_+.~#?&/=]*)')
    rule_legal = re.compile('[^\\[\\]@#a-zA-Z0-9\u4e00-\u9fa5]')
    rule_space = re.compile('\\s+')
    text = str(text).replace('\\n', ' ').replace('\n', ' ').strip()
    text = rule_url.sub(' ', text)
    text = rule_legal.sub(' ', text)
    text = rule_space.sub(' ', text)
    return text.strip()


# what their data holds: Chinese queries, English, URLs with and without a scheme, bare domains, decimals,
# @mentions, #tags, [emoji codes], line breaks real and written as \n, accents, full-width punctuation
EXAMPLES = [
    "怎么开通花呗？", "花呗怎么还款\\n逾期了怎么办", "Look: https://x.io/a?b=1  北京，欢迎你!! @bob #tag [1]",
    "visit www.example.com/page.html today", "pi is 3.14 and e is 2.718", "café naïve Zürich — 東京タワー",
    "[微笑][太阳]天气好好喔！", "  multiple\t\tspaces\r\nand\u3000ideographic  ", "email me: a.b@mail.co.uk",
    "http://", "...", "", "ＡＢＣ１２３ full width", "Ελληνικά и русский", "a\\nb\\\\nc", "(x) [y] {z} @# 100%",
]
PIECES = st.sampled_from(["http://", "https://", "www.", ".com", ".", "/", "?", "=", "&", "3.14", "\\n", "\n", " ",
                          "\t", "@", "#", "[", "]", "(", ")", "中文", "花呗", "é", "ß", "Ω", "，", "！", "abc", "XY",
                          "9", "_", "-", "~", "%", "\u3000", "😀"])
TEXTS = st.one_of(st.text(max_size=60), st.lists(PIECES, max_size=25).map("".join))


def test_normalize_text_is_the_seeds_cleaning_on_their_kind_of_text():
    for text in EXAMPLES:
        assert normalize_text(text) == text_normal_l1(text), text
    assert normalize_text("Look: https://x.io/a?b=1  北京，欢迎你!! @bob #tag [1]") == "Look 北京 欢迎你 @bob #tag [1]"
    assert normalize_text("pi is 3.14, café\\nnext") == "pi is caf next"  # their quirks, kept: decimals, accents


@settings(max_examples=150, deadline=None)
@given(TEXTS)
def test_normalize_text_equals_the_seeds_function_on_any_text(text):
    assert normalize_text(text) == text_normal_l1(text)


def test_head_tokens_auto_is_the_seeds_length_rule():
    budget = 510  # max_length 512
    short, long = list(range(800)), list(range(801))
    assert long_text.windows(short, "head+tail", budget) == [short[:128] + short[-382:]]
    assert long_text.windows(long, "head+tail", budget) == [long[:256] + long[-254:]]
    assert long_text.windows(long, "head+tail", budget, head_tokens=100) == [long[:100] + long[-410:]]
    assert long_text.windows(list(range(100)), "head+tail", 62) == [list(range(16)) + list(range(54, 100))]
    assert long_text.auto_head_tokens(900, 62) == 31 and long_text.auto_head_tokens(10, 2) == 1
    assert long_text.windows(short[:300], "head+tail", budget) == [short[:300]]  # fits: untouched


def test_head_tail_with_default_settings_is_valid():
    config = FinetuneConfig(long_text="head+tail")
    assert config.head_tokens == "auto"
    long_text.check_strategy(config.long_text, config.max_length - 2, config.head_tokens, None, "mean")
    assert FinetuneConfig(head_tokens="200").head_tokens == 200
    with pytest.raises(ValueError, match="head_tokens must be a number of tokens or 'auto', got 'half'"):
        FinetuneConfig(head_tokens="half")


def test_bertsim_config_is_the_seeds_recipe():
    config = FinetuneConfig.from_yaml(ROOT / "configs/bertsim.yaml")
    assert (config.task, config.pooling, config.classifier_head, config.classifier_dropout) == (
        "regression", "pooled", "two_layer", 0.1)
    assert (config.max_length, config.batch_size, config.learning_rate, config.head_lr_scale) == (256, 16, 1e-5, 10)
    assert (config.lr_schedule, config.weight_decay, config.max_grad_norm, config.normalize) == (
        "linear", 0.0, None, True)


@pytest.mark.slow  # reading and pairing the 12,752 reviews alone takes ~5 s on two quiet cores
def test_bertsim_runs_end_to_end_on_real_pairs(tmp_path, minilm_dir):
    overrides = {"model": str(minilm_dir), "output_dir": str(tmp_path / "bertsim"), "max_steps": 2, "batch": 4,
                 "maxlength": 48, "limit_train": 16, "limit_eval": 8, "progress": False}
    config = FinetuneConfig.from_yaml(ROOT / "configs/bertsim.yaml", overrides)
    splits = load_splits(config)
    assert all(e["text"] == normalize_text(e["text"]) and e["score"] in (0.0, 1.0) for e in splits["train"])
    result = finetune(config)
    assert result.steps == 2 and result.metric == "spearman" and "spearman" in result.test
    folder = tmp_path / "bertsim" / "best"
    saved = json.loads((folder / "config.json").read_text())
    assert saved["problem_type"] == "regression" and saved["classifier_head"] == "two_layer"
    pair = ("A gripping, beautifully acted film.", "One of the best films of the year.")
    score = load_predictor(folder).predict([pair[0]], [pair[1]])[0]["score"]
    transformers = pytest.importorskip("transformers")
    model = transformers.AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=True).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    with torch.no_grad():
        theirs = model(**tokenizer(*pair, return_tensors="pt")).logits
    assert theirs.shape == (1, 1) and abs(theirs.item() - score) <= 1e-5
