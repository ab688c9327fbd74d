"""Devices: ``device: auto | cpu | cuda | cuda:N`` resolved with clear errors, the DDP backend that follows it, GPU RNG
in checkpoints, the option in every command, and forward passes that create every tensor on their input's device.

CI has no GPU: CUDA's presence is simulated by monkeypatching ``torch.cuda`` where a test needs it; the real GPU run
is ``bench/gpu_check.py``.
"""

import dataclasses
import json
import logging
import os
import random
import re

import numpy as np
import pytest
import torch
from finetuning_fixtures import sentiment_examples, tiny_dir  # noqa: F401
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from bertkit.cli import main
from bertkit.config import BertConfig
from bertkit.encoding import SentenceEncoder
from bertkit.finetuning.config import FinetuneConfig
from bertkit.finetuning.models import (
    BertForQuestionAnswering,
    BertForSequenceClassification,
    BertForTokenClassification,
    TaskConfig,
)
from bertkit.finetuning.train import finetune
from bertkit.peft import apply_peft
from bertkit.peft.config import PeftConfig
from bertkit.pretraining import PretrainingConfig, run_pretraining
from bertkit.pretraining.objective import pretraining_step
from bertkit.pretraining.run import PRETRAINING_CLASSES
from bertkit.serving.settings import ServerSettings
from bertkit.serving.worker import worker_device
from bertkit.tokenization.batch import BatchEncoding
from bertkit.training import distributed, state
from bertkit.training.device import autocast_context, ddp_backend, move_batch, resolve_device

NO_CUDA = "torch.cuda.is_available() is False"


@pytest.fixture
def no_cuda(monkeypatch):
    """A machine without a GPU (also on one that has one)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def fake_gpus(monkeypatch, count: int) -> None:
    """A machine with ``count`` GPUs, as far as device selection asks."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
    for name in ("LOCAL_RANK", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)


# -- resolving a spec --------------------------------------------------------------------------------------------
def test_cpu_and_auto_without_a_gpu_resolve_to_the_cpu(no_cuda):
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.parametrize("spec", ["gpu", "cuda:x", "cpu:0", "auto:1", "mps", "", "cuda:-1", "cuda0"])
def test_unknown_spec_is_one_clear_error(spec):
    with pytest.raises(ValueError, match=re.escape(f"device must be auto, cpu, cuda or cuda:N, got {spec!r}")):
        resolve_device(spec)


@pytest.mark.parametrize("spec", ["cuda", "cuda:0", "cuda:3"])
def test_cuda_without_a_gpu_is_refused(no_cuda, spec):
    with pytest.raises(ValueError, match=re.escape(f"device: {spec} requested but {NO_CUDA}")):
        resolve_device(spec)


def test_gpus_are_counted_and_each_torchrun_rank_takes_its_own(monkeypatch):
    fake_gpus(monkeypatch, 1)
    assert resolve_device("auto") == resolve_device("cuda") == torch.device("cuda", 0)
    assert resolve_device("cuda:0") == torch.device("cuda", 0)
    with pytest.raises(ValueError, match=r"device: cuda:3 but only 1 GPU visible \(cuda:0 … cuda:0\)"):
        resolve_device("cuda:3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    with pytest.raises(ValueError, match=r"LOCAL_RANK 1 but only 1 GPU visible: launch one process per GPU "
                                         r"\(torchrun --nproc-per-node 1\)"):
        resolve_device("auto")
    fake_gpus(monkeypatch, 2)
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert resolve_device("auto") == resolve_device("cuda") == torch.device("cuda", 1)
    assert resolve_device(torch.device("cuda", 1)) == torch.device("cuda", 1)  # the rank's own, chosen before
    with pytest.raises(ValueError, match="would put all 2 torchrun processes of this machine on one GPU"):
        resolve_device("cuda:0")
    assert resolve_device("cpu") == torch.device("cpu")  # the CPU on a GPU machine, when asked for


# -- DDP backend -------------------------------------------------------------------------------------------------
def test_ddp_backend_follows_the_device_not_the_machine(monkeypatch):
    assert ddp_backend(torch.device("cpu")) == "gloo"
    assert ddp_backend(torch.device("cuda", 1)) == "nccl"
    chosen, current = [], []
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: False)
    monkeypatch.setattr(torch.distributed, "init_process_group", lambda backend: chosen.append(backend))
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: current.append(device))
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    fake_gpus(monkeypatch, 2)  # a GPU machine: the old rule took NCCL here even for a CPU run
    distributed.init(torch.device("cpu"))
    distributed.init(torch.device("cuda", 1))
    monkeypatch.setenv("LOCAL_RANK", "1")
    distributed.init()  # auto: this rank's GPU
    assert chosen == ["gloo", "nccl", "nccl"]
    assert current == [torch.device("cuda", 1), torch.device("cuda", 1)]  # NCCL's current device is the rank's
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    distributed.init()
    assert chosen[-1] == "gloo"


