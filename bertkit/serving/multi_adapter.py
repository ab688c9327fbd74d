"""Several fine-tuned adapters on one base model (``bertkit serve --model BASE --adapter rt=DIR --adapter sst=DIR``).

Each adapter folder (a PEFT run's ``best/``: the adapter and its task head) becomes its own classifier on the base
model; weights equal across them — the frozen base — are stored once, so N adapters cost one base model plus their
small deltas. A request names its adapter (the HTTP routes' ``adapter_id``); bert-as-service clients, whose protocol
has no such field, get the default one (the first given). Batches never mix adapters: the adapter is part of the
batch's task (``classify@rt``), so the batcher keeps separate queues for each.

LoRA stays unmerged here (merging would change the base the other adapters share); one adapter served alone with
``--model ADAPTER_DIR`` is merged into the weights instead (``fine_tuned.py``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from .fine_tuned import FineTunedServingModel
from .protocol import split_task
from .settings import ServerSettings


def share_equal_weights(models: list[nn.Module]) -> int:
    """Make every model use the first model's tensor wherever a parameter or buffer of the same name holds the same
    values (the frozen base); returns the bytes saved."""
    first = dict(models[0].named_parameters()) | dict(models[0].named_buffers())
    saved = 0
    for model in models[1:]:
        tensors = list(model.named_parameters(remove_duplicate=False)) + list(model.named_buffers())
        for name, tensor in tensors:
            twin = first.get(name)
            if twin is None or twin is tensor or twin.shape != tensor.shape or twin.dtype != tensor.dtype:
                continue
            if not torch.equal(twin, tensor):
                continue
            owner_name, _, attribute = name.rpartition(".")
            owner = model.get_submodule(owner_name)
            if isinstance(tensor, nn.Parameter):
                setattr(owner, attribute, twin)
            else:
                owner.register_buffer(attribute, twin)
            saved += tensor.numel() * tensor.element_size()
    return saved


class AdapterServingModel:
    """A classifier per adapter on one shared base model; ``run`` picks the adapter a batch's task names."""

    def __init__(self, models: dict[str, FineTunedServingModel], shared_bytes: int = 0):
        self.models = models
        self.default = next(iter(models))
        self.shared_bytes = shared_bytes
        self.model = models[self.default].predictor.model  # what the worker reports (hidden size)

    @classmethod
    def from_settings(cls, settings: ServerSettings, device: str = "cpu") -> AdapterServingModel:
        """Load every adapter of ``settings.adapters`` on the base model ``settings.model_dir``."""
        base = Path(settings.model_dir)
        models = {name: FineTunedServingModel.load(Path(folder), settings, device, base_model=base, merge=False)
                  for name, folder in settings.adapters.items()}
        saved = share_equal_weights([m.predictor.model for m in models.values()])
        return cls(models, saved)

    def adapter(self, name: str | None) -> FineTunedServingModel:
        """The model of adapter ``name`` (None: the default); an unknown name is a clear error."""
        if name is None:
            return self.models[self.default]
        if name not in self.models:
            raise ValueError(f"unknown adapter {name!r}; this server has {', '.join(self.models)}")
        return self.models[name]

    @property
    def dimension(self) -> int:
        """Columns of the default adapter's replies (bert-as-service clients see this one)."""
        return self.models[self.default].dimension

    @property
    def labels(self) -> list[str]:
        """The default adapter's label names."""
        return self.models[self.default].labels

    @property
    def max_length(self) -> int:
        """The default adapter's tokens per input."""
        return self.models[self.default].max_length

    @property
    def adapters(self) -> dict[str, dict]:
        """Per adapter: its labels and tokens per input (the HTTP front names labels by them)."""
        return {name: {"labels": m.labels, "max_length": m.max_length, "dimension": m.dimension}
                for name, m in self.models.items()}

    def encode(self, items: list) -> tuple[np.ndarray, list]:
        """bert-as-service encode with the default adapter (the worker's warm-up uses it too)."""
        return self.adapter(None).encode(items)

    def run(self, task: str, items: list) -> tuple[np.ndarray, list | None]:
        """One batch of one adapter's task."""
        base_task, name = split_task(task)
        return self.adapter(name).run(base_task, items)
