"""``bertkit merge-adapter ADAPTER_DIR OUT``: a LoRA adapter folded into its base model, saved as a plain folder."""

from __future__ import annotations

import argparse
import sys

from .train_tokenizer import TOKENIZER_FILES

# what a merged folder holds; an earlier model's weights left beside the new ones would be loaded instead of them
MODEL_FILES = ("config.json", "model.safetensors", "pytorch_model.bin", *TOKENIZER_FILES)


def run(args: argparse.Namespace) -> None:
    """Merge and report where the folder went."""
    from pathlib import Path

    from ..atomic import claim_output_folder
    from ..finetuning.adapter_folders import merge_adapter

    if Path(args.output).resolve() == Path(args.adapter).resolve():
        raise ValueError(f"the output {args.output} is the adapter folder itself: write the merged model elsewhere")
    claim_output_folder(args.output, args.overwrite, MODEL_FILES)
    print(f"wrote {merge_adapter(args.adapter, args.output, args.base_model)}", file=sys.stderr)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("merge-adapter", help="fold a LoRA adapter folder into its base model's weights")
    p.add_argument("adapter", help="an adapter folder (adapter_config.json + adapter_model.safetensors)")
    p.add_argument("output", help="where to write the merged model folder")
    p.add_argument("--overwrite", action="store_true", help="replace a model already in OUTPUT (else: refused)")
    p.add_argument("--base-model", help="the base model folder (default: adapter_config.json's)")
    p.set_defaults(run=run)