# -- batches and autocast ----------------------------------------------------------------------------------------
def test_move_batch_moves_every_tensor_and_keeps_the_rest():
    t = torch.arange(6).view(2, 3)
    batch = BatchEncoding({"input_ids": t, "nested": [t, (t, 3)], "name": "x", "n": 4})
    moved = move_batch(batch, torch.device("meta"))
    assert type(moved) is BatchEncoding and moved["name"] == "x" and moved["n"] == 4
    tensors = [moved["input_ids"], moved["nested"][0], moved["nested"][1][0]]
    assert all(x.device.type == "meta" and x.shape == (2, 3) and x.dtype == torch.long for x in tensors)
    assert moved["nested"][1][1] == 3 and batch["input_ids"].device.type == "cpu"  # the original is untouched


def test_autocast_context_runs_bf16_only_when_asked():
    a, b = torch.randn(4, 8), torch.randn(8, 2)
    with autocast_context(torch.device("cpu"), bf16=True):
        assert (a @ b).dtype == torch.bfloat16
    with autocast_context(torch.device("cpu"), bf16=False):
        assert (a @ b).dtype == torch.float32


# -- RNG state in checkpoints ------------------------------------------------------------------------------------
def round_trip(values, tmp_path):
    """Through the checkpoint file format (torch.save, then the weights_only loader)."""
    torch.save({"step": 1, "rng": [values]}, tmp_path / state.STATE_FILE)
    return state.load_trainer_state(tmp_path)["rng"][0]


def test_cpu_checkpoint_rng_has_no_gpu_state_and_resumes_exactly(tmp_path):
    torch.manual_seed(5)
    random.seed(5)
    saved = state.rng_states(torch.device("cpu"))
    assert set(saved) == {"torch", "python"}  # a CPU run never initialises CUDA for its checkpoints
    expected = (torch.rand(3), random.random())
    state.restore_rng_states(round_trip(saved, tmp_path), torch.device("cpu"))
    drawn = (torch.rand(3), random.random())
    assert torch.equal(drawn[0], expected[0]) and drawn[1] == expected[1]


def test_gpu_rng_is_saved_and_restored_per_device(monkeypatch, tmp_path, caplog):
    generators = [torch.arange(16, dtype=torch.uint8), torch.arange(16, 32, dtype=torch.uint8)]
    restored = {}
    fake_gpus(monkeypatch, 2)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: [g.clone() for g in generators])
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda values, index: restored.__setitem__(index, values))
    saved = round_trip(state.rng_states(torch.device("cuda", 0)), tmp_path)
    assert len(saved["cuda"]) == 2
    state.restore_rng_states(saved, torch.device("cuda", 0))
    assert sorted(restored) == [0, 1] and all(torch.equal(restored[i], generators[i]) for i in (0, 1))
    assert not caplog.records
    restored.clear()
    with caplog.at_level(logging.WARNING):
        fake_gpus(monkeypatch, 1)  # resumed on a machine with fewer GPUs: the ones it has
        state.restore_rng_states(saved, torch.device("cuda", 0))
        assert list(restored) == [0] and "holds the random state of 2 GPU(s), this process sees 1" in caplog.text
        restored.clear()
        state.restore_rng_states(saved, torch.device("cpu"))  # a GPU checkpoint resumed on the CPU
        assert not restored and "holds GPU random state but this run is on the CPU" in caplog.text
        cpu_saved = {"torch": torch.get_rng_state(), "python": random.getstate()}
        state.restore_rng_states(cpu_saved, torch.device("cuda", 0))  # and the other way round
        assert not restored and "holds no GPU random state" in caplog.text


# -- the option in each command ----------------------------------------------------------------------------------
def test_device_option_is_checked_when_a_config_is_read():
    assert FinetuneConfig(device="CPU").device == "cpu" and PretrainingConfig(device="cuda:1").device == "cuda:1"
    for config in (FinetuneConfig, PretrainingConfig):
        with pytest.raises(ValueError, match="device must be auto, cpu, cuda or cuda:N, got 'gpu'"):
            config(device="gpu")


