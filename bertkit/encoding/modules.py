"""A sentence-transformers folder: ``modules.json`` read into modules bertkit runs, and written back.

A folder is a pipeline: Transformer (the BERT in the root folder) → Pooling (``1_Pooling/config.json``) → any
Dense (``2_Dense``: a linear layer and an activation) → Whitening or Flow (bertkit's own, see whitening.py and
flow.py) → Normalize.
sentence-transformers names module types by their Python path, which moved between its versions
(``sentence_transformers.models.Dense``, ``sentence_transformers.base.modules.dense.Dense``): the last name decides.
Any other type is refused by name, since running a pipeline without one of its modules gives wrong vectors.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..checkpoint import find_weights, read_state_dict, save_tensors, write_json
from .flow import Flow
from .pooling import Pooling, parse_modes
from .whitening import Whitening

MODULES_FILE = "modules.json"
ST_CONFIG_FILE = "sentence_bert_config.json"
PROMPTS_FILE = "config_sentence_transformers.json"
KNOWN_ST_MODULES = ("Transformer", "Pooling", "Dense", "Normalize")
WHITENING_TYPE = "bertkit.encoding.Whitening"
FLOW_TYPE = "bertkit.encoding.Flow"
# What bertkit writes: the short paths every sentence-transformers version resolves (2.x through 6.x).
WRITTEN_TYPES = {name: f"sentence_transformers.models.{name}" for name in KNOWN_ST_MODULES} | {
    "Whitening": WHITENING_TYPE, "Flow": FLOW_TYPE}
# sentence-transformers' pooling config before 5.x: one boolean per mode, concatenated in this order.
LEGACY_POOLING_KEYS = {"pooling_mode_cls_token": "cls", "pooling_mode_max_tokens": "max",
                       "pooling_mode_mean_tokens": "mean", "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
                       "pooling_mode_weightedmean_tokens": "weightedmean", "pooling_mode_lasttoken": "lasttoken"}


def module_kind(type_name: str) -> str:
    """The kind of module a ``modules.json`` type names (Transformer, Pooling, Dense, Normalize, Whitening, Flow)."""
    if type_name in (WHITENING_TYPE, FLOW_TYPE):
        return type_name.rpartition(".")[2]
    package, _, name = str(type_name).rpartition(".")
    if package.split(".")[0] == "sentence_transformers" and name in KNOWN_ST_MODULES:
        return name
    raise ValueError(f"modules.json names a module of type {type_name!r}, which bertkit cannot run; it runs "
                     f"sentence-transformers' {', '.join(KNOWN_ST_MODULES)}, {WHITENING_TYPE} and {FLOW_TYPE}")


def activation_module(name: str | None) -> nn.Module:
    """``"torch.nn.modules.activation.Tanh"`` → ``nn.Tanh()``; only torch's own activations are taken."""
    if name is None:
        return nn.Identity()
    cls = getattr(nn, str(name).rpartition(".")[2], None)
    if not str(name).startswith("torch.") or not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise ValueError(f"Dense activation_function {name!r} is not a torch.nn module; bertkit imports no other "
                         "code from a model folder")
    return cls()


def activation_name(module: nn.Module) -> str:
    """The name sentence-transformers writes for an activation (its class's full path)."""
    return f"{type(module).__module__}.{type(module).__name__}"


