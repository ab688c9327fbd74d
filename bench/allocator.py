"""CPU memory allocators for training, compared on the same pretraining steps: speed and peak resident memory.

    .venv/bin/python bench/allocator.py [--steps 6] [--repeats 3] [--threads 1] [--batch 32] [--bf16]

Variants, each in its own process started with its own environment (glibc reads its ``MALLOC_*`` variables and
``LD_PRELOAD`` only at start-up):

================  ==============================================================================================
glibc             torch's default allocator on glibc's malloc, untouched
glibc-env         glibc tuned as ``mallopt`` would, by environment: ``MALLOC_MMAP_THRESHOLD_`` (fixed at 32 MiB, so
                  activations come from the heap and are reused instead of faulting in fresh pages every step),
                  ``MALLOC_TRIM_THRESHOLD_`` / ``MALLOC_TOP_PAD_`` (freed memory stays mapped), ``MALLOC_ARENA_MAX``
jemalloc          Debian's ``libjemalloc2`` through ``LD_PRELOAD`` (no compiler): what ``make pretrain-*`` and
                  ``make finetune-*`` use
tcmalloc          Debian's ``libtcmalloc-minimal4`` through ``LD_PRELOAD`` (no compiler)
================  ==============================================================================================

bertkit's former caching allocator (C++, compiled with g++ at run time) and the same glibc settings applied in
process with ``mallopt`` were measured here too before they were dropped: neither beat these (README).

The workload is the pretraining step of ``bench/pretrain.py`` (4 layers, hidden 256, vocab 30522, ``--batch`` × 128
tokens, real masked batches, fused AdamW; fp32, or bf16 autocast with ``--bf16`` — only worth it on a CPU with
AVX-512 BF16): 2 warm-up steps, then ``--steps`` timed steps. The variants run
interleaved ``--repeats`` times (a shuffled order each round) so that a busy machine slows them alike; the table
shows medians, and the ratios to plain glibc.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from compare_commits import cpu_model  # noqa: E402

LIBRARIES = Path("/usr/lib/x86_64-linux-gnu")
MIB = 1 << 20
GLIBC_ENV = {  # mallopt's settings, as the environment variables glibc reads at start-up
    "MALLOC_MMAP_THRESHOLD_": str(32 * MIB), "MALLOC_TRIM_THRESHOLD_": str(1024 * MIB),
    "MALLOC_TOP_PAD_": str(64 * MIB), "MALLOC_ARENA_MAX": "2",
}
VARIANTS = {
    "glibc": {},
    "glibc-env": GLIBC_ENV,
    "jemalloc": {"LD_PRELOAD": str(LIBRARIES / "libjemalloc.so.2")},
    "tcmalloc": {"LD_PRELOAD": str(LIBRARIES / "libtcmalloc_minimal.so.4")},
}


def cpu_and_cores() -> str:
    """The CPU's model name, and how many cores this process may use."""
    return f"{cpu_model()}, {len(os.sched_getaffinity(0))} cores"


def run_variant(variant: str, steps: int, threads: int, data_file: str, bf16: bool) -> dict:
    """Time ``steps`` pretraining steps in this process with the variant's allocator."""
    from pretrain import SIZES
    from safetensors.torch import load_file

    from bertkit.config import BertConfig
    from bertkit.model import BertForPreTraining
    from bertkit.training.optim import build_optimizer

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    stored = load_file(data_file)
    data = [{k.split("/")[1]: v for k, v in stored.items() if k.startswith(f"{i}/")} for i in range(steps + 2)]
    model = BertForPreTraining(BertConfig(**SIZES)).train()
    optimizer = build_optimizer(model, lr=1e-4, weight_decay=0.01)
    losses = []
    for i, batch in enumerate(data):
        if i == 2:
            started = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(**batch, return_logits=False).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
    elapsed = time.perf_counter() - started
    return {"variant": variant, "steps_per_second": steps / elapsed,
            "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "last_loss": losses[-1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=32, help="sequences of 128 tokens a step (at most 32)")
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(run_variant(args.variant, args.steps, args.threads, args.data, args.bf16)))
        return
    from pretrain import batches
    from safetensors.torch import save_file

    names = args.variants.split(",")
    for name in names:
        preload = VARIANTS[name].get("LD_PRELOAD")
        if preload and not Path(preload).is_file():
            raise SystemExit(f"{name}: {preload} is missing (apt-get install libjemalloc2 libtcmalloc-minimal4)")
    print(f"CPU: {cpu_and_cores()}; load average at start {os.getloadavg()[0]:.2f}; torch {torch.__version__}; "
          f"batch {args.batch} × 128, {'bf16' if args.bf16 else 'fp32'}, {args.threads} thread(s), "
          f"{args.steps} timed steps × {args.repeats} interleaved repeats", flush=True)
    runs: dict[str, list[dict]] = {name: [] for name in names}
    order = random.Random(0)
    with tempfile.TemporaryDirectory() as folder:
        data_file = str(Path(folder) / "batches.safetensors")
        save_file({f"{i}/{k}": v[:args.batch].contiguous() for i, b in enumerate(batches(args.steps + 2))
                   for k, v in b.items()}, data_file)
        for repeat in range(args.repeats):
            for name in order.sample(names, len(names)):
                env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "LD_PRELOAD"}
                env |= VARIANTS[name] | {"OMP_NUM_THREADS": str(args.threads)}
                out = subprocess.run([sys.executable, __file__, "--variant", name, "--steps", str(args.steps),
                                      "--threads", str(args.threads), "--data", data_file]
                                     + ["--bf16"] * args.bf16,
                                     capture_output=True, text=True, env=env)
                if out.returncode != 0:
                    raise SystemExit(f"{name} failed:\n{out.stderr[-3000:]}")
                runs[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
                print(f"  round {repeat + 1} {name:<14}{runs[name][-1]['steps_per_second']:.3f} steps/s "
                      f"{runs[name][-1]['peak_mib']:,.0f} MiB", file=sys.stderr, flush=True)
    median = {name: {key: statistics.median(r[key] for r in rs) for key in ("steps_per_second", "peak_mib")}
              for name, rs in runs.items()}
    base = median.get("glibc") or next(iter(median.values()))
    print(f"load average at end {os.getloadavg()[0]:.2f}")
    print(f"{'allocator':<16}{'steps/s':>9}{'peak MiB':>10}{'speed ×':>9}{'memory ×':>10}   runs (steps/s)")
    for name, m in median.items():
        speeds = " ".join(f"{r['steps_per_second']:.3f}" for r in runs[name])
        print(f"{name:<16}{m['steps_per_second']:>9.3f}{m['peak_mib']:>10,.0f}"
              f"{m['steps_per_second'] / base['steps_per_second']:>9.3f}{m['peak_mib'] / base['peak_mib']:>10.3f}"
              f"   {speeds}")


if __name__ == "__main__":
    main()
