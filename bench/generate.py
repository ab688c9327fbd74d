"""Generation speed: bertkit's GPT-2 with and without the key / value cache, against transformers' ``generate`` on the
same random checkpoint (same shape, same weights, greedy, the same tokens checked).

    .venv/bin/python bench/generate.py [--layers 6 --hidden 384 --heads 6 --prompt 32 --new 128 --batch 1]
                                       [--threads 1] [--repeats 2] [--out out/bench-generate]

Tokens/s = batch × new tokens / wall time of one ``generate`` call (the best of ``--repeats``); with the cache each
step runs the model on one new position, without it on the whole sequence so far (O(n²) over a generation).
transformers runs with its default cache and SDPA attention. The stop token is disabled so every run writes exactly
``--new`` tokens. Writes ``results.json`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from machine import cpu_name  # noqa: E402  (bench/ is the script's own folder)

from bertkit.atomic import write_text_atomic  # noqa: E402
from bertkit.model import GPT2LMHeadModel  # noqa: E402


def timed(run, repeats: int) -> tuple[float, torch.Tensor]:
    """Best wall time of ``run()`` over ``repeats`` calls, and its output."""
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = run()
        best = min(best, time.perf_counter() - start)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--hidden", type=int, default=384)
    parser.add_argument("--heads", type=int, default=6)
    parser.add_argument("--vocab", type=int, default=50257)
    parser.add_argument("--prompt", type=int, default=32)
    parser.add_argument("--new", type=int, default=128)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", default="out/bench-generate")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import transformers  # the oracle: benchmark-only dependency, like the tests'

    torch.manual_seed(0)
    hf_config = transformers.GPT2Config(vocab_size=args.vocab, n_embd=args.hidden, n_layer=args.layers,
                                        n_head=args.heads, n_positions=args.prompt + args.new + 8)
    reference = transformers.GPT2LMHeadModel(hf_config).eval()
    folder = Path(args.out) / "model"
    reference.save_pretrained(folder)
    model = GPT2LMHeadModel.from_pretrained(folder)
    prompt = torch.randint(0, args.vocab, (args.batch, args.prompt), generator=torch.Generator().manual_seed(1))
    settings = dict(max_new_tokens=args.new, do_sample=False)
    print(f"CPU: {cpu_name()}, {args.threads} thread(s), torch {torch.__version__}, transformers "
          f"{transformers.__version__}")
    print(f"GPT-2 shape: {args.layers} layers, {args.hidden} wide, {args.heads} heads, vocab {args.vocab}; "
          f"batch {args.batch}, prompt {args.prompt}, {args.new} new tokens (greedy)\n")
    runs = {
        "transformers (cache)": lambda: reference.generate(prompt, eos_token_id=None, pad_token_id=0, **settings),
        "bertkit (cache)": lambda: model.generate(prompt, eos_token_id=[], **settings),
        "bertkit (no cache)": lambda: model.generate(prompt, eos_token_id=[], use_cache=False, **settings),
    }
    results, outputs = {}, {}
    with torch.no_grad():
        for name, run in runs.items():
            seconds, outputs[name] = timed(run, args.repeats)
            results[name] = dict(seconds=round(seconds, 3), tokens_per_s=round(args.batch * args.new / seconds, 1))
            print(f"{name:24s} {results[name]['tokens_per_s']:8.1f} tokens/s   ({seconds:.2f} s)")
    same = all(torch.equal(out, outputs["transformers (cache)"]) for out in outputs.values())
    base = results["transformers (cache)"]["tokens_per_s"]
    print(f"\nsame tokens in all three: {same}")
    for name in ("bertkit (cache)", "bertkit (no cache)"):
        print(f"{name} / transformers: {results[name]['tokens_per_s'] / base:.2f}×")
    speedup = results["bertkit (cache)"]["tokens_per_s"] / results["bertkit (no cache)"]["tokens_per_s"]
    print(f"cache speed-up in bertkit: {speedup:.2f}×")
    write_text_atomic(Path(args.out) / "results.json", json.dumps(
        dict(cpu=cpu_name(), threads=args.threads, args=vars(args), same_tokens=same, results=results),
        indent=2) + "\n")


if __name__ == "__main__":
    main()
