"""ELECTRA's replaced-token detection (Clark et al. 2020) as a pretraining objective (``objective: electra``).

A small generator (an MLM, ¼–⅓ of the discriminator's width) fills the masked positions with tokens sampled from
its own predictions; the discriminator reads the corrupted sequence and learns, for every real token, whether it
was replaced. Every position teaches the discriminator, not only the ~15 % masked: the paper's sample efficiency.
The two share their embeddings (tokens, positions, segments and the embedding LayerNorm, as the reference code's
``electra/embeddings`` scope): the generator's MLM loss trains them too. The sampled ids are integers, so no gradient
flows from the discriminator's loss back through the sampling into the generator (the paper's design: it is not a
GAN). ``loss = L_mlm(generator) + λ · L_rtd(discriminator)``, λ = 50. The discriminator is the model kept.

``embedding_sharing: gdes`` is DeBERTa-v3's gradient-disentangled embedding sharing (He et al. 2021): the generator
keeps its own embeddings; the discriminator's token (and position) tables are E_G.detach() + Δ, Δ starting at zero,
so the discriminator's loss moves only Δ and never pulls the generator's tables its way (the "tug of war" the paper
measures). Checkpoints hold Δ (``embedding_delta.safetensors``) and a discriminator whose tables are E_G + Δ.
A ``deberta-v2`` config makes the pair DeBERTa-v3's: a DeBERTa discriminator under ELECTRA's head, a generator as
wide and ``generator_size`` × as deep (the paper: half), GDES as the paper trains it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.func import functional_call

from .. import checkpoint
from ..config import BertConfig
from ..model import ElectraForMaskedLM, ElectraForPreTraining
from ..model.deberta_v2 import DebertaV2ForMaskedLM, DebertaV2ForReplacedTokenDetection
from ..model.heads import IGNORE_INDEX

GENERATOR_FOLDER = "generator"  # beside the discriminator in checkpoints: step-N/ and step-N/generator/
DELTA_FILE = "embedding_delta.safetensors"  # gdes: the discriminator's Δ, beside its weights
EMBEDDING_SHARING = ("shared", "gdes")
# (discriminator, generator) per architecture: ELECTRA's, and DeBERTa-v3's (a DeBERTa encoder under ELECTRA's head)
MODELS = {"electra": (ElectraForPreTraining, ElectraForMaskedLM),
          "deberta-v2": (DebertaV2ForReplacedTokenDetection, DebertaV2ForMaskedLM)}


def generator_config(discriminator: BertConfig, size: float) -> BertConfig:
    """The generator's shape: ``size`` × the discriminator's hidden and FFN width, its head width, its depth, and
    embeddings of the discriminator's width (they are shared; the generator projects them down). DeBERTa-v3's
    generator is as wide as its discriminator and ``size`` × as deep (the paper: half)."""
    if not 0.0 < size <= 1.0:
        raise ValueError(f"generator_size must be in (0, 1], got {size}: a generator wider than the discriminator "
                         "makes its task too hard (the paper finds ¼–½ of the discriminator's width best)")
    if discriminator.model_type == "deberta-v2":
        return dataclasses.replace(discriminator, num_hidden_layers=max(1, round(discriminator.num_hidden_layers
                                                                                 * size)))
    hidden = max(1, round(discriminator.hidden_size * size))
    heads = max(1, hidden // discriminator.head_size)
    if hidden % heads:
        raise ValueError(f"generator_size {size} gives a generator of hidden size {hidden}, not a multiple of its "
                         f"{heads} attention heads of width {discriminator.head_size}; choose a size that gives a "
                         f"multiple of {discriminator.head_size}")
    return dataclasses.replace(discriminator, hidden_size=hidden, num_attention_heads=heads,
                               intermediate_size=max(1, round(discriminator.intermediate_size * size)),
                               embedding_size=discriminator.embedding_width)


def sample_replacements(logits: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One token per row of (rows, vocab) logits, drawn from their softmax (temperature 1) by the Gumbel-max trick,
    as the reference code; ``generator`` gives reproducible draws (evaluation) without touching the global RNG."""
    with torch.no_grad():
        uniform = torch.rand(logits.shape, generator=generator, device=logits.device)
        gumbel = -torch.log(-torch.log(uniform + 1e-9) + 1e-9)
        return (logits.detach().float() + gumbel).argmax(-1)


@dataclass
class ElectraPretrainingOutput:
    """Both losses, the generator's predictions at the masked positions and what the discriminator read."""

    loss: torch.Tensor
    mlm_loss: torch.Tensor
    rtd_loss: torch.Tensor
    mlm_predictions: torch.Tensor  # argmax ids at the masked positions, row-major order
    rtd_logits: torch.Tensor  # (batch, seq): > 0 says "replaced"
    corrupted_ids: torch.Tensor  # the discriminator's input: originals with sampled tokens at the masked positions
    replaced: torch.Tensor  # (batch, seq) 1 where the corrupted token differs from the original