def test_finetune_runs_with_device_cpu_and_refuses_cuda_here(no_cuda, tmp_path, tiny_dir, capsys):  # noqa: F811
    rows = {"train": sentiment_examples(32, 0), "dev": sentiment_examples(8, 1)}
    for split, examples in rows.items():
        (tmp_path / f"{split}.jsonl").write_text("".join(json.dumps(e) + "\n" for e in examples))
    options = {"model": tiny_dir, "train_file": tmp_path / "train.jsonl", "dev_file": tmp_path / "dev.jsonl",
               "epochs": 1, "max_length": 32, "threads": 1, "progress": "false", "device": "cpu"}
    (tmp_path / "run.yaml").write_text("".join(f"{k}: {v}\n" for k, v in options.items()))
    assert main(["finetune", "--config", str(tmp_path / "run.yaml"), f"output_dir={tmp_path / 'o'}"]) == 0
    assert json.loads((tmp_path / "o" / "results.json").read_text())["config"]["device"] == "cpu"
    (tmp_path / "in.txt").write_text("the film was superb\n")
    capsys.readouterr()
    assert main(["predict", "--model", str(tmp_path / "o" / "best"), str(tmp_path / "in.txt"), "--device", "cpu"]) == 0
    assert json.loads(capsys.readouterr().out)["label"] in ("pos", "neg")
    assert main(["predict", "--model", str(tmp_path / "o" / "best"), str(tmp_path / "in.txt"), "--device", "cuda"]) == 2
    assert NO_CUDA in capsys.readouterr().err
    assert main(["finetune", "--config", str(tmp_path / "run.yaml"), "--device", "cuda",
                 f"output_dir={tmp_path / 'c'}"]) == 2
    assert f"device: cuda requested but {NO_CUDA}" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()  # refused before any work
    with pytest.raises(ValueError, match=re.escape(NO_CUDA)):
        finetune(FinetuneConfig(**(options | {"output_dir": str(tmp_path / "d"), "device": "cuda:0"})))


def test_pretrain_refuses_cuda_here_before_reading_the_corpus(no_cuda, tmp_path, minilm_dir, capsys):
    args = ["pretrain", "--corpus", str(tmp_path / "absent.txt"), "--tokenizer", str(minilm_dir), "--device",
            "cuda", "--output-dir", str(tmp_path / "out")]
    assert main(args) == 2
    assert f"device: cuda requested but {NO_CUDA}" in capsys.readouterr().err
    with pytest.raises(ValueError, match=re.escape(NO_CUDA)):
        run_pretraining(PretrainingConfig(corpus=[str(tmp_path / "absent.txt")], device="cuda",
                                          output_dir=str(tmp_path / "out")))


def test_encode_with_device_cpu(no_cuda, minilm_dir, tmp_path, capsys):
    texts = ["First do it", "then do it right"]
    assert main(["encode", *texts, "--device", "cpu", "--model", str(minilm_dir), "-o", str(tmp_path / "v.npy")]) == 0
    encoder = SentenceEncoder.from_pretrained(minilm_dir, device="cpu")
    assert encoder.device == torch.device("cpu")
    # the library's CPU path (equal to sentence-transformers: tests/test_encoding.py)
    np.testing.assert_array_equal(np.load(tmp_path / "v.npy"), encoder.encode(texts))
    capsys.readouterr()
    assert main(["encode", "x", "--device", "cuda", "--model", str(minilm_dir)]) == 2
    assert f"device: cuda requested but {NO_CUDA}" in capsys.readouterr().err
    assert main(["encode", "x", "--device", "tpu", "--model", str(minilm_dir)]) == 2
    assert "device must be auto, cpu, cuda or cuda:N, got 'tpu'" in capsys.readouterr().err


def test_serve_device_flag_with_cpu_as_its_alias(no_cuda, minilm_dir, monkeypatch):
    assert ServerSettings(minilm_dir).checked().device == "auto"  # resolved by each worker
    settings = ServerSettings(minilm_dir, cpu=True).checked()
    assert settings.device == "cpu" and settings.cpu
    with pytest.raises(ValueError, match=re.escape(NO_CUDA)):
        ServerSettings(minilm_dir, device="cuda").checked()
    with pytest.raises(ValueError, match="--cpu and --device cuda:1 contradict each other"):
        ServerSettings(minilm_dir, device="cuda:1", cpu=True).checked()
    fake_gpus(monkeypatch, 2)
    checked = ServerSettings(minilm_dir).checked()
    assert checked.device == "auto" and not checked.cpu
    # bert-as-service's device map: workers spread over the GPUs; a named device or the CPU is taken as given
    assert [worker_device("auto", i) for i in range(3)] == [torch.device("cuda", i) for i in (0, 1, 0)]
    assert worker_device("cuda", 3) == torch.device("cuda", 1) and worker_device("cuda:0", 3) == torch.device("cuda", 0)
    assert worker_device("cpu", 1) == torch.device("cpu")


# -- tensors created inside forward follow the inputs ------------------------------------------------------------
class DefaultDeviceLeaks(TorchDispatchMode):
    """Records every op that produced a tensor on the default device (set to ``meta`` around a CPU forward): a
    tensor created without ``device=`` from the inputs, which on a GPU would land on the CPU."""

    def __init__(self):
        super().__init__()
        self.ops: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if any(isinstance(t, torch.Tensor) and t.device.type == "meta" for t in tree_leaves(out)):
            self.ops.append(str(func))
        return out


