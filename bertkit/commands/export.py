"""``bertkit export onnx``: a model folder → a folder with ``onnx/model.onnx`` for ONNX Runtime, TEI and
sentence-transformers' ONNX backend."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``bertkit export onnx``."""
    p = subparsers.add_parser("export", help="export a model for other runtimes (ONNX)")
    formats = p.add_subparsers(dest="format", required=True, metavar="FORMAT")
    onnx = formats.add_parser("onnx", help="encoder + pooling + normalisation as one ONNX graph (dynamic batch "
                                           "and length) in OUT/onnx/model.onnx, beside the folder's config and "
                                           "tokenizer")
    onnx.add_argument("--model", default=None, help="model folder (default: the installed all-MiniLM-L6-v2)")
    onnx.add_argument("-o", "--output", required=True, help="new (or empty) output folder")
    onnx.add_argument("--pooling", default=None, help="override the folder's pooling: any of SentenceEncoder's "
                      "modes (cls, max, mean, mean_sqrt_len_tokens, weightedmean, lasttoken; several joined by '+'; "
                      "default: its own, mean for MiniLM)")
    onnx.add_argument("--normalize", action=argparse.BooleanOptionalAction, default=None,
                      help="override the folder's normalisation (default: its own)")
    onnx.set_defaults(run=run_export)


def run_export(args: argparse.Namespace) -> None:
    """Export, then print where the graph went."""
    from ..assets import default_model_dir
    from ..export.onnx import export_onnx

    path = export_onnx(args.model or default_model_dir(), args.output, args.pooling, args.normalize)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
