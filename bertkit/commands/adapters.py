"""``bertkit merge-adapter ADAPTER_DIR OUT``: a LoRA adapter folded into its base model, saved as a plain folder."""

from __future__ import annotations

import argparse
import sys


def run(args: argparse.Namespace) -> None:
    """Merge and report where the folder went."""
    from ..finetuning.adapters import merge_adapter

    print(f"wrote {merge_adapter(args.adapter, args.output, args.base_model)}", file=sys.stderr)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("merge-adapter", help="fold a LoRA adapter folder into its base model's weights")
    p.add_argument("adapter", help="an adapter folder (adapter_config.json + adapter_model.safetensors)")
    p.add_argument("output", help="where to write the merged model folder")
    p.add_argument("--base-model", help="the base model folder (default: adapter_config.json's)")
    p.set_defaults(run=run)
