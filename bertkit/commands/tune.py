"""``bertkit tune --config search.yaml``: hyper-parameter search on Ray Tune (local, or ``--address`` a cluster)."""

from __future__ import annotations

import argparse
import json


def run(args: argparse.Namespace) -> None:
    from ..finetuning.tune import SearchSpec, run_search

    overrides = {k: v for k, v in (("address", args.address), ("output_dir", args.output_dir)) if v}
    spec = SearchSpec.from_yaml(args.config, overrides)
    best = run_search(spec)
    print(json.dumps({"best": best, "results": f"{spec.output_dir}/trials.csv", "best_config":
                      f"{spec.output_dir}/best.yaml", "plot": f"{spec.output_dir}/search.png"}, indent=2))


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("tune", help="hyper-parameter search over fine-tuning options (Ray Tune)")
    p.add_argument("--config", required=True, help="a search YAML (see bertkit.finetuning.tune)")
    p.add_argument("--address", help="a running Ray cluster (ray://host:10001 or auto); default: local")
    p.add_argument("--output-dir", help="where trials.csv, best.yaml and search.png go")
    p.set_defaults(run=run)
