"""ModernBERT's local-global attention vs full attention of the same size, up to 8,192 tokens, on the CPU.

    .venv/bin/python bench/long_attention.py [--lengths 512,1024,2048,4096,8192] [--layers 3] [--threads 1]
                                             [--rounds 3] [--out out/bench-long-attention]

One ModernBERT-shaped encoder (hidden 256, 4 heads of 64 with rotary positions, GeGLU 384, a window of 128 tokens —
±64 — in every layer but each third), batch 1, inference (``no_grad``, eval), against the same weights with every
layer global (``full``: torch's SDPA, a flash-style kernel that never stores the n × n scores). Also one attention
block alone: a windowed layer's against a global one's. Time: the best of a few repeats; memory: the growth of the
process's peak resident set during the call (``bench/attention.py``'s measure); the two systems take turns in
each timed round, so that the shared machine's changing load hits both alike. Prints speed per token as a ratio
to full attention (the goal: ≥ 3× at 8,192), writes ``results.json`` and ``long-attention.png`` (log-log) to --out.

With one global layer in three, the whole encoder cannot reach 3× by construction: even if windowed layers cost
nothing, a third of full attention's cost stays. The block ratio says what the window itself buys.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from attention import measure  # noqa: E402
from compare_commits import cpu_model  # noqa: E402

from bertkit.atomic import write_atomic, write_text_atomic  # noqa: E402
from bertkit.model.modernbert import ModernBertModel  # noqa: E402
from bertkit.model.modernbert_architecture import ModernBertConfig  # noqa: E402

SYSTEMS = ("local-global", "full")


def bench_model(layers: int, longest: int) -> ModernBertModel:
    """A ModernBERT-shaped encoder (global attention in layers 0, 3, …), random weights, eval mode."""
    torch.manual_seed(0)
    config = ModernBertConfig(vocab_size=1000, hidden_size=256, num_hidden_layers=layers, num_attention_heads=4,
                              intermediate_size=384, max_position_embeddings=longest, pad_token_id=0,
                              local_attention=128)
    return ModernBertModel(config).eval()


def all_global(model: ModernBertModel) -> ModernBertModel:
    """The same weights with the window removed from every layer: full attention of the same size."""
    for layer in model.layers:
        layer.attn.half_window = None
    return model


def interleaved_best(runs: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Best seconds of each run over ``rounds`` rounds that call every run in turn: a load change on a shared
    machine hits both systems alike instead of one of them."""
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(rounds):
        for name, run in runs.items():
            tick = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - tick)
    return best


def one_case(n: int, layers: int, longest: int, rounds: int) -> list[dict]:
    """Time and memory of the encoder and of one attention block at length n, windowed and global."""
    ids = torch.randint(1, 1000, (1, n), generator=torch.Generator().manual_seed(n))
    x = torch.randn(1, n, 256, generator=torch.Generator().manual_seed(1))
    models = {"local-global": bench_model(layers, longest), "full": all_global(bench_model(layers, longest))}
    runs, memory = {}, {}
    with torch.no_grad():
        for system, model in models.items():
            block = model.layers[1].attn  # windowed in local-global, global in full
            runs[(system, "encoder")] = lambda m=model: m(ids)
            runs[(system, "block")] = lambda b=block: b(x, None)
            for part in ("encoder", "block"):  # a warm-up and one measured call: the peak memory
                memory[(system, part)] = measure(runs[(system, part)], max_seconds=0.0, max_repeats=1)[1]
        seconds = interleaved_best(runs, rounds)
    return [dict(system=system, n=n, encoder_s=seconds[(system, "encoder")], block_s=seconds[(system, "block")],
                 encoder_mib=memory[(system, "encoder")], block_mib=memory[(system, "block")]) for system in SYSTEMS]


def plot(results: list[dict], path: Path, layers: int) -> None:
    """Log-log seconds per token and peak MiB vs n, encoder and block, one line per system."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    panels = [("encoder_s", f"{layers}-layer encoder: µs per token"), ("block_s", "one attention block: µs per token"),
              ("encoder_mib", f"{layers}-layer encoder: peak MiB")]
    for axis, (key, title) in zip(axes, panels, strict=True):
        for system in SYSTEMS:
            rows = sorted((r["n"], r[key]) for r in results if r["system"] == system)
            per_token = [(n, max(v / n * 1e6 if key.endswith("_s") else v, 1e-3)) for n, v in rows]
            axis.plot(*zip(*per_token, strict=True), marker="o", label=system)
        axis.set(xscale="log", yscale="log", xlabel="sequence length n", title=title)
        axis.set_xticks(sorted({r["n"] for r in results}), minor=False)
        axis.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
        axis.get_xaxis().set_minor_locator(matplotlib.ticker.NullLocator())
        axis.grid(True, which="both", alpha=0.3)
    axes[0].legend()
    figure.suptitle(f"ModernBERT-shaped (hidden 256, window ±64, global every 3rd layer) vs full attention "
                    f"({cpu_model()}, {torch.get_num_threads()} thread(s))")
    figure.tight_layout()
    write_atomic(path, lambda tmp: figure.savefig(tmp, format="png", dpi=90))


def report(results: list[dict]) -> None:
    """Per length: milliseconds, MiB and the speed-per-token ratio of local-global to full, encoder and block."""
    by = {(r["system"], r["n"]): r for r in results}
    print(f"\n{'n':>6}{'full ms':>10}{'l-g ms':>9}{'encoder ×':>11}{'full MiB':>10}{'l-g MiB':>9}"
          f"{'block full ms':>15}{'window ms':>11}{'block ×':>9}")
    for n in sorted({r["n"] for r in results}):
        full, mine = by[("full", n)], by[("local-global", n)]
        print(f"{n:>6}{full['encoder_s'] * 1e3:>10.1f}{mine['encoder_s'] * 1e3:>9.1f}"
              f"{full['encoder_s'] / mine['encoder_s']:>11.2f}{full['encoder_mib']:>10.1f}{mine['encoder_mib']:>9.1f}"
              f"{full['block_s'] * 1e3:>15.1f}{mine['block_s'] * 1e3:>11.1f}{full['block_s'] / mine['block_s']:>9.2f}")
    longest = max(r["n"] for r in results)
    full, mine = by[("full", longest)], by[("local-global", longest)]
    print(f"\nn = {longest:,}: speed per token ×{full['encoder_s'] / mine['encoder_s']:.2f} (encoder), "
          f"×{full['block_s'] / mine['block_s']:.2f} (a windowed attention block); goal ≥ 3×")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lengths", default="512,1024,2048,4096,8192")
    parser.add_argument("--layers", type=int, default=3, help="encoder layers (global every 3rd; default 3)")
    parser.add_argument("--out", default="out/bench-long-attention")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: steadier on a shared machine)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds, the systems taking turns (default 3)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    lengths = [int(n) for n in args.lengths.split(",")]
    if min(lengths) <= 128:
        parser.error("lengths must exceed the window (128 tokens)")
    print(f"{cpu_model()}, {torch.get_num_threads()} thread(s), torch {torch.__version__}")
    results = [row for n in tqdm(lengths, desc="long attention")
               for row in one_case(n, args.layers, max(lengths), args.rounds)]
    out = Path(args.out)
    write_text_atomic(out / "results.json", json.dumps(dict(cpu=cpu_model(), threads=torch.get_num_threads(),
                                                            layers=args.layers, results=results), indent=2) + "\n")
    plot(results, out / "long-attention.png", args.layers)
    report(results)
    print(f"\nwrote {out / 'results.json'} and {out / 'long-attention.png'}")


if __name__ == "__main__":
    main()