class Dense(nn.Module):
    """sentence-transformers' Dense: ``activation(linear(x))`` (plus ``x`` or a projection of it if residual)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 activation_function: str | None = "torch.nn.modules.activation.Tanh", use_residual: bool = False):
        super().__init__()
        self.in_features, self.out_features, self.use_residual = in_features, out_features, use_residual
        self.linear = nn.Linear(in_features, out_features, bias=bias)
        self.activation_function = activation_module(activation_function)
        if use_residual and in_features != out_features:
            self.residual = nn.Linear(in_features, out_features, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.activation_function(self.linear(x))
        if self.use_residual:
            out = out + (x if self.in_features == self.out_features else self.residual(x))
        return out

    def config(self) -> dict[str, Any]:
        """The ``config.json`` sentence-transformers writes for this layer."""
        values = {"in_features": self.in_features, "out_features": self.out_features,
                  "bias": self.linear.bias is not None,
                  "activation_function": activation_name(self.activation_function)}
        return values | ({"use_residual": True} if self.use_residual else {})

    @classmethod
    def load(cls, folder: Path) -> Dense:
        """Read ``config.json`` and the weights of a Dense folder; sizes that disagree are a clear error."""
        config = read_json(folder / "config.json")
        for key in ("module_input_name", "module_output_name"):
            if config.get(key, "sentence_embedding") != "sentence_embedding":
                raise ValueError(f"{folder}: a Dense on {config[key]!r} (not the sentence embedding) is not supported")
        try:
            dense = cls(int(config["in_features"]), int(config["out_features"]), bool(config.get("bias", True)),
                        config.get("activation_function", "torch.nn.modules.activation.Tanh"),
                        bool(config.get("use_residual", False)))
        except KeyError as missing:
            raise ValueError(f"{folder}/config.json lacks {missing}") from None
        load_exact(dense, read_state_dict(find_weights(folder)), folder)
        return dense

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        write_json(folder / "config.json", self.config())
        save_tensors(self.state_dict(), folder)


class Normalize(nn.Module):
    """Scale each vector to unit length (cosine similarity becomes a dot product)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(x, p=2, dim=-1)


def load_exact(module: nn.Module, state: dict[str, torch.Tensor], folder: Path) -> None:
    """Load tensors that must match the module's names and shapes one for one."""
    expected = module.state_dict()
    problems = [f"{k} is missing" for k in expected if k not in state]
    problems += [f"{k} has shape {tuple(state[k].shape)}, the config says {tuple(v.shape)}"
                 for k, v in expected.items() if k in state and state[k].shape != v.shape]
    if problems:
        raise ValueError(f"the weights in {folder} do not match its config.json: {'; '.join(problems)}")
    module.load_state_dict({k: state[k] for k in expected})


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from a file; anything else is a clear error."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing")
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(value, dict | list):
        raise ValueError(f"{path} must hold a JSON object")
    return value


def pooling_from_config(config: dict[str, Any]) -> tuple[tuple[str, ...], int | None, bool]:
    """(modes, input dimension, include_prompt) from a ``1_Pooling/config.json`` of any version."""
    if config.get("pooling_mode") is not None:  # sentence-transformers ≥ 5.x, or a 2.x constructor argument
        modes = parse_modes(config["pooling_mode"])
    else:
        modes = tuple(mode for key, mode in LEGACY_POOLING_KEYS.items() if config.get(key)) or ("mean",)
    dimension = config.get("embedding_dimension", config.get("word_embedding_dimension"))
    return modes, dimension, bool(config.get("include_prompt", True))


def pooling_config(pooling: Pooling, dimension: int) -> dict[str, Any]:
    """The pooling config in the legacy form every version reads, or the new one when it cannot say the order."""
    legacy_order = [mode for mode in LEGACY_POOLING_KEYS.values() if mode in pooling.modes]
    if legacy_order != list(pooling.modes):
        return {"embedding_dimension": dimension, "pooling_mode": list(pooling.modes),
                "include_prompt": pooling.include_prompt}
    flags = {key: mode in pooling.modes for key, mode in LEGACY_POOLING_KEYS.items()}
    return {"word_embedding_dimension": dimension, **flags, "include_prompt": pooling.include_prompt}


@dataclass
class FolderLayout:
    """What a sentence-transformers folder says beyond the BERT itself."""

    transformer_dir: Path
    pooling: Pooling = field(default_factory=Pooling)
    token_dimension: int | None = None  # the hidden size the pooling config was written for
    modules: list[nn.Module] = field(default_factory=list)  # after pooling: Dense, Whitening / Flow, Normalize
    max_seq_length: int | None = None
    do_lower_case: bool = False
    prompts: dict[str, str] = field(default_factory=dict)
    default_prompt_name: str | None = None
    similarity_fn_name: str | None = None


