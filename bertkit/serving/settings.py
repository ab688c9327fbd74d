"""The server's settings: bert-as-service's flags and defaults, checked before anything starts."""

from __future__ import annotations

import dataclasses
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from ..config import BertConfig
from ..training.device import check_spec, resolve_device
from .strategies import STRATEGY_IDS, checked_strategy

PRECISIONS = ("fp32", "bf16", "int8")  # as bertkit.encoding.precision has them (checked here without torch)
UNPADDED_MODES = ("repad", "loop", "nested")  # bertkit.model.unpadded's attention modes


@dataclass
class ServerSettings:
    """What ``bertkit serve`` runs with; field names are bert-as-service's flag names."""

    model_dir: Path
    max_seq_len: int | None = 25
    pooling_layer: list[int] = field(default_factory=lambda: [-2])
    pooling_strategy: str = "REDUCE_MEAN"
    mask_cls_sep: bool = False
    show_tokens_to_client: bool = False
    cased_tokenization: bool = False
    num_worker: int = 1
    torch_threads: int | None = None  # per worker; None: the cores divided between the workers
    max_batch_size: int = 256
    priority_batch_size: int = 16
    batch_wait_ms: float = 2.0
    port: int = 5555
    port_out: int = 5556
    http_port: int | None = None
    host: str = "127.0.0.1"
    cpu: bool = False  # bert-as-service's flag: device cpu
    device: str = "auto"  # auto | cpu | cuda | cuda:N; auto and cuda spread the workers over the GPUs
    adapters: dict[str, Path] | list[str] | None = None  # NAME=DIR adapter folders served on model_dir (the base)
    precision: str = "fp32"  # fp32, bf16 or int8 (bertkit.encoding.precision); a fallback to fp32 is a warning
    unpadded: str | None = None  # repad | loop | nested: each batch's tokens packed without padding; None: padded
    verbose: bool = False
    # production settings, named as text-embeddings-inference names its flags
    max_batch_tokens: int = 16384  # tokens per batch, summed over its texts
    max_client_batch_size: int = 2048  # inputs in one HTTP request (OpenAI's own limit); more is a 413
    max_concurrent_requests: int = 512  # HTTP encoding requests in flight; more get 429 + Retry-After
    payload_limit: int = 2_000_000  # bytes of one HTTP request body; more is a 413
    api_key: str | None = None  # HTTP requests must carry ``Authorization: Bearer <key>``
    auto_truncate: bool = True  # TEI / OpenAI routes cut long inputs unless a request says truncate=false
    graceful_timeout_s: float = 30.0  # on SIGTERM, how long requests in flight may take to be answered

    def checked(self) -> ServerSettings:
        """A copy with canonical values; bad values (and ones the original would hang on) are a clear error."""
        folder = Path(self.model_dir)
        if not folder.is_dir():
            raise FileNotFoundError(f"no such model folder: {folder}")
        adapters = parse_adapters(self.adapters, self.pooling_strategy)
        # a PEFT adapter folder keeps its task's config (the base model's shape, labels) in task_config.json
        config_file = "task_config.json" if (folder / "adapter_config.json").is_file() else "config.json"
        if not (folder / config_file).is_file():
            raise FileNotFoundError(f"model folder {folder} has no {config_file}")
        if not (folder / "vocab.txt").is_file() and not (folder / "tokenizer.json").is_file():
            raise FileNotFoundError(f"model folder {folder} has no vocab.txt and no tokenizer.json")
        config = BertConfig.from_json_file(folder / config_file)
        positions, depth = config.max_position_embeddings, config.num_hidden_layers
        max_seq_len = parse_max_seq_len(self.max_seq_len)
        if max_seq_len is not None and not 3 <= max_seq_len <= positions:
            raise ValueError(f"max_seq_len={max_seq_len} must lie in [3, {positions}]: the model has "
                             f"{positions} positions (use NONE for the longest text of each batch)")
        layers = list(self.pooling_layer)
        if not layers or any(not -depth <= i < depth for i in layers):
            raise ValueError(f"pooling_layer {layers} must be encoder layers in [{-depth}, {depth - 1}] "
                             f"(-1 = last of {depth}, -2 = second to last)")
        for name in ("num_worker", "max_batch_size", "priority_batch_size", "torch_threads", "max_batch_tokens",
                     "max_client_batch_size", "max_concurrent_requests", "payload_limit"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.batch_wait_ms < 0:
            raise ValueError(f"batch_wait_ms must be >= 0, got {self.batch_wait_ms}")
        if self.graceful_timeout_s < 0:
            raise ValueError(f"graceful_timeout_s must be >= 0, got {self.graceful_timeout_s}")
        if self.api_key is not None and not self.api_key.strip():
            raise ValueError("api_key is empty: give a secret, or leave --api-key out")
        device = check_spec(self.device)
        if self.cpu and device not in ("auto", "cpu"):
            raise ValueError(f"--cpu and --device {device} contradict each other: give one")
        device = "cpu" if self.cpu else device
        resolve_device(device)  # a GPU asked for where there is none is refused before any worker starts
        if str(self.precision).lower() not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        check_unpadded(self.unpadded, self.pooling_strategy, self.mask_cls_sep)
        ports = [p for p in (self.port, self.port_out, self.http_port) if p is not None]
        if any(not 0 < p < 65536 for p in ports) or len(set(ports)) != len(ports):
            raise ValueError(f"port, port_out and http_port must be distinct ports in 1..65535, got {ports}")
        checked = dataclasses.replace(self, model_dir=folder, max_seq_len=max_seq_len, pooling_layer=layers,
                                      pooling_strategy=checked_strategy(self.pooling_strategy), device=device,
                                      cpu=device == "cpu", adapters=adapters, precision=str(self.precision).lower())
        if (too_many := checked.oversubscription()) is not None:
            warnings.warn(too_many, RuntimeWarning, stacklevel=2)
        return checked

    def oversubscription(self) -> str | None:
        """What is wrong when the CPU workers' threads outnumber the cores this process may run on, else None.

        torch's OpenMP threads spin-wait for each other: with more threads than cores, each waits on one that is
        not running (an encode beside one busy process on 2 cores ran up to 9× slower)."""
        if resolve_device(self.device).type != "cpu":
            return None
        cores = len(os.sched_getaffinity(0))
        threads = self.threads_per_worker()
        if self.num_worker * threads <= cores:
            return None
        workers = min(self.num_worker, cores)
        from_env = " (or unset OMP_NUM_THREADS)" if os.environ.get("OMP_NUM_THREADS") and not self.torch_threads else ""
        return (f"{self.num_worker} worker(s) × {threads} torch thread(s) = {self.num_worker * threads} threads on "
                f"{cores} core(s): OpenMP threads spin-wait on each other and every request slows down; give "
                f"--num_worker {workers} with --torch_threads {cores // workers}"
                f"{from_env}")

    def threads_per_worker(self) -> int:
        """``torch_threads``, else ``OMP_NUM_THREADS`` (as torch itself reads it), else the cores shared out."""
        if self.torch_threads:
            return self.torch_threads
        omp = os.environ.get("OMP_NUM_THREADS", "").strip()
        if omp.isdigit() and int(omp) > 0:
            return int(omp)
        return max(1, len(os.sched_getaffinity(0)) // self.num_worker)

    def as_reported(self) -> dict:
        """The settings as the original reports its arguments (pooling_strategy as the enum's number)."""
        values = dataclasses.asdict(self)
        values["api_key"] = "<set>" if self.api_key else None  # SHOW_CONFIG answers anyone on the ZMQ port
        values["model_dir"] = str(self.model_dir)
        values["adapters"] = {name: str(path) for name, path in (self.adapters or {}).items()} or None
        values["pooling_strategy"] = STRATEGY_IDS[self.pooling_strategy]
        values["pooling_strategy_name"] = self.pooling_strategy
        return values


def check_unpadded(mode: str | None, strategy: str, mask_cls_sep: bool) -> None:
    """Refuse an unpadded setting the server could not honour (rather than serve padded batches silently)."""
    if mode is None:
        return
    if mode not in UNPADDED_MODES:
        raise ValueError(f"unpadded must be one of {', '.join(UNPADDED_MODES)}, got {mode!r}")
    from .strategies import FINE_TUNED

    if checked_strategy(strategy) in FINE_TUNED:
        raise ValueError(f"unpadded batches serve embeddings: the fine-tuned heads of {strategy} run padded")
    if mask_cls_sep:
        raise ValueError("mask_cls_sep hides [CLS] / [SEP] from attention inside a sequence, which packed batches "
                         "cannot express: leave out one of -mask_cls_sep and -unpadded")


def parse_max_seq_len(value: int | str | None) -> int | None:
    """An int, or ``None`` from ``None``/``"NONE"`` (any case)."""
    if value is None or (isinstance(value, str) and value.strip().upper() == "NONE"):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"max_seq_len must be an integer or NONE, got {value!r}") from None


def parse_adapters(adapters: dict[str, Path] | list[str] | None, strategy: str) -> dict[str, Path] | None:
    """``["rt=DIR", "DIR2", ...]`` (a bare folder is named after itself) → {name: folder}, each an adapter folder
    of a fine-tuned task; the first is the default adapter."""
    if not adapters:
        return None
    from .strategies import FINE_TUNED

    if checked_strategy(strategy) not in FINE_TUNED:
        raise ValueError("adapters are fine-tuned task heads: serve them with -pooling_strategy CLASSIFICATION or "
                         f"REGRESSION, not {strategy}")
    pairs = adapters.items() if isinstance(adapters, dict) else [
        entry.split("=", 1) if "=" in entry else (Path(entry).name, entry) for entry in adapters]
    named: dict[str, Path] = {}
    for name, folder in pairs:
        name, folder = str(name).strip(), Path(folder)
        if not name or "@" in name or name in named:
            raise ValueError(f"adapter name {name!r} must be non-empty, without '@', and unique")
        if not (folder / "adapter_config.json").is_file():
            raise FileNotFoundError(f"adapter {name!r}: {folder} is not an adapter folder (no adapter_config.json; "
                                    "serve a `bertkit finetune peft=...` run's best/ folder)")
        named[name] = folder
    return named
