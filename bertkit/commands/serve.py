"""``bertkit serve``: the bert-as-service compatible server (flags as ``bert-serving-start`` spells them too)."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os


def _flag(parser: argparse.ArgumentParser, name: str, *extra: str, **kwargs) -> None:
    """One option spelt ``--max-seq-len``, ``--max_seq_len`` and, as the original, ``-max_seq_len``."""
    spellings = dict.fromkeys([f"--{name.replace('_', '-')}", f"--{name}", f"-{name}", *extra])
    parser.add_argument(*spellings, dest=name, **kwargs)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``bertkit serve``."""
    p = subparsers.add_parser("serve", help="bert-as-service compatible ZMQ server (+ HTTP API and web page)",
                              allow_abbrev=False,
                              description="Serve sentence embeddings to bert-as-service clients (BertClient), "
                                          "over HTTP with --http-port, and a web page at / of the HTTP port.")
    _flag(p, "model_dir", "--model", help="model folder (Hugging Face layout); default: the installed all-MiniLM-L6-v2")
    _flag(p, "max_seq_len", default="25", help="tokens per text incl. [CLS]/[SEP], or NONE for the longest of each "
                                               "batch (default 25)")
    _flag(p, "pooling_layer", type=int, nargs="+", default=[-2],
          help="encoder layer(s) to pool, -1 = last; several are concatenated (default -2)")
    _flag(p, "pooling_strategy", default="REDUCE_MEAN",
          help="NONE, REDUCE_MEAN, REDUCE_MAX, REDUCE_MEAN_MAX, CLS_TOKEN (FIRST_TOKEN), SEP_TOKEN (LAST_TOKEN), "
               "CLS_POOLED (default REDUCE_MEAN)")
    _flag(p, "mask_cls_sep", action="store_true", help="leave [CLS] and [SEP] out of attention and pooling")
    _flag(p, "show_tokens_to_client", action="store_true", help="send each text's tokens with its vectors")
    _flag(p, "cased_tokenization", action="store_true", help="do not lower-case (for cased models)")
    _flag(p, "num_worker", type=int, default=1, help="encoding processes; the cores are divided between them")
    _flag(p, "torch_threads", type=int, default=None,
          help="torch threads per worker (default: the cores divided between the workers)")
    _flag(p, "max_batch_size", type=int, default=256, help="most texts per batch; larger requests are split")
    _flag(p, "priority_batch_size", type=int, default=16,
          help="requests of at most this many texts go ahead of larger ones (default 16)")
    _flag(p, "batch_wait_ms", type=float, default=2.0,
          help="how long a partial batch waits for more requests before it is encoded (default 2 ms)")
    _flag(p, "port", type=int, default=5555, help="port clients push requests to (default 5555)")
    _flag(p, "port_out", type=int, default=5556, help="port results are published on (default 5556)")
    _flag(p, "http_port", type=int, default=None, help="also serve the HTTP API and web page on this port")
    _flag(p, "host", default="127.0.0.1", help="address to bind (default 127.0.0.1; 0.0.0.0 for every interface)")
    _flag(p, "device", default="auto", help="auto (the GPUs when there are any, workers spread over them), cpu, "
                                            "cuda or cuda:N (default auto)")
    _flag(p, "cpu", action="store_true", help="run on the CPU even when a GPU is available (= --device cpu)")
    _flag(p, "adapters", "--adapter", action="append", default=None, metavar="NAME=DIR",
          help="serve this fine-tuned adapter folder on the base model -model_dir (repeat for several; the first is "
               "the default, HTTP requests pick one with adapter_id)")
    _flag(p, "precision", default="fp32", type=str.lower, choices=["fp32", "bf16", "int8"],
          help="fp32 (default), bf16 or int8; falls back to fp32, with a warning, where the CPU lacks native kernels")
    _flag(p, "unpadded", nargs="?", const="repad", default=None, choices=["repad", "loop", "nested"],
          help="pack each batch's tokens without padding (attention per text: repad, the default mode, loop or "
               "nested); embedding strategies only (default: padded batches)")
    _flag(p, "verbose", action="store_true", help="log every request")
    # production flags, spelt as text-embeddings-inference spells them
    _flag(p, "max_batch_tokens", type=int, default=16384, help="most tokens per batch, summed over its texts "
                                                                "(default 16384)")
    _flag(p, "max_client_batch_size", type=int, default=2048, help="most inputs in one HTTP request; more is a 413 "
                                                                   "(default 2048)")
    _flag(p, "max_concurrent_requests", type=int, default=512,
          help="HTTP inference requests in flight; more get 429 + Retry-After (default 512)")
    _flag(p, "payload_limit", type=int, default=2_000_000, help="most bytes in an HTTP body; more is a 413 "
                                                                 "(default 2000000)")
    _flag(p, "api_key", default=os.environ.get("BERTKIT_API_KEY"),
          help="HTTP requests must send 'Authorization: Bearer KEY' (default: $BERTKIT_API_KEY; the ZMQ ports have "
               "no keys: keep them on 127.0.0.1)")
    _flag(p, "auto_truncate", action=argparse.BooleanOptionalAction, default=True,
          help="TEI / OpenAI routes cut inputs longer than the model's max_seq_length unless a request says "
               "truncate=false (default on)")
    _flag(p, "graceful_timeout_s", type=float, default=30.0,
          help="on SIGTERM, seconds that requests in flight get to be answered (default 30)")
    ray = p.add_argument_group("Ray Serve (past one machine)")
    ray.add_argument("--ray", action="store_true", help="serve the HTTP routes from Ray Serve replicas (see "
                                                         "docs/serving-production.md)")
    ray.add_argument("--address", default=None, help="Ray cluster to join, e.g. ray://head:10001 (default: a "
                                                     "local cluster)")
    ray.add_argument("--replicas", type=int, default=1, help="encoder replicas (default 1)")
    ray.add_argument("--max-replicas", type=int, default=None, help="autoscale the encoders up to this many")
    p.set_defaults(run=run_serve)


def run_serve(args: argparse.Namespace) -> None:
    """Check the settings, start, and serve until SIGTERM / SIGINT / a TERMINATION request."""
    from ..assets import default_model_dir
    from ..serving import BertServer, ServerSettings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.verbose:
        logging.getLogger("bertkit").setLevel(logging.DEBUG)
    names = {f.name for f in dataclasses.fields(ServerSettings)}
    values = {name: value for name, value in vars(args).items() if name in names}
    settings = ServerSettings(**{**values, "model_dir": args.model_dir or default_model_dir()})
    if args.ray:
        from ..serving.ray_serve import serve_on_ray

        serve_on_ray(settings.checked(), args.replicas, args.address, args.max_replicas)
        return
    BertServer(settings).run()