def read_layout(folder: str | os.PathLike) -> FolderLayout:
    """Read ``modules.json`` and the files it points to; a plain Hugging Face folder gets mean pooling alone."""
    folder = Path(folder)
    layout = FolderLayout(transformer_dir=folder)
    if (folder / MODULES_FILE).is_file():
        entries = read_json(folder / MODULES_FILE)
        if not isinstance(entries, list) or not all(isinstance(e, dict) and "type" in e for e in entries):
            raise ValueError(f"{folder / MODULES_FILE} must be a list of {{'type': ..., 'path': ...}} entries")
        kinds = [module_kind(e["type"]) for e in entries]
        if kinds[:2] != ["Transformer", "Pooling"] or "Transformer" in kinds[1:] or "Pooling" in kinds[2:]:
            raise ValueError(f"{folder / MODULES_FILE} lists {kinds}; bertkit runs a Transformer, then one Pooling, "
                             "then Dense / Whitening / Flow / Normalize modules")
        paths = [folder / e.get("path", "") for e in entries]
        if any(folder.resolve() not in (p.resolve(), *p.resolve().parents) for p in paths):
            raise ValueError(f"{folder / MODULES_FILE} points outside the model folder")
        layout.transformer_dir = paths[0]
        modes, layout.token_dimension, include_prompt = pooling_from_config(read_json(paths[1] / "config.json"))
        layout.pooling = Pooling(modes, include_prompt)
        loaders = {"Dense": Dense.load, "Whitening": Whitening.load, "Flow": Flow.load,
                   "Normalize": lambda path: Normalize()}
        layout.modules = [loaders[kind](path) for kind, path in zip(kinds[2:], paths[2:], strict=True)]
    st_config = layout.transformer_dir / ST_CONFIG_FILE
    if st_config.is_file():
        values = read_json(st_config)
        task = values.get("transformer_task", "feature-extraction")
        if task != "feature-extraction":
            raise ValueError(f"{st_config} asks for transformer_task {task!r}; bertkit embeds with "
                             "'feature-extraction' (the last hidden state) only")
        layout.max_seq_length = values.get("max_seq_length")
        layout.do_lower_case = bool(values.get("do_lower_case", False))
    if (folder / PROMPTS_FILE).is_file():
        values = read_json(folder / PROMPTS_FILE)
        layout.prompts = {str(k): str(v) for k, v in (values.get("prompts") or {}).items()}
        layout.default_prompt_name = values.get("default_prompt_name")
        layout.similarity_fn_name = values.get("similarity_fn_name")
        if layout.default_prompt_name is not None and layout.default_prompt_name not in layout.prompts:
            raise ValueError(f"{folder / PROMPTS_FILE}: default_prompt_name {layout.default_prompt_name!r} is not "
                             f"among its prompts {sorted(layout.prompts)}")
    return layout


def check_sizes(pooled: int, modules: list[nn.Module], where: str = "the pipeline") -> int:
    """The output size of ``modules`` fed ``pooled``-d vectors; a module expecting another size is a clear error."""
    size = pooled
    for index, module in enumerate(modules):
        if isinstance(module, Dense | Whitening | Flow):
            if module.in_features != size:
                raise ValueError(f"{where}: module {index + 2} ({type(module).__name__}) takes {module.in_features}-d "
                                 f"vectors, but the module before it gives {size}-d ones")
            size = module.out_features
    return size


def write_layout(folder: Path, layout: FolderLayout, hidden_size: int, max_seq_length: int) -> None:
    """Write ``modules.json``, the pooling / Dense / Whitening / Flow folders and the two settings files."""
    entries = [{"idx": 0, "name": "0", "path": "", "type": WRITTEN_TYPES["Transformer"]}]
    pipeline: list[nn.Module] = [layout.pooling, *layout.modules]
    for idx, module in enumerate(pipeline, start=1):
        kind = type(module).__name__
        path = f"{idx}_{kind}"
        entries.append({"idx": idx, "name": str(idx), "path": path, "type": WRITTEN_TYPES[kind]})
        (folder / path).mkdir(parents=True, exist_ok=True)
        if isinstance(module, Pooling):
            write_json(folder / path / "config.json", pooling_config(module, hidden_size))
        elif isinstance(module, Dense | Whitening | Flow):
            module.save(folder / path)
        else:
            write_json(folder / path / "config.json", {})
    write_json(folder / MODULES_FILE, entries)
    write_json(folder / ST_CONFIG_FILE, {"max_seq_length": max_seq_length, "do_lower_case": layout.do_lower_case})
    settings = {"prompts": layout.prompts, "default_prompt_name": layout.default_prompt_name}
    if layout.similarity_fn_name:
        settings["similarity_fn_name"] = layout.similarity_fn_name
    write_json(folder / PROMPTS_FILE, settings)


__all__ = ["Dense", "FolderLayout", "Normalize", "check_sizes", "module_kind", "read_layout", "write_layout"]
