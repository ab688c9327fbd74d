"""peft (test-only oracle) and bertkit read each other's adapter folders: the same base model in transformers with
peft's adapter and in bertkit with its own give the same outputs, for LoRA, prompt tuning, P-tuning and prefixes."""

import copy
import warnings

import peft
import pytest
import torch
import transformers
from family_fixtures import hf_config, perturb

from bertkit.finetuning.adapter_folders import load_task_adapter
from bertkit.finetuning.models import BertForSequenceClassification, BertForTokenClassification
from bertkit.peft import PeftConfig, apply_peft
from bertkit.peft.folders import save_adapter

CASES = [("bert", "seq"), ("albert-one-group", "seq"), ("distilbert", "token")]
HF_TASK = {"seq": transformers.AutoModelForSequenceClassification,
           "token": transformers.AutoModelForTokenClassification}
OURS = {"seq": BertForSequenceClassification, "token": BertForTokenClassification}
TASK_TYPE = {"seq": "SEQ_CLS", "token": "TOKEN_CLS"}


def base_pair(case: str, kind: str, folder):
    """A perturbed transformers task model saved to ``folder``, and bertkit's model of that folder."""
    config = hf_config(case)
    config.num_labels = 3
    torch.manual_seed(0)
    theirs = perturb(HF_TASK[kind].from_config(config)).eval()
    theirs.save_pretrained(folder)
    return theirs, OURS[kind].from_pretrained(folder)


def batch():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 100, (3, 9), generator=g)
    mask = torch.ones(3, 9, dtype=torch.long)
    mask[1, 6:] = 0
    mask[2, 3:] = 0
    return {"input_ids": ids, "attention_mask": mask}


def outputs(model, inputs):
    with torch.no_grad():
        out = model(**inputs).logits
    return out if out.dim() == 2 else out[inputs["attention_mask"].bool()]


def randomise(model, seed=1):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=g) * 0.3)


@pytest.mark.parametrize("case,kind", CASES)
def test_peft_loads_bertkit_lora_with_the_same_outputs(case, kind, tmp_path):
    theirs, ours = base_pair(case, kind, tmp_path / "base")
    apply_peft(ours, PeftConfig("lora", r=4, lora_alpha=8, target_modules=["query", "value", "intermediate.dense"]))
    randomise(ours)
    save_adapter(ours.eval(), tmp_path / "adapter", tmp_path / "base")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = peft.PeftModel.from_pretrained(theirs, tmp_path / "adapter").eval()
    x = batch()
    assert (outputs(loaded, x) - outputs(ours, x)).abs().max() <= 1e-5
    assert (outputs(loaded, x) - outputs(base_pair(case, kind, tmp_path / "again")[1], x)).abs().max() > 1e-2


