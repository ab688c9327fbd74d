"""PretrainingConfig: every setting of a pretraining run, read from YAML and overridable on the command line."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from ..training.run_options import StepTrainingOptions, SubwordSampling
from .instances import TASKS
from .masking import MaskingConfig
from .tokenized import WORD_BOUNDARIES

# each architecture's own sentence-pair task (its paper's); RoBERTa, ELECTRA and DistilBERT read full sentences
PAIR_TASKS = {"bert": "nsp", "albert": "sop", "ernie": "nsp", "nezha": "nsp"}
ARCHITECTURES = ("bert", "roberta", "albert", "electra", "distilbert", "ernie", "nezha", "roformer", "xlm", "xlnet",
                 "deberta-v2", "modernbert")
# objective electra's discriminators: ELECTRA's, and DeBERTa-v3's (a DeBERTa encoder under ELECTRA's head)
ELECTRA_ARCHITECTURES = ("electra", "deberta-v2")
# the share of tokens masked when mlm_probability is not given: ModernBERT's recipe masks 30 %, BERT's 15 %
MLM_PROBABILITIES = {"modernbert": 0.3}


@dataclass
class PretrainingConfig(StepTrainingOptions, SubwordSampling):
    """A pretraining run: corpus, tokenizer, model, instances, masking, optimisation, output."""

    KIND: ClassVar[str] = "pretraining"
    RESUME_CHANGEABLE: ClassVar[frozenset[str]] = frozenset({
        "max_steps", "max_minutes", "logging_steps", "eval_steps", "eval_batches", "save_steps", "save_total_limit",
        "overwrite", "output_dir", "device", "threads", "progress", "gradient_checkpointing"})

    corpus: list[str] = field(default_factory=list)  # text files
    corpus_format: str = "lines"  # lines: a sentence a line, blank line between documents; raw: hard-wrapped text
    eval_corpus: list[str] = field(default_factory=list)  # held-out files; else eval_fraction of the documents
    eval_fraction: float = 0.05  # the share of documents held out for evaluation when there is no eval_corpus
    tokenizer: str | None = None  # a folder with vocab.txt (+ tokenizer_config.json); none: init_from's
    init_from: str | None = None  # continued pretraining: a model folder (missing heads start fresh)
    architecture: str = "bert"  # from scratch: ARCHITECTURES (deberta-v2: mlm or electra, modernbert: mlm)
    model_preset: str = "mini"  # from scratch: tiny, mini, small, medium, base, large (or the architecture's own)
    num_hidden_layers: int | None = None  # override the preset's layers
    hidden_size: int | None = None  # override the preset's width
    num_attention_heads: int | None = None  # override the preset's heads
    intermediate_size: int | None = None  # override the preset's feed-forward width
    max_position_embeddings: int | None = None  # override the preset's position table size
    embedding_size: int | None = None  # ALBERT / ELECTRA: factorized embeddings of this width
    num_hidden_groups: int | None = None  # ALBERT: layers share the weights of this many groups
    pair_task: str = "auto"  # nsp | sop | none | auto: the architecture's own (PAIR_TASKS), none for electra
    objective: str = "mlm"  # mlm: masked LM (+ pair_task); electra: MLM + replaced tokens; tlm: XLM; plm: XLNet
    plm_k: int = 6  # plm: 1/K of each factorisation order is predicted (the paper's K = 6)
    mem_len: int | None = None  # plm: hidden states kept per layer for the next segment; None: max_seq_length; 0: none
    parallel_corpus: list[str] = field(default_factory=list)  # tlm: lines lang<TAB>sentence<TAB>lang<TAB>translation
    languages: list[str] = field(default_factory=lambda: ["en", "fr", "de"])  # tlm: language ids (no corpus: numbers)
    generator_size: float | None = None  # electra: generator width / discriminator's (None: ¼); deberta-v2: depth (½)
    embedding_sharing: str = "shared"  # electra: shared tables, or gdes (DeBERTa-v3: E_G.detach() + Δ)
    rtd_weight: float = 50.0  # electra: λ in L_mlm + λ·L_rtd (the paper's 50)
    word_boundaries: str = "wordpiece"  # wordpiece | jieba (Chinese whole words)
    masking: str = "token"  # token | whole_word | ngram | span | phrase | entity (ERNIE: units masked whole)
    units_file: str | None = None  # masking phrase / entity: the phrases or entities, one per line
    mlm_probability: float | None = None  # share of tokens chosen for prediction; None: 0.15, modernbert 0.3
    max_predictions_per_seq: int | None = None  # most masked positions per sequence; None: 20, modernbert no cap
    word_order_probability: float = 0.0  # mlm: share of sequences with a trigram shuffled to restore (StructBERT: 0.05)
    dynamic_masking: bool = True  # a fresh mask every time an instance is seen (else dupe_factor fixed copies)
    dupe_factor: int = 5  # static masking (or subword_alpha): copies of the corpus, each with its own mask
    max_seq_length: int = 128  # tokens per instance, [CLS] and [SEP] included
    short_seq_prob: float = 0.1  # share of instances cut shorter than max_seq_length (as google-research/bert)
    # recipe switches for a small time budget (Cramming, Geiping & Goldstein 2023), each off by default
    pack_sequences: bool = False  # every sequence full length, sentences running on (pair_task: none; packing.py)
    pack_across_documents: bool = False  # pack_sequences: documents run on too, [SEP] between them
    max_tokens_per_char: float | None = None  # drop training sentences that tokenize worse than this (not eval)
    dropout: float | None = None  # from scratch: hidden and attention dropout (Cramming: 0); None: the preset's
    norm_first: bool = False  # from scratch: pre-LN blocks, a final LayerNorm (transformers' BERT has no such option)
    projection_bias: bool = True  # from scratch: False drops the biases of every projection (Cramming)
    batch_size: int = 32  # instances per optimizer step (before accumulation)
    gradient_checkpointing: bool = False  # less activation memory for about a third more compute
    eval_batches: int = 20  # batches of held-out instances each evaluation reads
    # the shared training options (bertkit.training.run_options) with pretraining's defaults
    warmup_steps: int = 100
    threads: int | str | None = "auto"
    output_dir: str = "out/pretrain"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.pair_task in ("auto", None):
            one_segment = self.objective in ("electra", "tlm", "plm") or self.pack_sequences
            self.pair_task = "none" if one_segment else PAIR_TASKS.get(self.model_type(), "none")
        choices = {"pair_task": TASKS, "word_boundaries": WORD_BOUNDARIES, "corpus_format": ("lines", "raw"),
                   "architecture": ARCHITECTURES, "objective": ("mlm", "electra", "tlm", "plm"),
                   "embedding_sharing": ("shared", "gdes")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.mlm_probability is None:
            self.mlm_probability = MLM_PROBABILITIES.get(self.model_type(), 0.15)
        if self.max_predictions_per_seq is None:  # ModernBERT's 30 % is not capped at BERT's 20 of 128 tokens
            modern = self.model_type() in MLM_PROBABILITIES
            self.max_predictions_per_seq = self.max_seq_length if modern else 20
        if self.embedding_sharing != "shared" and self.objective != "electra":
            raise ValueError(f"embedding_sharing: {self.embedding_sharing} shares the generator's embeddings with "
                             f"ELECTRA's discriminator; it needs objective: electra, not objective: {self.objective}")
        if self.objective == "electra":
            self.check_electra()
        self.check_init_from()
        self.check_tlm()
        self.check_plm()
        self.check_word_order()
        self.check_subword_sampling()
        self.check_recipe()
        self.masking_config()  # validates the masking fields
        self.check_units()
        if self.max_seq_length < 8:
            raise ValueError(f"max_seq_length must be at least 8, got {self.max_seq_length}")
        if not 0.0 <= self.eval_fraction < 1.0:
            raise ValueError(f"eval_fraction must be in [0, 1), got {self.eval_fraction}")
        if self.batch_size < 1 or self.dupe_factor < 1:
            raise ValueError("batch_size and dupe_factor must be ≥ 1")

    def model_type(self) -> str:
        """The architecture the run trains: ``init_from``'s own (read from its config.json), else ``architecture``."""
        config = Path(self.init_from or "") / "config.json"
        if self.init_from and self.architecture == "bert" and config.is_file():  # bert: the default, not a choice
            try:
                return str(json.loads(config.read_text(encoding="utf-8")).get("model_type", "bert"))
            except (OSError, ValueError):
                pass  # the run reports an unreadable init_from when it loads it
        return self.architecture

    def check_electra(self) -> None:
        """ELECTRA pretraining trains an ELECTRA generator + discriminator from scratch, without a pair task."""
        if self.pair_task != "none":
            raise ValueError(f"objective electra has no sentence-pair task (pair_task: {self.pair_task}): the "
                             "discriminator reads single sequences; set pair_task: none (nsp / sop go with "
                             "objective mlm)")
        if self.architecture not in ("bert",) + ELECTRA_ARCHITECTURES:  # bert: the default, left as it is
            raise ValueError(f"objective electra trains an ELECTRA or DeBERTa-v3 discriminator, not architecture "
                             f"{self.architecture} (no replaced-token recipe here); set architecture: electra or "
                             f"deberta-v2 (or objective: mlm)")
        if self.architecture == "bert":
            self.architecture = "electra"
        if self.generator_size is None:
            self.generator_size = 0.5 if self.architecture == "deberta-v2" else 0.25
        if self.init_from:
            raise ValueError("objective electra trains its generator and discriminator from scratch; init_from is "
                             "supported with objective mlm only")
        if not 0.0 < self.generator_size <= 1.0:
            raise ValueError(f"generator_size must be in (0, 1], got {self.generator_size}: a generator wider than "
                             "the discriminator makes its task too hard (the paper finds ¼–½ best)")
        if not self.rtd_weight > 0:
            raise ValueError(f"rtd_weight must be positive, got {self.rtd_weight}")

    def check_init_from(self) -> None:
        """Continued pretraining keeps init_from's architecture: a different ``architecture`` is refused."""
        config = Path(self.init_from or "") / "config.json"
        if not self.init_from or self.architecture == "bert" or not config.is_file():
            return  # bert: the default, which takes init_from's own; a missing folder is reported when loaded
        try:
            held = json.loads(config.read_text(encoding="utf-8")).get("model_type", "bert")
        except (OSError, ValueError, AttributeError):
            return  # the run reports an unreadable init_from when it loads it
        if held != self.architecture:
            raise ValueError(f"architecture: {self.architecture} but init_from {self.init_from} holds a {held} "
                             f"model; continued pretraining keeps its architecture (leave architecture out)")

    def check_tlm(self) -> None:
        """Translation LM trains an XLM from scratch on parallel pairs, token-masked anew at every draw."""
        if self.objective != "tlm":
            if self.architecture == "xlm":
                raise ValueError("architecture xlm is pretrained with objective: tlm here")
            if self.parallel_corpus:
                raise ValueError(f"parallel_corpus is read by objective: tlm, not objective: {self.objective}")
            return
        if self.architecture not in ("bert", "xlm"):  # bert: the default, left as it is
            raise ValueError(f"objective tlm trains an XLM, not architecture {self.architecture}; set architecture: "
                             "xlm (or objective: mlm)")
        self.architecture = "xlm"
        problems = [f"{name}: {value}" for name, value, wanted in (
            ("pair_task", self.pair_task, "none"), ("masking", self.masking, "token"),
            ("dynamic_masking", self.dynamic_masking, True), ("init_from", self.init_from, None)) if value != wanted]
        if problems:
            raise ValueError(f"objective tlm masks tokens of each pair anew at every draw, from scratch, without a "
                             f"pair task; these settings do not apply: {'; '.join(problems)}")
        if not isinstance(self.languages, list) or len(set(self.languages)) < 2 or len(set(self.languages)) != len(
                self.languages):
            raise ValueError(f"languages must list two or more distinct languages, got {self.languages!r}")

    def check_plm(self) -> None:
        """The permutation LM trains an XLNet from scratch on the corpus read as token streams, with memory."""
        if self.objective != "plm":
            if self.architecture == "xlnet":
                raise ValueError("architecture xlnet is pretrained with objective: plm here")
            if self.mem_len is not None:
                raise ValueError(f"mem_len is read by objective: plm, not objective: {self.objective}")
            return
        if self.architecture not in ("bert", "xlnet"):  # bert: the default, left as it is
            raise ValueError(f"objective plm trains an XLNet, not architecture {self.architecture}; set "
                             "architecture: xlnet (or objective: mlm)")
        self.architecture = "xlnet"
        problems = [f"{name}: {value}" for name, value, wanted in (
            ("pair_task", self.pair_task, "none"), ("masking", self.masking, "token"),
            ("init_from", self.init_from, None), ("parallel_corpus", self.parallel_corpus, []),
            ("embedding_size", self.embedding_size, None), ("num_hidden_groups", self.num_hidden_groups, None),
            ("max_position_embeddings", self.max_position_embeddings, None)) if value != wanted]
        if problems:
            raise ValueError(f"objective plm predicts a random factorisation order of each segment with an XLNet "
                             f"from scratch (relative positions, no pair task, no masks); these settings do not "
                             f"apply: {'; '.join(problems)}")
        for name in ("plm_k", "mem_len"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                      or value < (1 if name == "plm_k" else 0)):
                raise ValueError(f"{name} must be an integer ≥ {1 if name == 'plm_k' else 0}, got {value!r}")
        if self.mem_len is None:
            self.mem_len = self.max_seq_length  # the previous segment, whole

    def check_word_order(self) -> None:
        """StructBERT's word-order loss is an extra term of masked-LM pretraining, on a share of the sequences."""
        value = self.word_order_probability
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            raise ValueError(f"word_order_probability must be a number in [0, 1], got {value!r}")
        if value and self.objective != "mlm":
            raise ValueError(f"word_order_probability adds StructBERT's word-order loss to objective: mlm, not "
                             f"objective: {self.objective}")

    def check_subword_sampling(self) -> bool:
        """Subword regularisation re-tokenizes the masked-LM corpus once per copy (``dupe_factor`` copies)."""
        if not super().check_subword_sampling():
            return False
        if self.objective not in ("mlm", "electra"):
            raise ValueError(f"subword_alpha samples the masked-LM corpus's segmentations; objective "
                             f"{self.objective} reads its data another way")
        if self.units_file is not None or self.word_boundaries != "wordpiece":
            raise ValueError("subword_alpha samples pieces without jieba's words or a units_file: use "
                             "word_boundaries: wordpiece and no units_file")
        if self.dupe_factor < 2:
            raise ValueError("subword_alpha samples one segmentation per copy of the corpus: dupe_factor must be "
                             "≥ 2 for more than one")
        return True

    def check_recipe(self) -> None:
        """The budget recipe's switches: packing has one segment, block changes build a fresh BERT / RoBERTa."""
        if self.pack_across_documents and not self.pack_sequences:
            raise ValueError("pack_across_documents is read by pack_sequences: set pack_sequences: true")
        if self.pack_sequences:
            if self.pair_task != "none" or self.objective not in ("mlm", "electra"):
                raise ValueError(f"pack_sequences fills one segment per sequence for a masked LM: it needs pair_task: "
                                 f"none (got {self.pair_task}) and objective mlm or electra (got {self.objective})")
            if self.short_seq_prob not in (0.0, 0.1):  # 0.1: the default, which packing leaves unused
                raise ValueError(f"pack_sequences makes every sequence full length; short_seq_prob "
                                 f"{self.short_seq_prob} would cut some short: leave it out")
            self.short_seq_prob = 0.0
        limit = self.max_tokens_per_char
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, float)) or limit <= 0):
            raise ValueError(f"max_tokens_per_char must be a number > 0 (tokens per character), got {limit!r}")
        if self.dropout is not None and (isinstance(self.dropout, bool) or not 0.0 <= self.dropout < 1.0):
            raise ValueError(f"dropout must be a probability in [0, 1), got {self.dropout!r}")
        blocks = [name for name, value, default in (("norm_first", self.norm_first, False),
                                                     ("projection_bias", self.projection_bias, True),
                                                     ("dropout", self.dropout, None)) if value != default]
        if blocks and self.init_from:
            raise ValueError(f"{', '.join(blocks)} shape a model trained from scratch; init_from's checkpoint keeps "
                             "its own blocks")
        if blocks and self.architecture not in ("bert", "roberta") and blocks != ["dropout"]:
            raise ValueError(f"{', '.join(b for b in blocks if b != 'dropout')} change BERT's and RoBERTa's blocks "
                             f"here, not architecture {self.architecture}")

    def check_units(self) -> None:
        """ERNIE's knowledge masking needs its units: a list file, or jieba's words for Chinese phrases."""
        if self.units_file is not None and self.masking not in ("phrase", "entity"):
            raise ValueError(f"units_file is read by masking: phrase or entity, not masking: {self.masking}")
        if self.masking == "entity" and self.units_file is None:
            raise ValueError("masking: entity needs units_file, a list of entities (one per line)")
        if self.masking == "phrase" and self.units_file is None and self.word_boundaries != "jieba":
            raise ValueError("masking: phrase needs units_file (phrases, one per line) or, for Chinese, "
                             "word_boundaries: jieba (jieba's words are the phrases)")
        if self.units_file is not None and not Path(self.units_file).is_file():
            raise ValueError(f"units_file {self.units_file} does not exist")

    def masking_config(self) -> MaskingConfig:
        return MaskingConfig(strategy=self.masking, mlm_probability=self.mlm_probability,
                             max_predictions_per_seq=self.max_predictions_per_seq)