def leaks_of(run) -> list[str]:
    """The ops of ``run()`` that created tensors away from its inputs' device (or the error that mixing caused)."""
    leaks = DefaultDeviceLeaks()
    try:
        with torch.device("meta"), leaks:
            run()
    except RuntimeError as error:  # a leaked tensor met a CPU one
        return leaks.ops + [str(error)]
    return leaks.ops


def test_the_leak_detector_catches_a_tensor_created_without_device():
    x = torch.randn(2, 3)
    assert leaks_of(lambda: x + torch.zeros(x.shape))
    assert leaks_of(lambda: x[torch.arange(2)])
    assert not leaks_of(lambda: x + torch.zeros(x.shape, device=x.device))


TINY = dict(vocab_size=99, hidden_size=32, num_attention_heads=2, intermediate_size=64, num_hidden_layers=2)


@pytest.mark.parametrize("model_type, position", [("bert", "absolute"), ("bert", "relative_bias"),
                                                  ("roberta", "sinusoidal"), ("albert", "none"),
                                                  ("electra", "absolute"), ("distilbert", "absolute")])
def test_pretraining_forward_and_backward_create_tensors_on_the_inputs_device(model_type, position):
    # dropout 0: the CPU's own dropout kernel draws its bits on the CPU by design (it runs only for CPU tensors)
    config = BertConfig.preset("tiny", model_type=model_type, position_embedding_type=position,
                               hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                               classifier_dropout_prob=0.0, **TINY)
    torch.manual_seed(0)
    model = PRETRAINING_CLASSES[model_type](config).train()  # what `bertkit pretrain` trains
    ids = torch.randint(5, 99, (2, 9))
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    labels = torch.full_like(ids, -100)
    labels[:, 3] = 7
    pair = model_type in ("bert", "albert")
    batch = {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids), "labels": labels,
             "next_sentence_label": torch.tensor([0, 1])}

    def step():
        loss, _ = pretraining_step(model, batch, pair_task=pair)
        loss.backward()
        model.eval()
        model(ids, attention_mask=mask, output_hidden_states=True)

    assert leaks_of(step) == []


def test_task_heads_create_tensors_on_the_inputs_device():
    base = BertConfig.preset("tiny", **TINY)
    shape = {f.name: getattr(base, f.name) for f in dataclasses.fields(BertConfig)}
    config = TaskConfig(**shape, id2label={0: "a", 1: "b", 2: "c"}, label2id={"a": 0, "b": 1, "c": 2})
    ids = torch.randint(5, 99, (2, 9))
    mask = torch.ones_like(ids)
    runs = {BertForSequenceClassification: {"labels": torch.tensor([0, 2])},
            BertForTokenClassification: {"labels": torch.randint(0, 3, (2, 9))},
            BertForQuestionAnswering: {"start_positions": torch.tensor([1, 2]), "end_positions": torch.tensor([3, 4])}}
    for model_class, targets in runs.items():
        model = model_class(config).eval()
        assert leaks_of(lambda m=model, t=targets: m(input_ids=ids, attention_mask=mask, **t).loss.backward()) == []


def test_peft_methods_create_tensors_on_the_inputs_device():
    base = BertConfig.preset("tiny", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, **TINY)
    shape = {f.name: getattr(base, f.name) for f in dataclasses.fields(BertConfig)}
    ids = torch.randint(5, 99, (2, 9))
    mask, labels = torch.ones_like(ids), torch.tensor([0, 1])
    found = {}
    for method in ("lora", "houlsby", "pfeiffer", "prefix", "ptuning_v2", "prompt", "ptuning", "bitfit"):
        config = TaskConfig(**shape, id2label={0: "a", 1: "b"}, label2id={"a": 0, "b": 1}, classifier_dropout=0.0)
        model = BertForSequenceClassification(config)
        apply_peft(model, PeftConfig(method, num_virtual_tokens=4, lora_dropout=0.0))
        found[method] = leaks_of(lambda m=model: m(input_ids=ids, attention_mask=mask, labels=labels).loss.backward())
    assert found == dict.fromkeys(found, [])


def test_no_hard_coded_cuda_device_in_the_package():
    """Devices come from the run's option or the inputs, never from a literal in the code."""
    root = os.path.join(os.path.dirname(__file__), "..", "bertkit")
    found = []
    for folder, _, names in os.walk(root):
        for name in (n for n in names if n.endswith(".py")):
            text = open(os.path.join(folder, name), encoding="utf-8").read()
            found += [f"{name}: {needle}" for needle in ('"cuda:0"', "'cuda:0'", ".cuda()") if needle in text]
    assert found == []
