"""``bertkit whiten`` and ``bertkit train-embeddings``: sentence-embedding models from a folder and some text."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path


def run_whiten(args: argparse.Namespace) -> None:
    """Fit whitening on a corpus's vectors and write the model with it as a new folder."""
    from ..encoding import SentenceEncoder

    corpus, out = Path(args.corpus), Path(args.output)
    if not corpus.is_file():
        raise FileNotFoundError(f"no such corpus file: {corpus}")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"{out} exists and is not empty; give a new folder for the whitened model")
    from ..textio import read_text

    texts = [line.strip() for line in read_text(corpus).splitlines() if line.strip()]  # order is not kept: no rows
    if not texts:
        raise ValueError(f"{corpus} holds no text: whitening is fitted on the vectors of a corpus, one text a line")
    texts = texts[: args.limit or None]
    encoder = SentenceEncoder.from_pretrained(args.model)
    whitening = encoder.fit_whitening(texts, k=args.k, batch_size=args.batch_size,
                                      show_progress_bar=len(texts) > 1000)
    # Written beside the target and renamed into place: a failed run leaves no half-written model folder.
    staging = out.parent / f".{out.name}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    encoder.save_pretrained(staging)
    os.replace(staging, out)
    print(json.dumps({"output": str(out), "vectors": len(texts), "in_features": whitening.in_features,
                      "out_features": whitening.out_features, "pooling": encoder.pooling,
                      "normalize": encoder.normalize}), file=sys.stderr)


def run_train(args: argparse.Namespace) -> None:
    from ..encoding.training import EmbeddingTrainConfig, train_embeddings
    from ..training.options import flag_values, parse_overrides

    overrides = parse_overrides(args.overrides) | flag_values(args, EmbeddingTrainConfig)
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

    p = subparsers.add_parser("train-embeddings", help="train a bi-encoder on pairs (mnrl) or scored pairs",
                              description="Options come from --config (YAML) and KEY=VALUE overrides, e.g. "
                                          "loss=cosent lr=3e-5 (see bertkit.encoding.training.EmbeddingTrainConfig).")
    p.add_argument("--config", help="a YAML file of EmbeddingTrainConfig options")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="options over the file's (or as --key value)")
    from ..encoding.training import EmbeddingTrainConfig
    from ..training.options import add_option_flags

    add_option_flags(p, EmbeddingTrainConfig)
    p.set_defaults(run=run_train)
