"""Everything device-related that needs a real GPU, in one go, with a report: run it on a machine with CUDA.

    .venv/bin/python bench/gpu_check.py [--device cuda] [--out DIR] [--texts 2000]      (or: make gpu-check)

Checks (tiny models over a tiny vocabulary, built here: no downloads; the encode check uses the installed MiniLM
when there is one):
  environment   torch, the GPU, bf16 support
  autocast      a matmul and a BERT forward under bf16 autocast on the GPU (dtype, distance to fp32)
  sdpa          which attention kernel the GPU runs for bertkit's attention in bf16 (flash / memory-efficient / math)
  finetune      a few fine-tuning steps with device: cuda, bf16 (the weights and batches on the GPU: memory is used)
  pretrain      a few pretraining steps with device: cuda, bf16, checkpoints with the GPU's RNG state
  resume        exact resumption on the GPU: steps 4-6 resumed from step 3's checkpoint against an uninterrupted run
                (and an uninterrupted rerun, to tell kernel nondeterminism from a lost RNG state)
  ddp           torchrun with one rank per GPU (NCCL), pretraining a few steps
  encode        sentence embeddings on the GPU against the CPU (distance, and speed ratio in this run)
Exit status 0 when every check passes; on a machine without CUDA it says so and exits 0 without checking anything.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bertkit.config import BertConfig  # noqa: E402
from bertkit.model import BertModel  # noqa: E402
from bertkit.tokenization import BertTokenizer  # noqa: E402
from bertkit.training.device import autocast_context, resolve_device  # noqa: E402
from bertkit.training.metrics import read_metrics  # noqa: E402

WORDS = ("the film was a plot and really movie it is quite story cast of good great fun superb lovely bad awful "
         "dull boring weak new york paris rome oslo alice bob carol visited in met lives who where").split()
POSITIVE, NEGATIVE = ["good", "great", "fun", "superb", "lovely"], ["bad", "awful", "dull", "boring", "weak"]
REPORT: list[tuple[str, bool, str]] = []


def check(name: str):
    """Run one check; record PASS / FAIL with its details (a failure does not stop the others)."""
    def wrap(fn):
        def run(*args, **kwargs):
            started = time.perf_counter()
            try:
                ok, details = fn(*args, **kwargs)
            except Exception as error:  # a check that crashes is a failure with its traceback's last lines
                ok, details = False, f"{type(error).__name__}: {error}\n" + "".join(traceback.format_exc()[-1500:])
            REPORT.append((name, ok, f"{details} [{time.perf_counter() - started:.1f} s]"))
            print(f"{'PASS' if ok else 'FAIL'} {name}: {details}", flush=True)
            return ok
        return run
    return wrap


def tiny_model_dir(root: Path) -> Path:
    """A random 2-layer BERT (hidden 64) over a tiny vocabulary, saved with its tokenizer."""
    folder = root / "tiny"
    if not folder.exists():
        vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", *WORDS]
        tokenizer = BertTokenizer(vocab={t: i for i, t in enumerate(vocab)})
        torch.manual_seed(0)
        config = BertConfig.preset("tiny", vocab_size=len(vocab), hidden_size=64, num_attention_heads=4,
                                   intermediate_size=128, max_position_embeddings=128)
        BertModel(config).save_pretrained(folder, tokenizer=tokenizer)
    return folder


def sentiment_rows(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        positive = rng.random() < 0.5
        words = rng.choices(WORDS[:12], k=rng.randint(4, 12))
        words.insert(rng.randrange(len(words) + 1), rng.choice(POSITIVE if positive else NEGATIVE))
        rows.append({"text": " ".join(words), "label": "pos" if positive else "neg"})
    return rows


def corpus(root: Path) -> Path:
    """Documents of random sentences (a sentence a line, blank lines between documents)."""
    path = root / "corpus.txt"
    rng = random.Random(0)
    documents = ["\n".join(" ".join(rng.choices(WORDS, k=rng.randint(5, 14))) + " ." for _ in range(6))
                 for _ in range(120)]
    path.write_text("\n\n".join(documents) + "\n", encoding="utf-8")
    return path


@check("environment")
def environment(device: torch.device) -> tuple[bool, str]:
    props = torch.cuda.get_device_properties(device)
    return True, (f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.device_count()} GPU(s); "
                  f"{device}: {props.name}, {props.total_memory / 2**30:.0f} GiB, capability {props.major}."
                  f"{props.minor}, bf16 {torch.cuda.is_bf16_supported()}")


@check("autocast")
def autocast(device: torch.device, root: Path) -> tuple[bool, str]:
    a, b = torch.randn(64, 64, device=device), torch.randn(64, 64, device=device)
    with autocast_context(device, bf16=True):
        dtype = (a @ b).dtype
    model = BertModel.from_pretrained(tiny_model_dir(root)).to(device).eval()
    ids = torch.randint(6, model.config.vocab_size, (8, 48), device=device)
    with torch.no_grad():
        reference = model(ids).last_hidden_state
        with autocast_context(device, bf16=True):
            low = model(ids).last_hidden_state
    distance = (low.float() - reference).abs().max().item()
    ok = dtype == torch.bfloat16 and low.device == device and distance < 0.1
    return ok, f"matmul under autocast: {dtype}; BERT forward bf16 vs fp32: max |Δ| {distance:.2e} (< 0.1)"


@check("sdpa")
def sdpa_kernel(device: torch.device, root: Path) -> tuple[bool, str]:
    from torch.profiler import ProfilerActivity, profile

    model = BertModel.from_pretrained(tiny_model_dir(root)).to(device).eval()
    ids = torch.randint(6, model.config.vocab_size, (8, 128), device=device)
    with torch.no_grad(), autocast_context(device, bf16=True):
        model(ids)  # warm-up
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            model(ids, attention_mask=torch.ones_like(ids))
            torch.cuda.synchronize(device)
    names = {e.key for e in prof.key_averages()}
    kinds = {kind for kind, marks in {"flash": ("flash",), "memory-efficient": ("fmha", "efficient", "cutlass"),
                                      "cudnn": ("cudnn",)}.items()
             if any(m in n.lower() for n in names for m in marks)}
    attention = sorted(n for n in names if any(m in n.lower() for m in ("flash", "fmha", "efficient", "attention",
                                                                        "cudnn", "sdpa")))[:4]
    return bool(kinds), f"fused attention kernel(s): {', '.join(sorted(kinds)) or 'none (math path)'}; {attention}"


@check("finetune")
def finetune_steps(device: torch.device, root: Path) -> tuple[bool, str]:
    from bertkit.finetuning.config import FinetuneConfig
    from bertkit.finetuning.train import finetune

    data = root / "data"
    data.mkdir(exist_ok=True)
    for split, (n, seed) in {"train": (320, 0), "dev": (80, 1), "test": (80, 2)}.items():
        (data / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in sentiment_rows(n, seed)))
    torch.cuda.reset_peak_memory_stats(device)
    config = FinetuneConfig(model=str(tiny_model_dir(root)), train_file=str(data / "train.jsonl"),
                            dev_file=str(data / "dev.jsonl"), test_file=str(data / "test.jsonl"),
                            output_dir=str(root / "finetune"), device=str(device), bf16=True, max_length=32,
                            batch_size=16, epochs=3, learning_rate=3e-3, head_lr_scale=1.0, progress=False,
                            overwrite=True)
    result = finetune(config)
    peak = torch.cuda.max_memory_allocated(device) / 2**20
    ok = peak > 0 and result.dev["accuracy"] >= 0.9
    return ok, (f"{result.steps} steps bf16 on {device}: dev accuracy {result.dev['accuracy']:.3f}, test "
                f"{result.test['accuracy']:.3f} (≥ 0.9 expected), {result.tokens_per_second:,.0f} tokens/s, GPU "
                f"memory peak {peak:.1f} MiB")


def pretrain_config(root: Path, device: torch.device, out: str, **extra):
    from bertkit.pretraining import PretrainingConfig

    tiny = tiny_model_dir(root)
    values = dict(corpus=[str(corpus(root))], tokenizer=str(tiny), model_preset="tiny", max_seq_length=64,
                  batch_size=8, max_steps=6, warmup_steps=2, logging_steps=1, save_steps=3, save_total_limit=3,
                  eval_fraction=0, bf16=True, device=str(device), progress=False, output_dir=str(root / out),
                  overwrite=True)
    return PretrainingConfig(**(values | extra))


def train_losses(folder: Path) -> list[float]:
    return [r["loss"] for r in read_metrics(folder / "metrics.jsonl") if r["split"] == "train"]


@check("pretrain")
def pretrain_steps(device: torch.device, root: Path) -> tuple[bool, str]:
    from bertkit.pretraining import run_pretraining
    from bertkit.training.state import load_trainer_state

    torch.cuda.reset_peak_memory_stats(device)
    summary = run_pretraining(pretrain_config(root, device, "pretrain"))
    peak = torch.cuda.max_memory_allocated(device) / 2**20
    rng = load_trainer_state(root / "pretrain" / "checkpoints" / "step-0000006")["rng"][0]
    losses = train_losses(root / "pretrain")
    ok = summary["steps"] == 6 and summary["device"] == str(device) and peak > 0 and "cuda" in rng
    return ok, (f"6 steps bf16 on {summary['device']}: loss {losses[0]:.3f} → {losses[-1]:.3f}, GPU memory peak "
                f"{peak:.1f} MiB, checkpoint RNG keys {sorted(rng)} ({len(rng.get('cuda', []))} GPU generator(s))")


@check("resume")
def exact_resume(device: torch.device, root: Path) -> tuple[bool, str]:
    from bertkit.pretraining import run_pretraining
    from bertkit.training.state import LATEST

    full, again, part = root / "pretrain", root / "rerun", root / "resumed"
    if not (full / "metrics.jsonl").exists():
        run_pretraining(pretrain_config(root, device, "pretrain"))
    run_pretraining(pretrain_config(root, device, "rerun"))  # the same run again: is the GPU deterministic here?
    shutil.rmtree(part, ignore_errors=True)
    shutil.copytree(full, part)  # "killed" after step 3: its latest checkpoint is step 3's
    shutil.rmtree(part / "checkpoints" / "step-0000006")
    (part / "checkpoints" / LATEST).write_text("step-0000003\n")
    run_pretraining(pretrain_config(root, device, "resumed"), resume=True)
    reference, rerun, resumed = train_losses(full), train_losses(again), train_losses(part)
    rerun_exact, resume_exact = rerun == reference, resumed == reference
    weights = [read_weights(f / "model") for f in (full, part)]
    same_weights = all(torch.equal(a, weights[1][k]) for k, a in weights[0].items())
    drift = max(abs(a - b) for a, b in zip(reference, resumed, strict=True))
    if resume_exact and same_weights:
        verdict = "bit for bit (losses and final weights)"
    elif not rerun_exact:
        verdict = f"not bitwise, but neither is an uninterrupted rerun on this GPU (max loss drift {drift:.2e})"
    else:
        verdict = f"DIFFERS while an uninterrupted rerun is exact: state lost on resume (drift {drift:.2e})"
    ok = (resume_exact and same_weights) or (not rerun_exact and drift < 1e-2)
    return ok, f"steps 4-6 resumed from step 3: {verdict}; losses {[round(x, 5) for x in resumed[3:]]}"


def read_weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


@check("ddp")
def ddp_run(device: torch.device, root: Path) -> tuple[bool, str]:
    ranks = torch.cuda.device_count()
    out = root / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(ranks), "--master_port",
               str(29500 + os.getpid() % 1000), "-m", "bertkit", "pretrain", "--corpus", str(corpus(root)),
               "--tokenizer", str(tiny_model_dir(root)), "--model-preset", "tiny", "--max-seq-length", "64",
               "--batch-size", "8", "--max-steps", "4", "--progress", "false", "--eval-fraction", "0",
               "--output-dir", str(out), "--device", "cuda", "--save-steps", "2", "--overwrite", "true"]
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    if result.returncode != 0:
        return False, f"torchrun exited {result.returncode}: {result.stderr[-1500:]}"
    summary = json.loads((out / "summary.json").read_text())
    agree = len(set(summary["rank_checksums"])) == 1
    ok = summary["ddp_backend"] == "nccl" and summary["ranks"] == ranks and agree
    return ok, (f"{ranks} rank(s) on {ranks} GPU(s): backend {summary['ddp_backend']}, {summary['steps']} steps, "
                f"rank weights equal: {agree}")


@check("encode")
def encode(device: torch.device, root: Path, count: int) -> tuple[bool, str]:
    from bertkit.encoding import SentenceEncoder

    try:
        from bertkit.assets import default_model_dir

        folder, name = default_model_dir(), "all-MiniLM-L6-v2"
    except Exception:  # the weights package is not installed: the tiny model shows the mechanics
        folder, name = tiny_model_dir(root), "the tiny random model"
    rng = random.Random(0)
    texts = [" ".join(rng.choices(WORDS, k=rng.randint(4, 40))) for _ in range(count)]
    on_cpu = SentenceEncoder.from_pretrained(folder, device="cpu")
    on_gpu = SentenceEncoder.from_pretrained(folder, device=str(device))
    on_gpu.encode(texts[:64])  # warm-up (kernels, allocator)
    seconds = {}
    vectors = {}
    for label, encoder in (("cpu", on_cpu), ("gpu", on_gpu)):
        started = time.perf_counter()
        vectors[label] = encoder.encode(texts, batch_size=128)
        seconds[label] = time.perf_counter() - started
    distance = float(abs(vectors["cpu"] - vectors["gpu"]).max())
    ok = on_gpu.device == device and distance < 1e-3
    return ok, (f"{name}, {count} texts: GPU vs CPU max |Δ| {distance:.2e} (< 1e-3); {count / seconds['gpu']:,.0f} "
                f"texts/s on the GPU, {count / seconds['cpu']:,.0f} on the CPU ({torch.get_num_threads()} threads): "
                f"{seconds['cpu'] / seconds['gpu']:.1f}× in this run")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda", help="the GPU to check (cuda or cuda:N)")
    parser.add_argument("--out", help="keep the runs' folders here (default: a temporary folder)")
    parser.add_argument("--texts", type=int, default=2000, help="texts for the encode speed check")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("gpu_check: no CUDA device here (torch.cuda.is_available() is False): nothing to check; run this on "
              "a machine with a GPU")
        return 0
    device = resolve_device(args.device)
    root = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bertkit-gpu-check-"))
    root.mkdir(parents=True, exist_ok=True)
    environment(device)
    autocast(device, root)
    sdpa_kernel(device, root)
    finetune_steps(device, root)
    pretrain_steps(device, root)
    exact_resume(device, root)
    ddp_run(device, root)
    encode(device, root, args.texts)
    passed = sum(ok for _, ok, _ in REPORT)
    print(f"\n== bertkit GPU check: {passed}/{len(REPORT)} passed ==")
    for name, ok, details in REPORT:
        print(f"{'PASS' if ok else 'FAIL'}  {name:<12} {details.splitlines()[0]}")
    if not args.out:
        shutil.rmtree(root, ignore_errors=True)
    return 0 if passed == len(REPORT) else 1


if __name__ == "__main__":
    sys.exit(main())
