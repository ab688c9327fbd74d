"""``bertkit whiten``, ``bertkit flow`` and ``bertkit train-embeddings``: sentence-embedding models from a folder and
some text."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path


def read_corpus(corpus: Path, out: Path, method: str, limit: int | None) -> list[str]:
    """The corpus's non-blank lines (the first ``limit``), once the output folder is known to be new or empty."""
    if not corpus.is_file():
        raise FileNotFoundError(f"no such corpus file: {corpus}")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"{out} exists and is not empty; give a new folder for the model with its {method}")
    from ..textio import read_text

    texts = [line.strip() for line in read_text(corpus).splitlines() if line.strip()]  # order is not kept: no rows
    if not texts:
        raise ValueError(f"{corpus} holds no text: the {method} is fitted on the vectors of a corpus, one text a line")
    return texts[: limit or None]


def save_atomically(encoder, out: Path) -> None:
    """Write the model beside the target and rename it into place: a failed run leaves no half-written folder."""
    staging = out.parent / f".{out.name}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    encoder.save_pretrained(staging)
    os.replace(staging, out)


def run_whiten(args: argparse.Namespace) -> None:
    """Fit whitening on a corpus's vectors and write the model with it as a new folder."""
    from ..encoding import SentenceEncoder

    corpus, out = Path(args.corpus), Path(args.output)
    texts = read_corpus(corpus, out, "whitening", args.limit)
    encoder = SentenceEncoder.from_pretrained(args.model)
    whitening = encoder.fit_whitening(texts, k=args.k, batch_size=args.batch_size,
                                      show_progress_bar=len(texts) > 1000)
    save_atomically(encoder, out)
    print(json.dumps({"output": str(out), "vectors": len(texts), "in_features": whitening.in_features,
                      "out_features": whitening.out_features, "pooling": encoder.pooling,
                      "normalize": encoder.normalize}), file=sys.stderr)


def run_flow(args: argparse.Namespace) -> None:
    """Fit BERT-flow on a corpus's vectors and write the model with it (before Normalize) as a new folder."""
    import torch
    from torch import nn

    from ..encoding import SentenceEncoder
    from ..encoding.flow import Flow, fit_flow
    from ..encoding.modules import Normalize

    corpus, out = Path(args.corpus), Path(args.output)
    texts = read_corpus(corpus, out, "flow", args.limit)
    encoder = SentenceEncoder.from_pretrained(args.model)
    kept = [m for m in encoder.head if not isinstance(m, Flow)]  # a refit replaces the folder's flow
    encoder.head = nn.ModuleList(kept)
    if len(texts) <= encoder.dimension:  # said before encoding: the fit would refuse these vectors anyway
        raise ValueError(f"a flow needs more texts than the vectors have dimensions: {corpus} gives {len(texts)} "
                         f"texts for {encoder.dimension}-d vectors; give at least {encoder.dimension + 1}")
    vectors = encoder.encode(texts, normalize=False, batch_size=args.batch_size, show_progress_bar=len(texts) > 1000)
    flow = fit_flow(vectors, steps=args.steps, hidden=args.hidden, epochs=args.epochs, seed=args.seed,
                    progress=True).to(encoder.device)
    at = next((i for i, m in enumerate(kept) if isinstance(m, Normalize)), len(kept))
    encoder.head = nn.ModuleList([*kept[:at], flow, *kept[at:]])
    save_atomically(encoder, out)
    with torch.no_grad():
        nll = float(flow.nll(torch.from_numpy(vectors)))
    print(json.dumps({"output": str(out), "vectors": len(texts), "dimension": flow.dimension, "steps": flow.steps,
                      "hidden": flow.hidden, "nll_per_dimension": round(nll, 4), "pooling": encoder.pooling,
                      "normalize": encoder.normalize}), file=sys.stderr)


def run_train(args: argparse.Namespace) -> None:
    from ..encoding.training import EmbeddingTrainConfig, train_embeddings
    from ..training.options import flag_values, parse_overrides

    overrides = parse_overrides(args.overrides, EmbeddingTrainConfig) | flag_values(args, EmbeddingTrainConfig)
    results = train_embeddings(EmbeddingTrainConfig.from_yaml(args.config, overrides))
    print(json.dumps({k: v for k, v in results.items() if k != "config"}, indent=2))


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("whiten", help="fit BERT-whitening on a corpus and save the model with it",
                              description="Encodes each line of CORPUS, fits mean and W = U·Λ^-½ on the vectors "
                                          "(first K dimensions), and writes the model plus a Whitening module.")
    p.add_argument("corpus", help="a text file, one text a line (more lines than the vectors' dimension)")
    p.add_argument("--model", help="model folder; default: the installed all-MiniLM-L6-v2")
    p.add_argument("-k", type=int, help="dimensions to keep (default: all)")
    p.add_argument("--output", "-o", required=True, help="the new model folder")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--limit", type=int, help="use only the first LIMIT lines")
    p.set_defaults(run=run_whiten)

    p = subparsers.add_parser("flow", help="fit BERT-flow on a corpus and save the model with it",
                              description="Encodes each line of CORPUS and fits a Glow-style normalising flow that "
                                          "maps the vectors to a standard Gaussian; writes the model plus a Flow "
                                          "module (before Normalize).")
    p.add_argument("corpus", help="a text file, one text a line (more lines than the vectors' dimension)")
    p.add_argument("--model", help="model folder; default: the installed all-MiniLM-L6-v2")
    p.add_argument("--output", "-o", required=True, help="the new model folder")
    p.add_argument("--steps", type=int, default=4, help="Glow steps (actnorm, invertible linear, coupling)")
    p.add_argument("--hidden", type=int, default=256, help="width of each coupling's network")
    p.add_argument("--epochs", type=int, default=50, help="passes over the vectors (the best held-out one is kept)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=32, help="texts per encoding batch")
    p.add_argument("--limit", type=int, help="use only the first LIMIT lines")
    p.set_defaults(run=run_flow)

    p = subparsers.add_parser("train-embeddings", help="train a bi-encoder on pairs (mnrl) or scored pairs",
                              description="Options come from --config (YAML) and KEY=VALUE overrides, e.g. "
                                          "loss=cosent lr=3e-5 (see bertkit.encoding.training.EmbeddingTrainConfig).")
    p.add_argument("--config", help="a YAML file of EmbeddingTrainConfig options")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="options over the file's (or as --key value)")
    from ..encoding.training import EmbeddingTrainConfig
    from ..training.options import add_option_flags

    add_option_flags(p, EmbeddingTrainConfig)
    p.set_defaults(run=run_train)
