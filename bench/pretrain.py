"""Pretraining step throughput and peak memory: bertkit vs transformers' ``BertForPreTraining``, same batches.

    .venv/bin/python bench/pretrain.py [--steps 8] [--threads 2]

The reference configuration (../shared/docs/reference-numbers.md): 4 layers, hidden 256, 4 heads, FFN 1024,
vocab 30522, batch 32 × 128, AdamW, 2 threads, CPU. Batches are real: Rotten Tomatoes reviews cut into NSP
instances of 128 tokens and masked by bertkit's pipeline, identical for every variant. Each variant runs in its own
process that reads the prepared batches from a file (so its peak resident memory is the model's and the step's,
plus the ~0.3 GB that importing torch costs): 2 warm-up steps, then ``--steps`` timed optimizer steps.
Variants: transformers fp32 (MLM decoder over every position); bertkit as its Trainer runs a step — the MLM loss
on the masked ~15 % only, chunk by chunk (``bertkit.model.vocab_loss``), fast dropout masks, fused AdamW — in
fp32, under bf16 autocast (``bf16: true``), and with activation checkpointing as well (``gradient_checkpointing:
true``). Memory allocators are compared by ``bench/allocator.py``.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bertkit.assets import default_model_dir  # noqa: E402
from bertkit.corpora import rotten_tomatoes_reviews  # noqa: E402
from bertkit.pretraining.dataset import PretrainingBatches, to_example  # noqa: E402
from bertkit.pretraining.instances import create_instances  # noqa: E402
from bertkit.pretraining.masking import MaskingConfig  # noqa: E402
from bertkit.pretraining.run import special_ids  # noqa: E402
from bertkit.pretraining.tokenized import tokenize_documents  # noqa: E402
from bertkit.tokenization import BertTokenizer  # noqa: E402

SIZES = dict(vocab_size=30522, hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024)
BATCH, LENGTH = 32, 128
VARIANTS = ("transformers", "bertkit-fp32", "bertkit-bf16", "bertkit-bf16-ckpt")


def batches(count: int) -> list[dict[str, torch.Tensor]]:
    """``count`` masked NSP batches of 32 × 128 tokens from real reviews (padded to 128)."""
    tokenizer = BertTokenizer.from_pretrained(default_model_dir())
    reviews = [text for _, text in rotten_tomatoes_reviews()]
    documents = [reviews[i:i + 8] for i in range(0, len(reviews), 8)]
    tokenized = tokenize_documents(documents, tokenizer, progress=False)
    special = special_ids(tokenizer)
    examples = [to_example(i) for i in create_instances(tokenized, LENGTH, special, random.Random(0), "nsp", 0.0)]
    source = PretrainingBatches(examples, BATCH, special, len(tokenizer), MaskingConfig(), seed=0)
    out = []
    for _ in range(count):
        batch = source.next_batch()
        pad = LENGTH - batch["input_ids"].shape[1]
        for key, value in (("input_ids", special.pad), ("token_type_ids", 0), ("attention_mask", 0), ("labels", -100)):
            batch[key] = torch.nn.functional.pad(batch[key], (0, pad), value=value)
        out.append(batch)
    return out


def run_variant(variant: str, steps: int, threads: int, data_file: str) -> dict:
    """Time ``steps`` optimizer steps of one variant in this process, on the batches saved in ``data_file``."""
    from safetensors.torch import load_file


    torch.set_num_threads(threads)
    torch.manual_seed(0)
    stored = load_file(data_file)
    data = [{k.split("/")[1]: v for k, v in stored.items() if k.startswith(f"{i}/")} for i in range(steps + 2)]
    if variant.startswith("transformers"):
        from transformers import BertConfig as HFConfig
        from transformers import BertForPreTraining as HFPreTraining

        model = HFPreTraining(HFConfig(**SIZES, attn_implementation="sdpa"))

        def step_loss(batch):
            return model(**batch).loss
    else:
        from bertkit.config import BertConfig
        from bertkit.model import BertForPreTraining

        model = BertForPreTraining(BertConfig(**SIZES))
        if "-ckpt" in variant:
            model.gradient_checkpointing_enable()

        def step_loss(batch):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled="bf16" in variant):
                return model(**batch, return_logits=False).loss
    model.train()
    if variant.startswith("transformers"):
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
    else:  # what bertkit's Trainer builds: decay groups, fused kernel
        from bertkit.training.optim import build_optimizer

        optimizer = build_optimizer(model, lr=1e-4, weight_decay=0.01)
    losses = []
    for i, batch in enumerate(data):
        if i == 2:
            started = time.perf_counter()
        loss = step_loss(batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
    elapsed = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"variant": variant, "tokens_per_second": steps * BATCH * LENGTH / elapsed, "peak_mib": peak_mib,
            "first_loss": losses[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(run_variant(args.variant, args.steps, args.threads, args.data)))
        return
    from safetensors.torch import save_file

    results = {}
    with tempfile.TemporaryDirectory() as folder:
        data_file = str(Path(folder) / "batches.safetensors")
        save_file({f"{i}/{k}": v.contiguous() for i, b in enumerate(batches(args.steps + 2)) for k, v in b.items()},
                  data_file)
        for variant in VARIANTS:
            out = subprocess.run([sys.executable, __file__, "--variant", variant, "--steps", str(args.steps),
                                  "--threads", str(args.threads), "--data", data_file],
                                 capture_output=True, text=True, check=True)
            results[variant] = json.loads(out.stdout.strip().splitlines()[-1])
    reference = results["transformers"]
    print(f"config: 4 layers, hidden 256, 4 heads, FFN 1024, vocab 30522, batch {BATCH} × {LENGTH}, AdamW, "
          f"{args.threads} threads, {args.steps} timed steps")
    print(f"{'variant':<22}{'tokens/s':>10}{'peak MiB':>10}{'speed ×':>9}{'memory ×':>10}{'first loss':>12}")
    for name, r in results.items():
        print(f"{name:<22}{r['tokens_per_second']:>10,.0f}{r['peak_mib']:>10,.0f}"
              f"{r['tokens_per_second'] / reference['tokens_per_second']:>9.2f}"
              f"{r['peak_mib'] / reference['peak_mib']:>10.2f}{r['first_loss']:>12.4f}")


if __name__ == "__main__":
    main()
