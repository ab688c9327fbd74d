"""FinetuneConfig: every option of a fine-tuning run, read from YAML with ``key=value`` overrides."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from ..peft.config import PeftConfig
from ..training.run_options import EpochTrainingOptions, SubwordSampling
from .data import check_columns, check_task, task_roles
from .heads import CLASSIFIER_HEADS
from .long_text import STRATEGIES
from .models import POOLINGS
from .prompt import check_pattern, check_verbalizer

METHODS = ("classifier", "prompt")  # a head on the sentence vector, or the MLM head through a pattern
ATTENTIONS = ("full", "local")  # the kernels fine-tuning pads for (bertkit.model.efficient has more)

DEFAULT_METRIC = {"classification": "accuracy", "multi_label": "micro_f1", "regression": "spearman",
                  "token_classification": "f1", "question_answering": "f1"}
# short names (the BertSim recipe's), accepted as options and as search keys
ALIASES = {"lr": "learning_rate", "lr_type": "lr_schedule", "batch": "batch_size", "maxlength": "max_length"}


@dataclass
class FinetuneConfig(EpochTrainingOptions, SubwordSampling):
    """What to fine-tune on what, and how. Field names follow transformers' where one exists."""

    KIND: ClassVar[str] = "fine-tuning"
    RESUME_CHANGEABLE: ClassVar[frozenset[str]] = frozenset({
        "epochs", "max_steps", "early_stopping_patience", "save_steps", "save_total_limit", "overwrite", "output_dir",
        "eval_batch_size", "device", "threads", "progress", "max_minutes"})
    ALIASES: ClassVar[dict[str, str]] = ALIASES

    task: str = "classification"  # classification, multi_label, regression, token_classification, question_answering
    # data: a named real set (bertkit.finetuning.datasets) or files
    dataset: str | None = None  # a named real data set (bertkit.finetuning.datasets) instead of files
    train_file: str | None = None  # training examples: .csv, .tsv, .jsonl or .json
    dev_file: str | None = None  # dev examples (else 10 % carved from train_file, split_seed)
    test_file: str | None = None  # test examples, scored with the best dev checkpoint
    columns: dict[str, str] = field(default_factory=dict)  # a role to a column of the file: {text: review}
    normalize: bool = False  # the BertSim recipe's cleaning of texts (URLs, symbols, line breaks to spaces)
    split_seed: int = 0  # seed of the dev split carved from train when there is no dev_file
    limit_train: int | None = None  # use only the first N training examples
    limit_eval: int | None = None  # use only the first N dev and test examples
    bio: str = "repair"  # NER tags that break BIO: "repair" (I-X starting an entity → B-X) or "strict" (error)
    # model
    model: str | None = None  # a Hugging Face BERT folder; None: the installed all-MiniLM-L6-v2
    init: str = "pretrained"  # or "random": the same shape with fresh weights (the baseline)
    architecture: str | None = None  # init: random only: the folder's sizes as another architecture of the family
    classifier_head: str = "linear"  # linear | two_layer
    classifier_dropout: float | None = None  # dropout before the head; none: the folder's hidden_dropout_prob
    pooling: str = "auto"  # the vector the head reads: auto (the folder's own), pooled (BERT's pooler), cls, mean, …
    train_head_only: bool = False  # freeze the encoder, train the head (the peft method `head`)
    # prompt-based fine-tuning (PET / LM-BFF, prompt.py): the MLM head scores a verbaliser word at the pattern's [MASK]
    method: str = "classifier"  # classifier (a head on the sentence vector) | prompt (the MLM head through a pattern)
    pattern: str | None = None  # method: prompt: '{text} It was [MASK].' ({text_b}: a pair's second text)
    verbalizer: dict[str, str] = field(default_factory=dict)  # method: prompt: label → a one-token word
    prompt_mlm_weight: float = 1e-4  # method: prompt: PET's α in (1 − α)·CE + α·MLM loss; 0: no auxiliary MLM
    train_examples_per_class: int | None = None  # few-shot: keep N training examples of each label, sampled by seed
    # parameter-efficient fine-tuning (bertkit.peft): a method, and its settings (peft's names, LoRA's prefixed)
    peft: str | None = None  # lora, houlsby, pfeiffer, prefix, ptuning_v2, prompt, ptuning, bitfit, head
    lora_r: int = 8  # LoRA rank r
    lora_alpha: float = 16.0  # LoRA scale α (the update is α / r · B A)
    lora_dropout: float = 0.0  # dropout on LoRA's input
    target_modules: list[str] = field(default_factory=lambda: ["query", "value"])  # module names LoRA wraps
    adapter_size: int = 64  # bottleneck width of houlsby / pfeiffer adapters
    num_virtual_tokens: int = 20  # prefix / prompt length
    encoder_hidden_size: int | None = None  # ptuning: the prompt encoder's width; none: the model's
    # inputs
    max_length: int = 128  # tokens per example, [CLS] and [SEP] included
    long_text: str = "head"  # texts past max_length: head | tail | head+tail | sliding | key_sentences | hierarchical
    head_tokens: int | str = "auto"  # head+tail: tokens from the start, or "auto" (128 up to 800 tokens, then 256)
    window_stride: int | None = None  # sliding, hierarchical: tokens between window starts; none: half a window
    # (hierarchical: a whole one)
    window_aggregation: str = "mean"  # sliding: how the windows' logits combine, mean | max
    key_sentence_model: str | None = None  # key_sentences: a sentence encoder folder; none: the model's embeddings
    max_chunks: int = 16  # hierarchical: windows per document (more: that many spread over it)
    # past the pretrained positions (documents of thousands of tokens): the position table grown by copying
    # (model.long_positions), and Longformer's ±local_window band with [CLS] global instead of full attention
    max_positions: int | None = None  # grow the position table to this many (documents past the pretrained)
    attention: str = "full"  # full | local
    local_window: int = 256  # attention: local: each token sees ±this many tokens
    doc_stride: int = 128  # question answering: tokens shared by consecutive windows of a long context
    max_answer_length: int = 30  # question answering: longest answer in tokens
    n_best: int = 20  # question answering: start / end candidates searched
    # optimisation (the shared options, bertkit.training.run_options; these defaults are fine-tuning's own)
    learning_rate: float = 2e-5  # peak learning rate of the encoder (alias lr)
    seed: int = 42  # seed of the head's initialisation, shuffling and dropout
    threads: int | str | None = "auto"
    output_dir: str = "out/finetune"  # where the best model, metrics and checkpoints go
    batch_size: int = 16  # training examples per optimizer step (before accumulation)
    eval_batch_size: int = 64  # examples per batch when evaluating
    head_lr_scale: float = 10.0  # the head learns this many times faster than the encoder
    bucket_by_length: bool = True  # batch texts of similar length together (less padding)
    # evaluation
    metric: str | None = None  # the dev metric that picks the best checkpoint; none: the task's usual one
    early_stopping_patience: int = 0  # stop after this many evaluations without a better dev score (0: never)
    # self-training / Noisy Student (self_training.py): the model labels unlabeled_file, a student learns from it
    unlabeled_file: str | None = None  # texts without labels: .txt (one a line), or .csv / .tsv / .jsonl (text)
    self_training: int = 0  # rounds of teacher → soft labels → student (0: plain fine-tuning)
    confidence_threshold: float = 0.0  # keep pseudo-labelled rows whose top probability is ≥ this
    student_layers: int | None = None  # a student of this many of the teacher's layers; none: the same size
    student_epochs: int | None = None  # passes of each student over labelled + pseudo-labelled rows; none: epochs

    def __post_init__(self) -> None:
        if self.epochs == 0 and self.method != "prompt":
            raise ValueError("epochs must be a positive integer, got 0 (zero-shot scoring, epochs: 0, needs method: "
                             "prompt; a fresh classifier head has nothing to score with)")
        zero_shot = self.epochs == 0 and self.method == "prompt"  # the shared check wants ≥ 1 epoch: see below
        self.epochs = 1 if zero_shot else self.epochs
        super().__post_init__()
        self.epochs = 0 if zero_shot else self.epochs
        check_task(self.task)
        self.check_prompt()
        self.columns = check_columns(self.columns, task_roles(self.task), f"of {self.task}")
        if self.init not in ("pretrained", "random"):
            raise ValueError(f"init must be 'pretrained' or 'random', got {self.init!r}")
        architectures = ("bert", "roberta", "albert", "electra", "distilbert")
        if self.architecture is not None and self.architecture not in architectures:
            raise ValueError(f"architecture must be one of {architectures}, got {self.architecture!r}")
        if self.architecture is not None and self.init != "random":
            raise ValueError("architecture: only applies to a model trained from scratch (init: random); a "
                             "pretrained folder keeps its own")
        if self.bio not in ("repair", "strict"):
            raise ValueError(f"bio must be 'repair' or 'strict', got {self.bio!r}")
        for name in ("batch_size", "eval_batch_size", "max_length"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        for name, allowed in (("long_text", STRATEGIES),
                              ("classifier_head", CLASSIFIER_HEADS), ("pooling", ("auto", *POOLINGS))):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.attention not in ATTENTIONS:
            raise ValueError(f"attention must be one of {ATTENTIONS} (fine-tuning), got {self.attention!r}")
        if not isinstance(self.max_chunks, int) or self.max_chunks < 1:
            raise ValueError(f"max_chunks must be a positive integer, got {self.max_chunks!r}")
        if not isinstance(self.local_window, int) or self.local_window < 1:
            raise ValueError(f"local_window must be a positive integer, got {self.local_window!r}")
        if self.max_positions is not None and (not isinstance(self.max_positions, int) or self.max_positions < 1):
            raise ValueError(f"max_positions must be a positive integer, got {self.max_positions!r}")
        if self.head_tokens != "auto":
            try:
                self.head_tokens = int(self.head_tokens)
            except (TypeError, ValueError):
                raise ValueError(f"head_tokens must be a number of tokens or 'auto', got {self.head_tokens!r}") \
                    from None
        if self.metric is None:
            self.metric = DEFAULT_METRIC[self.task]
        self.peft_config()  # bad PEFT settings fail here, before any data is read
        self.check_self_training()
        windows = "question answering" if self.task == "question_answering" else f"long_text: {self.long_text}"
        if self.check_subword_sampling() and windows in ("question answering", "long_text: sliding"):
            raise ValueError(f"subword_alpha re-tokenizes each training row every epoch as one example; {windows} "
                             "cuts a row into windows whose number sampling would change: leave subword_alpha out")

    def check_self_training(self) -> None:
        """Self-training's options: rounds with an unlabeled file, on single-label classification, fully trained."""
        if not isinstance(self.self_training, int) or self.self_training < 0:
            raise ValueError(f"self_training must be a number of rounds ≥ 0, got {self.self_training!r}")
        if self.self_training and not self.unlabeled_file:
            raise ValueError("self_training needs unlabeled_file: the texts the teacher labels for the student")
        if self.unlabeled_file and not self.self_training:
            raise ValueError("unlabeled_file is read only by self-training: set self_training to a number of rounds")
        if not 0.0 <= self.confidence_threshold <= 1.0:
            raise ValueError(f"confidence_threshold must be a probability in [0, 1], got {self.confidence_threshold}")
        for name in ("student_layers", "student_epochs"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.self_training and self.task != "classification":
            raise ValueError(f"self_training learns soft class labels: task must be classification, not {self.task}")
        if self.self_training and self.peft_config() is not None:
            raise ValueError("self_training trains whole students: it does not combine with peft or train_head_only")
        if self.self_training and (self.method != "classifier" or self.long_text in ("key_sentences", "hierarchical")):
            raise ValueError("self_training trains classifier heads over head / tail / head+tail / sliding inputs: it "
                             f"does not combine with method={self.method} or long_text={self.long_text}")

    def check_prompt(self) -> None:
        """method: prompt's options (pattern, verbaliser, epochs 0 for zero-shot) and the few-shot sample size."""
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.train_examples_per_class is not None and self.train_examples_per_class < 1:
            raise ValueError(f"train_examples_per_class must be a positive integer, got "
                             f"{self.train_examples_per_class!r}")
        if self.method != "prompt":
            return
        if self.task != "classification":
            raise ValueError(f"method: prompt classifies (task: classification), not {self.task}")
        check_pattern(self.pattern)
        self.verbalizer = check_verbalizer(self.verbalizer)
        if not 0 <= self.prompt_mlm_weight < 1:
            raise ValueError(f"prompt_mlm_weight must be in [0, 1) (PET: 1e-4), got {self.prompt_mlm_weight}")
        if self.peft or self.train_head_only or self.long_text != "head" or self.attention != "full":
            raise ValueError("method: prompt trains the whole MLM model on head-truncated inputs: drop peft, "
                             "train_head_only, long_text and attention")
        if self.epochs == 0 and self.max_steps:
            raise ValueError("epochs: 0 (zero-shot) trains nothing: drop max_steps")

    def peft_config(self) -> PeftConfig | None:
        """The PEFT method of this run (``train_head_only`` is the ``head`` method), or None: full fine-tuning."""
        method = self.peft or ("head" if self.train_head_only else None)
        if method is None:
            return None
        return PeftConfig(method, r=self.lora_r, lora_alpha=self.lora_alpha, lora_dropout=self.lora_dropout,
                          target_modules=self.target_modules, adapter_size=self.adapter_size,
                          num_virtual_tokens=self.num_virtual_tokens, encoder_hidden_size=self.encoder_hidden_size)

    @property
    def greater_is_better(self) -> bool:
        return self.metric not in ("mse", "loss")


__all__ = ["FinetuneConfig"]
