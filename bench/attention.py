"""Cost of attention vs sequence length: each efficient kernel against full attention, one layer and a 4-layer encoder.

    .venv/bin/python bench/attention.py [--lengths 128,256,...,16384] [--threads 1] [--out out/bench-attention]

For n = 128 … 16,384 (batch 1, BERT-mini shape: hidden 256, 4 heads of 64), forward passes in inference
(``no_grad``, eval) of one attention block (Q/K/V projections, kernel, output projection) and of a 4-layer encoder,
for: ``full`` (torch's SDPA — on the CPU a fused, flash-style kernel that never stores the n × n scores),
``full-explicit`` (softmax(QKᵀ)V with the scores materialised: what training on the CPU and ``output_attentions``
use), ``linformer`` (k = min(256, n)), ``performer`` (m = 256), ``lsh`` (chunks of 64, n/64 buckets, 2 rounds) and
``local`` (window ±256, [CLS] global). Time: the best of a few repeats. Memory: the growth of the process's peak
resident set during the call (VmHWM, reset through /proc/self/clear_refs), above what was resident before — real
bytes, kernels' internal buffers included. Writes ``results.json`` and a log-log ``attention-cost.png`` to ``--out``
and prints the ratios to full attention, the crossover lengths and the n = 4,096 goal.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import re
import sys
import time
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from compare_commits import cpu_model  # noqa: E402

from bertkit.atomic import write_atomic, write_text_atomic  # noqa: E402
from bertkit.config import BertConfig  # noqa: E402
from bertkit.model import BertModel  # noqa: E402
from bertkit.model.attention import Attention  # noqa: E402
from bertkit.model.kernels import explicit_attention  # noqa: E402

KERNELS = ("full", "full-explicit", "linformer", "performer", "lsh", "local")
EXPLICIT_MAX = 8192  # the materialised scores of 4 heads at 16,384 would take 8 GiB of a shared machine


class ExplicitFull(nn.Module):
    """Full attention with the n × n probabilities stored (plugged into the block's kernel hook)."""

    def forward(self, q, k, v, mask, dropout_prob, return_probs=False):
        return explicit_attention(q, k, v, mask, dropout_prob)[0], None


def bench_config(kernel: str, n: int) -> BertConfig:
    """BERT-mini with the kernel's sizes for length n."""
    attention = "full" if kernel == "full-explicit" else kernel
    return BertConfig(vocab_size=1000, hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
                      intermediate_size=1024, max_position_embeddings=16384, attention=attention,
                      linformer_k=min(256, n), performer_features=256, lsh_chunk_size=64,
                      lsh_num_buckets=max(2, n // 64), lsh_rounds=2, local_window=256)


def use_explicit(model: nn.Module) -> None:
    """Swap every block's kernel for the materialising one."""
    for module in model.modules():
        if hasattr(module, "kernel") and module.kernel is None:
            module.use_kernel(ExplicitFull())


def memory_mib(key: str) -> float:
    """VmRSS / VmHWM of this process, MiB."""
    status = Path("/proc/self/status").read_text()
    return int(re.search(rf"{key}:\s+(\d+) kB", status).group(1)) / 1024


def release_free_memory() -> None:
    """Hand freed heap pages back to the OS, so that the next call's peak shows as resident growth (glibc)."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def measure(run, max_seconds: float = 1.0, max_repeats: int = 5) -> tuple[float, float]:
    """(best seconds, peak resident growth in MiB) of ``run()``: one warm-up, then repeats while time allows."""
    run()
    release_free_memory()
    before = memory_mib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current resident size
    times, start = [], time.perf_counter()
    while len(times) < max_repeats and (not times or time.perf_counter() - start < max_seconds):
        tick = time.perf_counter()
        run()
        times.append(time.perf_counter() - tick)
    return min(times), max(memory_mib("VmHWM") - before, 0.0)


def one_case(kernel: str, n: int) -> dict:
    """Time and memory of one attention block and of the 4-layer encoder at length n."""
    torch.manual_seed(0)
    config = bench_config(kernel, n)
    block, model = Attention(config).eval(), BertModel(config, add_pooling_layer=False).eval()
    if kernel == "full-explicit":
        use_explicit(block)
        use_explicit(model)
    x = torch.randn(1, n, config.hidden_size)
    ids = torch.randint(0, config.vocab_size, (1, n))
    with torch.no_grad():
        layer_s, layer_mib = measure(lambda: block(x, None))
        encoder_s, encoder_mib = measure(lambda: model(ids))
    return dict(kernel=kernel, n=n, layer_s=layer_s, layer_mib=layer_mib, encoder_s=encoder_s,
                encoder_mib=encoder_mib)


def crossover(results: list[dict], kernel: str, key: str) -> int | None:
    """The smallest n from which ``kernel`` beats full attention on ``key`` at every measured longer length."""
    full = {r["n"]: r[key] for r in results if r["kernel"] == "full"}
    mine = sorted((r["n"], r[key]) for r in results if r["kernel"] == kernel and r["n"] in full)
    best = None
    for n, value in reversed(mine):
        if value >= full[n]:
            break
        best = n
    return best


def plot(results: list[dict], path: Path) -> None:
    """Log-log time and memory vs n, one line per kernel, for the block and for the encoder."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 2, figsize=(11, 8))
    panels = [("layer_s", "one attention block: seconds"), ("layer_mib", "one attention block: peak MiB"),
              ("encoder_s", "4-layer encoder: seconds"), ("encoder_mib", "4-layer encoder: peak MiB")]
    for axis, (key, title) in zip(axes.flat, panels, strict=True):
        for kernel in KERNELS:
            rows = sorted((r["n"], r[key]) for r in results if r["kernel"] == kernel)
            if rows:
                axis.plot(*zip(*[(n, max(v, 1e-3)) for n, v in rows], strict=True), marker="o", label=kernel)
        axis.set(xscale="log", yscale="log", xlabel="sequence length n", title=title)
        axis.set_xticks([r["n"] for r in results if r["kernel"] == "full"], minor=False)
        axis.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
        axis.grid(True, which="both", alpha=0.3)
    axes[0, 0].legend()
    figure.suptitle(f"attention cost vs length, batch 1, hidden 256, 4 heads ({cpu_model()}, "
                    f"{torch.get_num_threads()} thread(s))")
    figure.tight_layout()
    write_atomic(path, lambda tmp: figure.savefig(tmp, format="png", dpi=90))


def report(results: list[dict]) -> None:
    """Ratios to full attention at every n, crossovers, and the n = 4,096 goal."""
    full = {r["n"]: r for r in results if r["kernel"] == "full"}
    print(f"\n{'kernel':<14}{'n':>7}{'block ms':>10}{'MiB':>8}{'encoder ms':>12}{'MiB':>8}"
          f"{'speed × full':>14}{'memory ÷':>10}")
    for r in sorted(results, key=lambda r: (KERNELS.index(r["kernel"]), r["n"])):
        ref = full.get(r["n"])
        speed = ref["encoder_s"] / r["encoder_s"] if ref else float("nan")
        memory = ref["encoder_mib"] / max(r["encoder_mib"], 0.1) if ref else float("nan")
        print(f"{r['kernel']:<14}{r['n']:>7}{r['layer_s'] * 1e3:>10.1f}{r['layer_mib']:>8.1f}"
              f"{r['encoder_s'] * 1e3:>12.1f}{r['encoder_mib']:>8.1f}{speed:>14.2f}{memory:>10.2f}")
    print("\ncrossover (smallest n from which the kernel beats full SDPA at every longer n measured):")
    for kernel in KERNELS[1:]:
        cells = [f"{key} {crossover(results, kernel, key) or '—'}" for key in ("encoder_s", "encoder_mib")]
        print(f"  {kernel:<14}" + ", ".join(cells))
    explicit = {r["n"]: r for r in results if r["kernel"] == "full-explicit"}
    if 4096 in full:
        print("\nn = 4,096 goal (≥ 5× faster, ≥ 10× less memory than full attention), 4-layer encoder:")
        for kernel in ("local", "performer"):
            mine = next((r for r in results if r["kernel"] == kernel and r["n"] == 4096), None)
            if mine is None:
                continue
            for name, ref in (("SDPA", full[4096]), ("explicit", explicit.get(4096))):
                if ref:
                    print(f"  {kernel:<10} vs full {name:<9}: {ref['encoder_s'] / mine['encoder_s']:5.2f}× faster, "
                          f"{ref['encoder_mib'] / max(mine['encoder_mib'], 0.1):6.2f}× less memory")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lengths", default="128,256,512,1024,2048,4096,8192,16384")
    parser.add_argument("--kernels", default=",".join(KERNELS))
    parser.add_argument("--out", default="out/bench-attention")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: steadier on a shared machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    lengths = [int(n) for n in args.lengths.split(",")]
    kernels = args.kernels.split(",")
    unknown = set(kernels) - set(KERNELS)
    if unknown:
        parser.error(f"unknown kernel(s) {sorted(unknown)}; choose from {KERNELS}")
    cases = [(k, n) for n in lengths for k in kernels if not (k == "full-explicit" and n > EXPLICIT_MAX)]
    print(f"{cpu_model()}, {torch.get_num_threads()} thread(s), torch {torch.__version__}")
    results = [one_case(kernel, n) for kernel, n in tqdm(cases, desc="attention cost")]
    out = Path(args.out)
    write_text_atomic(out / "results.json", json.dumps(dict(cpu=cpu_model(), threads=torch.get_num_threads(),
                                                            results=results), indent=2) + "\n")
    plot(results, out / "attention-cost.png")
    report(results)
    print(f"\nwrote {out / 'results.json'} and {out / 'attention-cost.png'}")


if __name__ == "__main__":
    main()
