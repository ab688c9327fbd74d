"""PeftConfig: which parameter-efficient method, and its sizes; the names follow the ``peft`` library's."""

from __future__ import annotations

from dataclasses import dataclass, field

# method → what it trains besides the head (closed-form parameter counts: L layers, d hidden, r rank, n tokens)
METHODS = {
    "head": "the task head only",
    "bitfit": "every bias (Ben Zaken et al. 2021)",
    "lora": "ΔW = B·A of rank r on target projections (Hu et al. 2021): Θ(d·r·L)",
    "houlsby": "two bottleneck adapters per layer (Houlsby et al. 2019): Θ(d·m·L)",
    "pfeiffer": "one bottleneck adapter per layer, after the FFN (Pfeiffer et al. 2020): Θ(d·m·L)",
    "prefix": "key / value prefixes in every layer, MLP-reparameterised while training (Li & Liang 2021): Θ(d·n·L)",
    "ptuning_v2": "deep prompts: key / value prefixes in every layer, trained directly (Liu et al. 2021): Θ(d·n·L)",
    "prompt": "soft prompt vectors before the input (Lester et al. 2021): Θ(d·n)",
    "ptuning": "soft prompt vectors produced by an MLP encoder (P-tuning, Liu et al. 2021): Θ(d·n)",
}
# bertkit method → peft's peft_type (the methods peft has a folder format for)
PEFT_TYPES = {"lora": "LORA", "prefix": "PREFIX_TUNING", "ptuning_v2": "PREFIX_TUNING", "prompt": "PROMPT_TUNING",
              "ptuning": "P_TUNING"}
HOULSBY_TARGETS = ("attention.output.dense", "output.dense")  # after each half's output projection
PFEIFFER_TARGETS = ("output.dense",)  # after the feed-forward half only
# the same places in an architecture with its own layer names (ModernBERT: pre-LN, the sublayer's last projection)
ADAPTER_TARGETS = {"modernbert": {"houlsby": ("attn.Wo", "mlp.Wo"), "pfeiffer": ("mlp.Wo",)}}
# LoRA's default targets (peft's: BERT's query and value) where an architecture names them otherwise; ModernBERT
# projects q, k and v in one Wqkv
LORA_DEFAULT_TARGETS = {"modernbert": ["Wqkv"]}
DEFAULT_LORA_TARGETS = ["query", "value"]


@dataclass
class PeftConfig:
    """One method and its settings; ``r`` / ``lora_alpha`` / ``lora_dropout`` / ``target_modules`` /
    ``num_virtual_tokens`` / ``encoder_hidden_size`` mean what they mean in ``peft``."""

    method: str = "lora"
    r: int = 8
    lora_alpha: float = 16.0
    lora_dropout: float = 0.0
    target_modules: list[str] = field(default_factory=lambda: list(DEFAULT_LORA_TARGETS))
    adapter_size: int = 64  # the adapters' bottleneck width m
    num_virtual_tokens: int = 20
    encoder_hidden_size: int | None = None  # prefix / P-tuning reparameterisation MLP width (None: hidden size)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"peft method must be one of {sorted(METHODS)}, got {self.method!r}")
        for name in ("r", "adapter_size", "num_virtual_tokens"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.encoder_hidden_size is not None and (not isinstance(self.encoder_hidden_size, int)
                                                     or self.encoder_hidden_size <= 0):
            raise ValueError(f"encoder_hidden_size must be a positive integer, got {self.encoder_hidden_size!r}")
        if not 0 <= self.lora_dropout < 1:
            raise ValueError(f"lora_dropout must be in [0, 1), got {self.lora_dropout}")
        if isinstance(self.target_modules, str):
            self.target_modules = [self.target_modules]
        if self.method == "lora" and not self.target_modules:
            raise ValueError("lora needs target_modules (e.g. [query, value])")

    @property
    def scaling(self) -> float:
        """LoRA's α / r: the update's scale does not change with the rank chosen."""
        return self.lora_alpha / self.r

    @property
    def is_prompt(self) -> bool:
        """Soft prompts make the sequence longer (prompt tuning, P-tuning)."""
        return self.method in ("prompt", "ptuning")

    @property
    def is_prefix(self) -> bool:
        """Key / value prefixes in every layer (prefix tuning, P-tuning v2)."""
        return self.method in ("prefix", "ptuning_v2")