class ElectraPretrainingModel(nn.Module):
    """Generator + discriminator with one set of embeddings; ``forward`` is the whole ELECTRA step."""

    def __init__(self, discriminator_config: BertConfig, generator_size: float = 0.25, rtd_weight: float = 50.0,
                 embedding_sharing: str = "shared"):
        super().__init__()
        if discriminator_config.model_type not in MODELS:
            raise ValueError(f"ELECTRA pretraining needs an electra config (or deberta-v2: DeBERTa-v3's), got "
                             f"{discriminator_config.model_type!r}")
        if embedding_sharing not in EMBEDDING_SHARING:
            raise ValueError(f"embedding_sharing must be one of {EMBEDDING_SHARING}, got {embedding_sharing!r}")
        self.rtd_weight = rtd_weight
        discriminator, generator = MODELS[discriminator_config.model_type]
        self.discriminator = discriminator(discriminator_config)
        self.generator = generator(generator_config(discriminator_config, generator_size))
        self.embedding_delta = None
        if embedding_sharing == "gdes":
            self.use_gdes()
            return
        shared = self.discriminator.base_model.embeddings
        self.generator.base_model.embeddings = shared
        self.generator.cls.predictions.decoder.weight = shared.word_embeddings.weight  # re-tie the MLM decoder

    def use_gdes(self) -> None:
        """Δ at zero for each of the discriminator's tables shared by GDES; its own copies become E_G + Δ, kept
        for saving only (frozen: the optimizer trains Δ)."""
        self.embedding_delta = nn.ParameterDict()
        for name, table in self.gdes_tables().items():
            self.embedding_delta[name] = nn.Parameter(torch.zeros_like(table.weight))
            table.weight.requires_grad_(False)
        # whoever saves the discriminator alone (the run's final model) reads E_G + Δ: synced on every state_dict
        self.discriminator.register_state_dict_pre_hook(lambda *_: self.sync_discriminator())
        self.sync_discriminator()

    def gdes_tables(self) -> dict[str, nn.Embedding]:
        """The discriminator's word (and learned position) tables, by name."""
        embeddings = self.discriminator.base_model.embeddings
        names = ["word_embeddings"] + (["position_embeddings"] if embeddings.add_positions else [])
        return {name: getattr(embeddings, name) for name in names}

    def discriminator_tables(self) -> dict[str, torch.Tensor]:
        """GDES: E_G.detach() + Δ per shared table, under the discriminator's parameter names."""
        source = self.generator.base_model.embeddings
        prefix = f"{self.discriminator.base_model_prefix}.embeddings."
        return {f"{prefix}{name}.weight": getattr(source, name).weight.detach() + delta
                for name, delta in self.embedding_delta.items()}

    @torch.no_grad()
    def sync_discriminator(self) -> None:
        """Write E_G + Δ into the discriminator's own tables, so that it is a whole model on its own (to save)."""
        if self.embedding_delta is not None:
            tables = self.discriminator_tables()
            for name, table in self.gdes_tables().items():
                table.weight.copy_(tables[f"{self.discriminator.base_model_prefix}.embeddings.{name}.weight"])

    @property
    def config(self) -> BertConfig:
        """The discriminator's config: the model this run produces."""
        return self.discriminator.config

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None,
        labels: torch.Tensor,
        replacements: torch.Tensor | None = None,
        sampler: torch.Generator | None = None,
    ) -> ElectraPretrainingOutput:
        """Generator MLM on the masked batch; sampled replacements (or the given ones, one per masked position in
        row-major order) build the corrupted input; discriminator RTD over every real token."""
        masked = labels != IGNORE_INDEX
        generated = self.generator(input_ids, attention_mask, token_type_ids, labels=labels, only_masked_logits=True)
        if replacements is None:
            replacements = sample_replacements(generated.prediction_logits, sampler)
        original = torch.where(masked, labels, input_ids)  # labels hold the original token wherever one is masked
        corrupted = original.masked_scatter(masked, replacements.to(original.dtype))
        replaced = (corrupted != original).long()
        if self.embedding_delta is None:
            detected = self.discriminator(corrupted, attention_mask, token_type_ids, labels=replaced)
        else:  # GDES: the discriminator reads E_G.detach() + Δ in place of its own tables
            detected = functional_call(self.discriminator, self.discriminator_tables(),
                                       (corrupted, attention_mask, token_type_ids), dict(labels=replaced))
        return ElectraPretrainingOutput(generated.mlm_loss + self.rtd_weight * detected.loss,
                                        generated.mlm_loss, detected.loss,
                                        generated.prediction_logits.argmax(-1), detected.logits, corrupted, replaced)

    def save_pretrained(self, folder: str | Path, tokenizer: Any = None) -> Path:
        """The discriminator's folder (transformers' ``ElectraForPreTraining``), the generator's in ``generator/``
        inside it (``ElectraForMaskedLM``): a training checkpoint; with GDES, Δ beside them."""
        self.sync_discriminator()
        folder = self.discriminator.save_pretrained(folder, tokenizer=tokenizer)
        self.generator.save_pretrained(Path(folder) / GENERATOR_FOLDER, tokenizer=tokenizer)
        if self.embedding_delta is not None:
            save_file({k: v.detach().cpu().contiguous() for k, v in self.embedding_delta.items()},
                      str(Path(folder) / DELTA_FILE))
        return folder

    def load_folder(self, folder: str | Path) -> checkpoint.LoadingReport:
        """Load a checkpoint :meth:`save_pretrained` wrote (``checkpoint.load_weights`` calls this)."""
        folder = Path(folder)
        if not (folder / GENERATOR_FOLDER).is_dir():
            raise ValueError(f"{folder} holds no {GENERATOR_FOLDER}/ folder: not a checkpoint of ELECTRA pretraining")
        first = checkpoint.load_weights(self.discriminator, folder)
        second = checkpoint.load_weights(self.generator, folder / GENERATOR_FOLDER)
        if self.embedding_delta is not None:
            if not (folder / DELTA_FILE).is_file():
                raise ValueError(f"{folder} holds no {DELTA_FILE}: not a checkpoint of GDES pretraining")
            stored = load_file(str(folder / DELTA_FILE))
            if set(stored) != set(self.embedding_delta):
                raise ValueError(f"{folder / DELTA_FILE} holds {sorted(stored)}, expected "
                                 f"{sorted(self.embedding_delta)}")
            with torch.no_grad():
                for name, delta in self.embedding_delta.items():
                    delta.copy_(stored[name])
        return checkpoint.LoadingReport(first.missing + second.missing, first.unexpected + second.unexpected)

    def gradient_checkpointing_enable(self) -> None:
        """Recompute each encoder layer of both models in the backward pass."""
        self.discriminator.gradient_checkpointing_enable()
        self.generator.gradient_checkpointing_enable()


