"""Sentence embeddings: texts → vectors, through the pipeline a sentence-transformers folder describes.

``SentenceEncoder.from_pretrained(folder).encode(texts)`` runs what ``SentenceTransformer(folder).encode(texts)``
runs: the folder's prompt, lower-casing and ``max_seq_length``, its pooling mode(s), Dense layers, whitening and
Normalize (see modules.py). Batches are sorted by token count so that they carry little padding (batching.py).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..assets import default_model_dir
from ..model import AutoModel, EncoderModel
from ..model.unpadded import ATTENTION_MODES, pack, unpadded_forward, unpadded_unsupported
from ..tokenization import AutoTokenizer, BertTokenizer
from ..training.device import resolve_device
from .batching import pad_batch, run_sorted
from .modules import FolderLayout, Normalize, check_sizes, read_layout, write_layout
from .pooling import Pooling, parse_modes
from .precision import apply_precision, autocast, checked_precision, compile_model
from .unpadded import first_rows, packed_pool
from .whitening import Whitening, fit_whitening


class SentenceEncoder(nn.Module):
    """An encoder of the family, its tokenizer and the modules after it (pooling, Dense, whitening, Normalize):
    texts → vectors.

    ``encoder.pooling`` (e.g. ``"mean"``, several modes joined by '+'), ``encoder.normalize`` and
    ``encoder.max_seq_length`` are the folder's settings; ``encode``'s arguments override them for one call.
    As an ``nn.Module`` its ``forward(input_ids, attention_mask)`` is differentiable, for bi-encoder training.
    """

    def __init__(self, model: EncoderModel, tokenizer: BertTokenizer, max_length: int | None = None,
                 layout: FolderLayout | None = None):
        super().__init__()
        self.model = model.eval()
        self.tokenizer = tokenizer
        layout = layout or FolderLayout(transformer_dir=Path("."))
        self.pool = layout.pooling
        self.head = nn.ModuleList(layout.modules)
        positions = model.config.max_tokens
        self.max_seq_length = min(max_length or layout.max_seq_length or tokenizer.model_max_length, positions)
        self.do_lower_case = layout.do_lower_case
        self.prompts, self.default_prompt_name = dict(layout.prompts), layout.default_prompt_name
        self.similarity_fn_name = layout.similarity_fn_name
        if layout.token_dimension not in (None, model.config.hidden_size):
            raise ValueError(f"the folder's pooling takes {layout.token_dimension}-d token vectors, but the model's "
                             f"hidden size is {model.config.hidden_size}")
        check_sizes(self.pooled_dimension, list(self.head))
        self.unpadded: str | None = None  # the attention mode of unpadded batches (use_unpadded), None: padded
        self.eval()

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike | None = None, device: str | torch.device | None = None,
                        precision: str = "fp32", compile: bool = False, unpadded: bool | str = False
                        ) -> SentenceEncoder:
        """Load a sentence-transformers or Hugging Face folder (default: the installed MiniLM package) onto
        ``device`` (auto | cpu | cuda | cuda:N; None: the CPU).

        ``precision`` (``"fp32"``, ``"bf16"``, ``"int8"``: see precision.py) falls back to fp32, with a warning,
        where this machine has no native kernels for it; ``compile=True`` runs the model through ``torch.compile``
        and warms it up once; ``unpadded`` (True or an attention mode) packs each batch's tokens without padding
        (see :meth:`use_unpadded`).
        """
        precision = checked_precision(precision)
        folder = Path(folder) if folder is not None else default_model_dir()
        if not folder.is_dir():
            raise FileNotFoundError(f"no such model folder: {folder} (bertkit loads local folders, not hub names)")
        layout = read_layout(folder)
        model = AutoModel.from_pretrained(layout.transformer_dir)  # any architecture of the family
        encoder = cls(model, AutoTokenizer.from_pretrained(layout.transformer_dir), layout=layout)
        encoder = encoder.to(resolve_device(device)) if device is not None else encoder
        apply_precision(encoder.model, precision, encoder.tokenizer)
        encoder.use_unpadded(unpadded)
        if compile:
            compile_model(encoder.model)
            encoder.encode(["a warm-up sentence", "and a second, longer one, so that the batch is padded"])
        return encoder

    @property
    def precision(self) -> str:
        """The precision the model runs in: ``"fp32"``, ``"bf16"`` or ``"int8"``."""
        return getattr(self.model, "inference_precision", "fp32")

    def use_unpadded(self, mode: bool | str = True) -> None:
        """Encode batches unpadded (``bertkit.model.unpadded``): the tokens packed without padding, attention per
        sequence (``True``: ``"repad"``, or one of ``ATTENTION_MODES``), pooling from the packed rows; ``False``:
        padded batches. Equal to the padded path to float rounding; a model it cannot run is a clear error."""
        if mode is False or mode is None:
            self.unpadded = None
            return
        mode = "repad" if mode is True else mode
        if mode not in ATTENTION_MODES:
            raise ValueError(f"unpadded must be True, False or one of {ATTENTION_MODES}, got {mode!r}")
        if reason := unpadded_unsupported(self.model):
            raise ValueError(f"unpadded batches are not available for this model: {reason}")
        self.unpadded = mode

    def save_pretrained(self, folder: str | os.PathLike) -> Path:
        """Write the folder sentence-transformers writes (weights, vocab, modules.json, pooling, Dense, settings)."""
        folder = Path(folder)
        self.model.save_pretrained(folder, tokenizer=self.tokenizer)
        layout = FolderLayout(folder, self.pool, None, list(self.head), self.max_seq_length, self.do_lower_case,
                              self.prompts, self.default_prompt_name, self.similarity_fn_name)
        write_layout(folder, layout, self.model.config.hidden_size, self.max_seq_length)
        return folder

    # -- the folder's settings ---------------------------------------------------------------------------------
    @property
    def pooling(self) -> str:
        """The pooling mode(s): ``"mean"``, ``"cls"``, … (several joined by '+', concatenated in that order)."""
        return self.pool.strategy

    @pooling.setter
    def pooling(self, value: str) -> None:
        pool = Pooling(parse_modes(value), self.pool.include_prompt)
        check_sizes(len(pool.modes) * self.model.config.hidden_size, list(self.head))
        self.pool = pool

    @property
    def normalize(self) -> bool:
        """Whether the folder ends its vectors with Normalize (unit length)."""
        return any(isinstance(m, Normalize) for m in self.head)

    @normalize.setter
    def normalize(self, value: bool) -> None:
        kept = [m for m in self.head if not isinstance(m, Normalize)]
        self.head = nn.ModuleList(kept + [Normalize()] * bool(value))

    @property
    def max_length(self) -> int:
        """The old name of ``max_seq_length``."""
        return self.max_seq_length

    @property
    def pooled_dimension(self) -> int:
        return len(self.pool.modes) * self.model.config.hidden_size

    @property
    def dimension(self) -> int:
        """Size of one embedding from the folder's pipeline."""
        return check_sizes(self.pooled_dimension, list(self.head))

    @property
    def device(self) -> torch.device:
        """Where the model's weights live."""
        return next(self.model.parameters()).device

    # -- texts → ids -------------------------------------------------------------------------------------------
    def resolve_prompt(self, prompt: str | None = None, prompt_name: str | None = None) -> str:
        """The prompt a call uses: ``prompt``, else the named one, else the folder's default, else none."""
        if prompt is not None and prompt_name is not None:
            raise ValueError("give prompt or prompt_name, not both")
        if prompt_name is not None:
            if prompt_name not in self.prompts:
                raise ValueError(f"no prompt named {prompt_name!r}; this model has {sorted(self.prompts)}")
            return self.prompts[prompt_name]
        if prompt is None and self.default_prompt_name is not None:
            return self.prompts[self.default_prompt_name]
        return prompt or ""

    def tokenize(self, texts: Sequence[str], prompt: str = "", max_length: int | None = None,
                 truncate: bool = True) -> tuple[list[list[int]], int]:
        """Ids of ``prompt + text`` for each text (lower-cased if the folder says so), and the prompt's length.

        The prompt's length counts ``[CLS]`` and the prompt's tokens: what pooling leaves out under
        ``include_prompt=False``, as sentence-transformers measures it.
        """
        max_length = self._checked_max_length(max_length)
        case = str.lower if self.do_lower_case else str
        ids = [self.tokenizer.encode(case(prompt + t), truncation=truncate, max_length=max_length) for t in texts]
        if not truncate:
            too_long = [(i, len(x)) for i, x in enumerate(ids) if len(x) > max_length]
            if too_long:
                i, n = too_long[0]
                raise ValueError(f"text {i} has {n} tokens, more than max_length={max_length}; pass truncate=True")
        prompt_length = len(self.tokenizer.encode(case(prompt))) - 1 if prompt else 0
        return ids, prompt_length

    # -- ids → vectors -----------------------------------------------------------------------------------------
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, prompt_length: int = 0) -> torch.Tensor:
        """Embeddings of a padded batch through the folder's pipeline (with gradients when training)."""
        hidden = self.model(input_ids, attention_mask=attention_mask).last_hidden_state
        vectors = self.pool(hidden, attention_mask, prompt_length)
        for module in self.head:
            vectors = module(vectors)
        return vectors

    def encode(
        self,
        texts: str | Sequence[str],
        pooling: str | None = None,
        layer: int | Sequence[int] = -1,
        normalize: bool | None = None,
        prompt_name: str | None = None,
        prompt: str | None = None,
        batch_size: int = 32,
        max_length: int | None = None,
        truncate: bool = True,
        allow_empty: bool = False,
        show_progress_bar: bool = False,
    ) -> np.ndarray:
        """Embed ``texts`` → float32 array ``(n, dim)`` (``(dim,)`` for a single string), in input order.

        With the defaults, the folder's pipeline runs. ``pooling`` (a mode, or ``"pooled"``: BERT's pooler) and
        ``layer`` (hidden-state indices as transformers counts them, 0 = embeddings; several are concatenated)
        choose another representation: then the folder's Dense and whitening, fitted on its own, are left out,
        and the vectors are unit length only when ``normalize=True``. ``normalize`` always has the last word.
        """
        single = isinstance(texts, str)
        texts = _checked_texts([texts] if single else texts, allow_empty)
        layers = [layer] if isinstance(layer, int) else list(layer)
        depth = self.model.config.num_hidden_layers
        if not layers or any(not isinstance(i, int) or not -depth - 1 <= i <= depth for i in layers):
            raise ValueError(f"layer must be hidden-state indices in [{-depth - 1}, {depth}] (0 = embeddings, "
                             f"-1 = last of {depth} layers), got {layer!r}")
        if pooling is not None and pooling != "pooled":
            parse_modes(pooling)  # an unknown mode is an error naming the known ones
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        own = (pooling is None or pooling == self.pooling) and layers in ([-1], [depth])
        if own:
            pool, modules = self.pool, [m for m in self.head if normalize is not False or not isinstance(m, Normalize)]
        else:
            pool = None if pooling == "pooled" else Pooling(pooling or self.pooling, self.pool.include_prompt)
            modules = []
        if normalize and not any(isinstance(m, Normalize) for m in modules):
            modules.append(Normalize())
        ids, prompt_length = self.tokenize(texts, self.resolve_prompt(prompt, prompt_name), max_length, truncate)
        was_training = self.training
        self.eval()
        try:
            out = run_sorted([len(x) for x in ids], batch_size, lambda chosen: self._encode_batch(
                [ids[i] for i in chosen], pool, layers, modules, prompt_length).numpy(), progress=show_progress_bar)
        finally:
            self.train(was_training)
        return out[0] if single else out

    @torch.inference_mode()
    def _encode_batch(self, batch: list[list[int]], pool: Pooling | None, layers: list[int],
                      modules: list[nn.Module], prompt_length: int) -> torch.Tensor:
        """One padded batch through the model, pooled (``pool=None``: the model's own pooler output)."""
        if self.unpadded is not None:
            return self._encode_unpadded(batch, pool, layers, modules, prompt_length)
        input_ids, attention_mask = pad_batch(batch, self.tokenizer.pad_token_id, self.device)
        want_layers = layers not in ([-1], [self.model.config.num_hidden_layers])
        with autocast(self.model):
            output = self.model(input_ids, attention_mask=attention_mask, output_hidden_states=want_layers)
        if pool is None:
            if output.pooler_output is None:
                raise ValueError("pooling='pooled' needs a model with a pooler; this checkpoint has none")
            vectors = output.pooler_output
        else:
            hidden = [output.hidden_states[i] for i in layers] if want_layers else [output.last_hidden_state]
            vectors = torch.cat([pool(h, attention_mask, prompt_length) for h in hidden], dim=-1)
        for module in modules:
            vectors = module(vectors)
        return vectors.float().cpu()

    @torch.inference_mode()
    def _encode_unpadded(self, batch: list[list[int]], pool: Pooling | None, layers: list[int],
                         modules: list[nn.Module], prompt_length: int) -> torch.Tensor:
        """One batch packed without padding through the model, pooled from the packed rows."""
        packed = pack(batch)
        want_layers = layers not in ([-1], [self.model.config.num_hidden_layers])
        with autocast(self.model):
            last, states = unpadded_forward(self.model, packed, want_layers, self.unpadded)
            if pool is None:
                if self.model.pooler is None:
                    raise ValueError("pooling='pooled' needs a model with a pooler; this checkpoint has none")
                vectors = self.model.pooler(first_rows(last, packed))
            else:
                skip = prompt_length if prompt_length and not pool.include_prompt else 0
                hidden = [states[i] for i in layers] if want_layers else [last]
                vectors = torch.cat([packed_pool(pool.modes, h, packed, skip) for h in hidden], dim=-1)
        for module in modules:
            vectors = module(vectors)
        return vectors.float().cpu()

    def _checked_max_length(self, max_length: int | None) -> int:
        positions = self.model.config.max_tokens
        if max_length is None:
            return self.max_seq_length
        if not 2 <= max_length <= positions:
            raise ValueError(f"max_length={max_length} must be between 2 and the model's {positions} positions")
        return max_length

    # -- whitening -----------------------------------------------------------------------------------------------
    def fit_whitening(self, texts: Sequence[str], k: int | None = None, batch_size: int = 32,
                      show_progress_bar: bool = False) -> Whitening:
        """Fit whitening on the vectors of ``texts`` and insert it before Normalize (replacing any earlier one)."""
        kept = [m for m in self.head if not isinstance(m, Whitening)]
        at = next((i for i, m in enumerate(kept) if isinstance(m, Normalize)), len(kept))
        self.head = nn.ModuleList(kept[:at])
        try:
            vectors = self.encode(list(texts), normalize=False, batch_size=batch_size,
                                  show_progress_bar=show_progress_bar)
        finally:
            self.head = nn.ModuleList(kept)
        whitening = fit_whitening(vectors, k).to(self.device)
        self.head = nn.ModuleList([*kept[:at], whitening, *kept[at:]])
        return whitening

    def without_whitening(self) -> list[nn.Module]:
        """Drop any whitening from the pipeline; returns the modules that remain after pooling."""
        self.head = nn.ModuleList([m for m in self.head if not isinstance(m, Whitening)])
        return list(self.head)


def _checked_texts(texts: Sequence[str], allow_empty: bool) -> list[str]:
    """A non-empty list of strings; empty or blank strings only when asked for."""
    if isinstance(texts, (bytes, dict)) or not isinstance(texts, Sequence):
        raise ValueError(f"texts must be a string or a list of strings, got {type(texts).__name__}")
    if len(texts) == 0:
        raise ValueError("texts is empty: nothing to encode")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValueError(f"texts[{i}] must be a string, got {type(text).__name__}: {text!r:.60}")
        if not allow_empty and not text.strip():
            raise ValueError(
                f"texts[{i}] is empty; its embedding would be that of [CLS] [SEP] alone (pass allow_empty=True)"
            )
    return list(texts)


__all__ = ["SentenceEncoder"]
