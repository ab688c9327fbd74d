"""Before / after: the same encode and pretraining-step work on two checkouts, interleaved rounds, medians.

    git worktree add /tmp/before <commit>
    .venv/bin/python bench/compare_commits.py /tmp/before . [--rounds 3]

Each round runs one fresh process per checkout (PYTHONPATH = that checkout, 1 thread): MiniLM encodes 640 Rotten
Tomatoes reviews (batch 32), then a mini BERT (4 × 256) takes AdamW pretraining steps on a 16 × 128 batch. The
order alternates between rounds so that a change in the machine's load does not favour one side.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from machine import cpu_name  # noqa: E402  (bench/ is the script's own folder)

WORK = r'''
import json, time
import torch
from bertkit.config import BertConfig
from bertkit.corpora import rotten_tomatoes_reviews
from bertkit.encoding import SentenceEncoder
from bertkit.model import BertForPreTraining

torch.set_num_threads(1)
texts = [text for _, text in rotten_tomatoes_reviews()[:640]]
encoder = SentenceEncoder.from_pretrained()
encoder.encode(texts[:32], batch_size=32)
start = time.perf_counter()
encoder.encode(texts, batch_size=32)
encode_s = time.perf_counter() - start

torch.manual_seed(0)
model = BertForPreTraining(BertConfig.preset("mini", vocab_size=16000)).train()
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
ids = torch.randint(5, 16000, (16, 128))
labels = ids.clone()
labels[:, ::2] = -100
pairs = torch.zeros(16, dtype=torch.long)


def step():
    model(ids, labels=labels, next_sentence_label=pairs).loss.backward()
    optimizer.step()
    optimizer.zero_grad()


step()
start = time.perf_counter()
for _ in range(4):
    step()
print(json.dumps({"encode_s": encode_s, "step_s": (time.perf_counter() - start) / 4}))
'''


def measure(checkout: Path) -> dict[str, float]:
    """One fresh process on ``checkout``'s code: seconds to encode, seconds per training step."""
    env = dict(os.environ, PYTHONPATH=str(checkout), OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-c", WORK], env=env, cwd=checkout, capture_output=True, text=True,
                          check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    sides = {"before": args.before.resolve(), "after": args.after.resolve()}
    results: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    for round_index in range(args.rounds):
        order = ("before", "after") if round_index % 2 == 0 else ("after", "before")
        for name in order:
            results[name].append(measure(sides[name]))
            print(name, results[name][-1], flush=True)
    print(cpu_name())
    for key in ("encode_s", "step_s"):
        before = statistics.median(r[key] for r in results["before"])
        after = statistics.median(r[key] for r in results["after"])
        print(f"{key}: before {before:.3f} s, after {after:.3f} s, after / before {after / before:.3f}")


if __name__ == "__main__":
    main()