def electra_step(model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
    """Loss of one batch for :class:`ElectraPretrainingModel` (or its DDP wrapper), with accuracies of both parts."""
    out = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"], batch["labels"])
    labels, real = batch["labels"], batch["attention_mask"].bool()
    detected = (out.rtd_logits > 0).long() == out.replaced
    return out.loss, {"mlm_loss": out.mlm_loss.item(),
                      "mlm_accuracy": (out.mlm_predictions == labels[labels != IGNORE_INDEX]).float().mean().item(),
                      "rtd_loss": out.rtd_loss.item(), "rtd_accuracy": detected[real].float().mean().item(),
                      "replaced_fraction": out.replaced[real].float().mean().item(),
                      "tokens": float(real.sum())}


@torch.no_grad()
def evaluate_electra(model: ElectraPretrainingModel, batches: list[dict[str, torch.Tensor]],
                     baseline_token: int | None = None, seed: int = 0) -> dict[str, float]:
    """Generator MLM accuracy / perplexity and discriminator accuracy over fixed held-out batches; the replacements
    are drawn from a generator seeded afresh at each evaluation, never from the training RNG (exact resumption)."""
    was_training = model.training
    model.eval()
    sampler = torch.Generator(device=next(model.parameters()).device).manual_seed(seed)
    sums = dict.fromkeys(("mlm_loss", "correct", "predictions", "baseline", "rtd_loss", "rtd_correct", "tokens",
                          "replaced", "replaced_found"), 0.0)
    for batch in batches:
        out = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"], batch["labels"],
                    sampler=sampler)
        targets = batch["labels"][batch["labels"] != IGNORE_INDEX]
        real = batch["attention_mask"].bool()
        said = (out.rtd_logits > 0).long()
        sums["mlm_loss"] += out.mlm_loss.item() * targets.numel()
        sums["correct"] += (out.mlm_predictions == targets).sum().item()
        sums["predictions"] += targets.numel()
        sums["baseline"] += (targets == baseline_token).sum().item() if baseline_token is not None else 0
        sums["rtd_loss"] += out.rtd_loss.item() * real.sum().item()
        sums["rtd_correct"] += (said == out.replaced)[real].sum().item()
        sums["tokens"] += real.sum().item()
        sums["replaced"] += out.replaced[real].sum().item()
        sums["replaced_found"] += (said * out.replaced)[real].sum().item()
    model.train(was_training)
    if sums["predictions"] == 0:
        raise ValueError("the evaluation set has no masked positions")
    mlm_loss = sums["mlm_loss"] / sums["predictions"]
    metrics = {"mlm_accuracy": sums["correct"] / sums["predictions"], "mlm_loss": mlm_loss,
               "perplexity": math.exp(min(mlm_loss, 50.0)), "predictions": sums["predictions"],
               "rtd_loss": sums["rtd_loss"] / sums["tokens"], "rtd_accuracy": sums["rtd_correct"] / sums["tokens"],
               "replaced_fraction": sums["replaced"] / sums["tokens"],  # 1 − this: the all-"original" baseline
               "replaced_recall": sums["replaced_found"] / max(sums["replaced"], 1.0)}
    if baseline_token is not None:
        metrics["unigram_baseline_accuracy"] = sums["baseline"] / sums["predictions"]
    return metrics