@pytest.mark.parametrize("case,kind", CASES)
def test_bertkit_loads_lora_that_peft_wrote(case, kind, tmp_path):
    theirs, _ = base_pair(case, kind, tmp_path / "base")
    targets = ["q_lin", "v_lin"] if case == "distilbert" else ["query", "value"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tuned = peft.get_peft_model(copy.deepcopy(theirs), peft.LoraConfig(
            task_type=TASK_TYPE[kind], r=4, lora_alpha=8, target_modules=targets))
        randomise(tuned)
        tuned.save_pretrained(tmp_path / "adapter")
    ours = load_task_adapter(tmp_path / "adapter", base_model=tmp_path / "base") if kind == "seq" else None
    if ours is None:  # a token classifier: bertkit needs the task model, peft's folder does not say which
        from bertkit.peft.folders import load_adapter

        ours = load_adapter(BertForTokenClassification.from_pretrained(tmp_path / "base"), tmp_path / "adapter")
    x = batch()
    assert (outputs(tuned.eval(), x) - outputs(ours, x)).abs().max() <= 1e-5


PROMPT_METHODS = {"prompt": lambda n: peft.PromptTuningConfig(task_type="SEQ_CLS", num_virtual_tokens=n),
                  "ptuning": lambda n: peft.PromptEncoderConfig(task_type="SEQ_CLS", num_virtual_tokens=n,
                                                                encoder_hidden_size=16)}


@pytest.mark.parametrize("method", list(PROMPT_METHODS))
def test_prompt_adapters_match_peft_both_ways(method, tmp_path):
    theirs, ours = base_pair("bert", "seq", tmp_path / "base")
    apply_peft(ours, PeftConfig(method, num_virtual_tokens=4, encoder_hidden_size=16))
    randomise(ours)
    save_adapter(ours.eval(), tmp_path / "ours", tmp_path / "base")
    x = batch() | {"token_type_ids": torch.ones(3, 9, dtype=torch.long)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = peft.PeftModel.from_pretrained(copy.deepcopy(theirs), tmp_path / "ours").eval()
        assert (outputs(loaded, x) - outputs(ours, x)).abs().max() <= 1e-5
        tuned = peft.get_peft_model(copy.deepcopy(theirs), PROMPT_METHODS[method](4))
        randomise(tuned, seed=2)
        tuned.save_pretrained(tmp_path / "theirs")
        expected = outputs(peft.PeftModel.from_pretrained(copy.deepcopy(theirs), tmp_path / "theirs").eval(), x)
    mine = load_task_adapter(tmp_path / "theirs", base_model=tmp_path / "base")
    assert (expected - outputs(mine, x)).abs().max() <= 1e-5


@pytest.mark.parametrize("method", ["prefix", "ptuning_v2"])
def test_prefix_folders_are_peft_configs_and_round_trip(method, tmp_path):
    """peft 0.21 refuses prefix tuning on transformers 5's BERT ("does not support past key values"), so the
    outputs cannot be compared with it: the folder is checked to be a peft PrefixTuningConfig of the right shape,
    and bertkit's model from the folder (the table, no MLP) to equal the trained one."""
    _, ours = base_pair("bert", "seq", tmp_path / "base")
    apply_peft(ours, PeftConfig(method, num_virtual_tokens=4, encoder_hidden_size=16))
    randomise(ours)
    save_adapter(ours.eval(), tmp_path / "ours", tmp_path / "base")
    config = peft.PeftConfig.from_pretrained(tmp_path / "ours")
    assert isinstance(config, peft.PrefixTuningConfig) and config.prefix_projection == (method == "prefix")
    assert (config.num_virtual_tokens, config.num_layers, config.token_dim) == (4, 3, 36)
    x = batch()
    mine = load_task_adapter(tmp_path / "ours")
    assert mine.peft_prefix.transform is None
    assert (outputs(mine, x) - outputs(ours, x)).abs().max() <= 1e-6


def test_lora_merges_into_a_plain_folder_that_transformers_loads(tmp_path):
    from bertkit.cli import main

    theirs, ours = base_pair("bert", "seq", tmp_path / "base")
    apply_peft(ours, PeftConfig("lora", r=4, lora_alpha=8, target_modules=["query", "value", "dense"]))
    randomise(ours)
    save_adapter(ours.eval(), tmp_path / "adapter", tmp_path / "base")
    BertTokenizerFast = transformers.BertTokenizerFast  # a vocabulary for the merged folder's tokenizer
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(98)]))
    BertTokenizerFast(vocab_file=str(vocab)).save_pretrained(tmp_path / "adapter")
    assert main(["merge-adapter", str(tmp_path / "adapter"), str(tmp_path / "merged")]) == 0
    assert not (tmp_path / "merged" / "adapter_config.json").exists()
    plain = transformers.AutoModelForSequenceClassification.from_pretrained(tmp_path / "merged").eval()
    x = batch()
    assert (outputs(plain, x) - outputs(ours, x)).abs().max() <= 1e-5
    assert (outputs(plain, x) - outputs(theirs, x)).abs().max() > 1e-2
    # a second merge into the same folder is refused by name, as a training command refuses an earlier run
    before = (tmp_path / "merged" / "model.safetensors").read_bytes()
    assert main(["merge-adapter", str(tmp_path / "adapter"), str(tmp_path / "merged")]) == 2
    assert (tmp_path / "merged" / "model.safetensors").read_bytes() == before
    (tmp_path / "merged" / "pytorch_model.bin").write_bytes(b"an earlier model's weights")
    assert main(["merge-adapter", str(tmp_path / "adapter"), str(tmp_path / "merged"), "--overwrite"]) == 0
    assert not (tmp_path / "merged" / "pytorch_model.bin").exists()


def test_an_adapter_for_another_base_model_is_refused_by_name(tmp_path):
    _, ours = base_pair("bert", "seq", tmp_path / "base")
    apply_peft(ours, PeftConfig("lora", r=4))
    save_adapter(ours, tmp_path / "adapter", tmp_path / "base")
    config = hf_config("bert")
    config.hidden_size, config.num_attention_heads = 48, 4
    transformers.BertForSequenceClassification(config).save_pretrained(tmp_path / "wider")
    with pytest.raises(ValueError, match="made for another base model: hidden_size 36 .the base model has 48"):
        load_task_adapter(tmp_path / "adapter", base_model=tmp_path / "wider")
    config = hf_config("albert-one-group")
    transformers.AlbertForSequenceClassification(config).save_pretrained(tmp_path / "albert")
    with pytest.raises(ValueError, match="model_type 'bert' .the base model has 'albert'"):
        load_task_adapter(tmp_path / "adapter", base_model=tmp_path / "albert")
    (tmp_path / "adapter" / "adapter_config.json").write_text(
        (tmp_path / "adapter" / "adapter_config.json").read_text().replace(str((tmp_path / "base").resolve()),
                                                                          str(tmp_path / "gone")))
    with pytest.raises(FileNotFoundError, match="base model .*gone is not a model folder here"):
        load_task_adapter(tmp_path / "adapter")
