"""A pretraining run from a :class:`PretrainingConfig`: corpus → instances → masked batches → Trainer → model."""

from __future__ import annotations

import json
import logging
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch

from ..atomic import write_text_atomic
from ..config import PRESETS, BertConfig
from ..model import (
    AlbertForPreTraining,
    BertForPreTraining,
    DistilBertForMaskedLM,
    ElectraForMaskedLM,
    ErnieForPreTraining,
    NezhaForPreTraining,
    RobertaForMaskedLM,
    RoFormerForMaskedLM,
)
from ..model.deberta_v2 import DebertaV2ForMaskedLM
from ..model.deberta_v2_architecture import DebertaV2Config
from ..model.heads import IGNORE_INDEX
from ..model.modernbert import ModernBertForMaskedLM
from ..model.modernbert_architecture import MODERNBERT_PRESETS, ModernBertConfig
from ..tokenization import AutoTokenizer, BertTokenizer
from ..training import Trainer, distributed
from ..training.device import resolve_device
from ..training.run_options import enable_subword_sampling
from ..training.state import check_output_dir, check_resumed_config, save_run_config
from .config import PretrainingConfig
from .dataset import Example, PretrainingBatches, collate, mask_statically, to_example
from .documents import read_documents
from .electra import ElectraPretrainingModel, electra_step, evaluate_electra
from .instances import SpecialIds, create_instances
from .objective import evaluate_pretraining, pretraining_step
from .packing import packed_instances
from .plm_run import PLMBatches, PLMStep, evaluate_plm, plm_data, plm_model
from .tlm_run import TLMBatches, evaluate_tlm, tlm_data, tlm_model, tlm_step
from .tokenized import tokenize_documents
from .units import load_units
from .word_order import WordOrderBatches, add_word_order, evaluate_word_order

logger = logging.getLogger(__name__)
PLOT_KEYS = ("loss", "mlm_accuracy", "nsp_accuracy", "rtd_accuracy", "plm_loss", "plm_accuracy", "word_order_loss",
             "learning_rate", "perplexity", "tokens_per_second")


def load_tokenizer(config: PretrainingConfig) -> BertTokenizer:
    """The run's tokenizer: ``tokenizer`` if given, else the one saved with ``init_from``."""
    folder = config.tokenizer or config.init_from
    if folder is None:
        raise ValueError("give a tokenizer folder (tokenizer: DIR with vocab.txt) or a model to continue (init_from)")
    if config.tokenizer and not Path(config.tokenizer).exists():
        raise FileNotFoundError(f"no tokenizer folder {config.tokenizer}: train one first with `bertkit "
                                f"train-tokenizer CORPUS.txt --vocab-size 16000 -o {config.tokenizer}` (`bertkit "
                                "corpus en -o corpus.txt` writes a corpus; `make pretrain-en` runs every step)")
    return AutoTokenizer.from_pretrained(folder)


def special_ids(tokenizer: BertTokenizer) -> SpecialIds:
    ids = tokenizer.convert_tokens_to_ids
    return SpecialIds(cls=ids(tokenizer.cls_token), sep=ids(tokenizer.sep_token), pad=ids(tokenizer.pad_token),
                      mask=ids(tokenizer.mask_token))


# What each architecture pretrains as under masked-LM (ELECTRA's replaced-token objective is separate): only BERT
# and ALBERT carry the sentence-pair head (NSP, SOP); RoBERTa, DistilBERT and ELECTRA's generator are MLM only.
PRETRAINING_CLASSES = {"bert": BertForPreTraining, "albert": AlbertForPreTraining, "roberta": RobertaForMaskedLM,
                       "distilbert": DistilBertForMaskedLM, "electra": ElectraForMaskedLM,
                       "ernie": ErnieForPreTraining, "nezha": NezhaForPreTraining, "roformer": RoFormerForMaskedLM,
                       "deberta-v2": DebertaV2ForMaskedLM, "modernbert": ModernBertForMaskedLM}
MODERNBERT_FFN_RATIO = 1.5  # ModernBERT-base's GeGLU width over its hidden size (1152 / 768), for BERT's shapes


def modernbert_config(preset: str, tokenizer: BertTokenizer, **shape: object) -> ModernBertConfig:
    """ModernBERT base / large, or BERT's shapes (tiny … medium) with ModernBERT's blocks and its FFN ratio; the
    tokenizer's [CLS] / [SEP] / [PAD] as its special ids."""
    ids = tokenizer.convert_tokens_to_ids
    cls, sep = ids(tokenizer.cls_token), ids(tokenizer.sep_token)
    specials = dict(cls_token_id=cls, bos_token_id=cls, sep_token_id=sep, eos_token_id=sep)
    if preset in MODERNBERT_PRESETS:
        return ModernBertConfig.preset(preset, **specials | shape)
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r} for modernbert; choose one of "
                         f"{list(MODERNBERT_PRESETS) + list(PRESETS)}")
    layers, hidden, heads = PRESETS[preset]
    values = dict(num_hidden_layers=layers, hidden_size=hidden, num_attention_heads=heads,
                  intermediate_size=round(MODERNBERT_FFN_RATIO * shape.get("hidden_size", hidden)))
    return ModernBertConfig(**values | specials | shape)


def fresh_config(config: PretrainingConfig, tokenizer: BertTokenizer) -> BertConfig:
    """The shape of a model trained from scratch: the preset of the architecture, with the configured sizes."""
    sizes = {k: getattr(config, k) for k in ("num_hidden_layers", "hidden_size", "num_attention_heads",
                                              "intermediate_size", "max_position_embeddings", "embedding_size",
                                              "num_hidden_groups")}
    pad = tokenizer.convert_tokens_to_ids(tokenizer.pad_token)
    shape = {k: v for k, v in sizes.items() if v is not None}
    model_type = "bert" if config.architecture == "xlnet" else config.architecture  # XLNet's sizes are BERT's
    if config.architecture == "roberta":  # positions count from pad + 1: room for max_seq_length real tokens
        shape["max_position_embeddings"] = shape.get("max_position_embeddings", config.max_seq_length) + pad + 1
    if config.dropout is not None:
        shape |= {"hidden_dropout_prob": config.dropout, "attention_probs_dropout_prob": config.dropout}
    if config.norm_first or not config.projection_bias:
        shape |= {"norm_first": config.norm_first, "use_bias": config.projection_bias}
    shape |= dict(vocab_size=len(tokenizer), pad_token_id=pad)
    if config.architecture == "deberta-v2":  # v3's sizes (xsmall … large) or BERT's shapes, v3's attention
        return DebertaV2Config.preset(config.model_preset, **shape)
    if config.architecture == "modernbert":
        return modernbert_config(config.model_preset, tokenizer, **shape)
    return BertConfig.preset(config.model_preset, model_type=model_type, **shape)


def build_model(config: PretrainingConfig, tokenizer: BertTokenizer) -> torch.nn.Module:
    """A fresh model of the configured architecture and size, or ``init_from`` with fresh heads where the
    checkpoint has none; for ``objective: electra``, a generator + discriminator pair."""
    if config.objective == "tlm":  # an XLM from scratch, one language embedding per language of the run
        return tlm_model(fresh_config(config, tokenizer), config.languages)
    if config.objective == "plm":  # mem_len 0: an XLNet without memory
        return plm_model(fresh_config(config, tokenizer), config.mem_len or None)
    if config.objective == "electra":
        model = ElectraPretrainingModel(fresh_config(config, tokenizer), config.generator_size, config.rtd_weight,
                                        config.embedding_sharing)
        if config.max_seq_length > model.config.max_tokens:
            raise ValueError(f"max_seq_length {config.max_seq_length} exceeds the model's {model.config.max_tokens} "
                             "positions")
        return model
    if config.init_from:
        held = config.model_type()  # init_from's own (the config refused a different architecture)
        config_class = PRETRAINING_CLASSES[held].config_class if held in PRETRAINING_CLASSES else BertConfig
        model_config = config_class.from_json_file(Path(config.init_from) / "config.json")
        if config.architecture not in ("bert", model_config.model_type):
            raise ValueError(f"architecture: {config.architecture} but init_from {config.init_from} holds a "
                             f"{model_config.model_type} model")
    else:
        model_config = fresh_config(config, tokenizer)
    model_class = PRETRAINING_CLASSES[model_config.model_type]
    if config.pair_task != "none" and not getattr(model_class, "sentence_head", False):  # ModernBERT: no such flag
        raise ValueError(f"{model_config.model_type} has no sentence-pair head for pair_task: {config.pair_task}; "
                         "pretrain it on full sentences (pair_task: none), as RoBERTa was")
    if config.pair_task == "sop" and model_config.model_type == "bert" or (
            config.pair_task == "nsp" and model_config.model_type == "albert"):
        logger.info("%s pretrained with %s (its paper used %s)", model_config.model_type, config.pair_task,
                    "NSP" if model_config.model_type == "bert" else "SOP")
    if config.init_from:
        model = model_class.from_pretrained(config.init_from, config=model_config)
    else:
        model = model_class(model_config)
    if model.config.vocab_size < len(tokenizer):
        raise ValueError(f"the tokenizer has {len(tokenizer)} tokens but the model only {model.config.vocab_size} "
                         "embeddings: use the model's own vocab.txt")
    if config.max_seq_length > model.config.max_tokens:
        raise ValueError(f"max_seq_length {config.max_seq_length} exceeds the model's {model.config.max_tokens} "
                         "positions")
    return model


@dataclass
class PretrainingData:
    """Training examples, fixed-mask evaluation batches and the token the unigram baseline always predicts."""

    train: list[Example]
    eval_batches: list[dict[str, torch.Tensor]]
    most_frequent_token: int


def split_documents(config: PretrainingConfig, documents: list) -> tuple[list, list]:
    """Held-out documents: ``eval_corpus`` if given, else every k-th document (``eval_fraction``)."""
    if config.eval_corpus:
        return documents, read_documents(config.eval_corpus, config.corpus_format)
    if config.eval_fraction == 0:
        return documents, []
    every = max(2, round(1 / config.eval_fraction))
    if config.pair_task == "nsp":  # held-out NSP pairs need two documents as well: hold out at least two
        every = min(every, max(2, len(documents) // 2))
    held_out = documents[::every]
    train = [d for i, d in enumerate(documents) if i % every]
    needed = 2 if config.pair_task == "nsp" else 1
    if len(train) < needed or len(held_out) < needed:
        raise ValueError(f"the corpus has {len(documents)} document(s): too few to hold some out for evaluation"
                         + (" (next-sentence prediction needs two documents on each side)" if needed == 2 else "")
                         + "; add documents (blank lines separate them), or set eval_fraction: 0")
    return train, held_out


def build_data(config: PretrainingConfig, tokenizer: BertTokenizer) -> PretrainingData:
    """Read, tokenize, cut into instances and (statically) mask; evaluation data is masked once, fixed."""
    show = config.progress and distributed.is_main()
    train_docs, eval_docs = split_documents(config, read_documents(config.corpus, config.corpus_format))
    units = load_units(config.units_file) if config.units_file else None  # ERNIE's phrases / entities
    sampled = config.subword_alpha is not None  # subword regularisation: every copy a fresh segmentation
    tokenized = None if sampled else tokenize_documents(train_docs, tokenizer, config.word_boundaries, show, units,
                                                        config.max_tokens_per_char)
    special, masking, vocab_size = special_ids(tokenizer), config.masking_config(), len(tokenizer)
    rng = random.Random(config.seed)
    copies = config.dupe_factor if sampled or not config.dynamic_masking else 1
    train: list[Example] = []
    for copy in range(copies):
        docs = sampled_documents(train_docs, tokenizer, config, copy, show) if sampled else tokenized
        if config.pack_sequences:  # full-length sequences, sentences running on (packing.py)
            instances = packed_instances(docs, config.max_seq_length, special, rng, config.pack_across_documents)
        else:
            instances = create_instances(docs, config.max_seq_length, special, rng, config.pair_task,
                                         config.short_seq_prob)
        examples = [to_example(i) for i in instances]
        train += examples if config.dynamic_masking else mask_statically(examples, special, vocab_size, masking, rng)
    counts = Counter(i for doc in docs for s in doc for i in s.ids)
    eval_batches = []
    if eval_docs:
        eval_docs = tokenize_documents(eval_docs, tokenizer, config.word_boundaries, show, units)
        eval_rng = random.Random(config.seed + 1)  # the same held-out masks in every run with this seed
        examples = [to_example(i) for i in create_instances(eval_docs, config.max_seq_length, special, eval_rng,
                                                            config.pair_task, 0.0)]
        examples = mask_statically(examples, special, vocab_size, masking, eval_rng)
        examples = examples[: config.eval_batches * config.batch_size]
        eval_batches = [collate(examples[i:i + config.batch_size], special.pad)
                        for i in range(0, len(examples), config.batch_size)]
    return PretrainingData(train, eval_batches, counts.most_common(1)[0][0])


def held_out_word_order(config: PretrainingConfig, batches: list[dict[str, torch.Tensor]],
                        special: SpecialIds) -> list[dict[str, torch.Tensor]]:
    """StructBERT's held-out task: the evaluation batches with a trigram shuffled in every row, the same shuffles at
    every evaluation (seeded apart from the masks); none without ``word_order_probability``."""
    if not config.word_order_probability or not batches:
        return []
    rng = random.Random(config.seed + 2)
    shuffled = [add_word_order(b, 1.0, {special.cls, special.sep, special.pad, special.mask}, rng) for b in batches]
    return [b for b in shuffled if (b["word_order_labels"] != IGNORE_INDEX).any()]


def sampled_documents(documents: list, tokenizer: BertTokenizer, config: PretrainingConfig, copy: int,
                      show: bool) -> list:
    """The documents tokenized with SentencePiece's sampling (``subword_alpha``, ``subword_nbest_size``), seeded
    by the run's seed and the copy; the tokenizer is back to its best segmentation afterwards."""
    enable_subword_sampling(tokenizer, config, seed=config.seed * 1009 + copy)
    try:
        return tokenize_documents(documents, tokenizer, config.word_boundaries, show,
                                  max_tokens_per_char=config.max_tokens_per_char)
    finally:
        tokenizer.disable_sampling()


def parameter_checksum(model: torch.nn.Module) -> float:
    """A number that differs when any weight differs (used to check DDP ranks agree)."""
    return float(sum((p.detach().double() * (i + 1)).sum() for i, p in enumerate(model.parameters())))


def run_pretraining(config: PretrainingConfig, resume: bool = False) -> dict:
    """Train, evaluate, save the final model (with its tokenizer) and ``summary.json``; returns the summary."""
    device = resolve_device(config.device)  # device: cuda on a machine without one fails here, before any work
    distributed.init(device)
    # before any data preparation: a run over an earlier one is refused at once (every rank decides alike)
    check_output_dir(config.output_dir, resume, config.overwrite, clear=distributed.is_main())
    if resume:
        check_resumed_config(config.output_dir, config)  # the same run, or a refusal naming what differs
    distributed.barrier()
    if distributed.is_main() and config.save_steps:  # beside the checkpoints --resume continues from
        save_run_config(config.output_dir, config)
    if isinstance(config.threads, int):  # auto: the trainer times its first steps (training/threads.py)
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)  # the same initial weights on every rank and in every rerun
    tokenizer = load_tokenizer(config)
    model = build_model(config, tokenizer)
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    pair_task, tlm, plm = config.pair_task != "none", config.objective == "tlm", config.objective == "plm"
    special, unigram = special_ids(tokenizer), None
    if tlm:  # parallel pairs, masked on both sides (tlm_run.py)
        data = PretrainingData(*tlm_data(config, tokenizer, special))
        batches = TLMBatches(data.train, config.batch_size, special, len(tokenizer),
                             config.masking_config(), config.seed, distributed.rank(), distributed.world_size())
    elif plm:  # the corpus as side-by-side token streams, random factorisation orders (plm_run.py)
        stream, eval_batches, unigram = plm_data(config, tokenizer, special)
        data = PretrainingData(stream, eval_batches, int(unigram.argmax()))
        batches = PLMBatches(stream, config.batch_size, config.max_seq_length, special.pad,
                             {special.cls, special.sep, special.pad, special.mask}, config.seed, distributed.rank(),
                             distributed.world_size(), config.plm_k)
    else:
        data = build_data(config, tokenizer)
        batches = PretrainingBatches(data.train, config.batch_size, special_ids(tokenizer), len(tokenizer),
                                     config.masking_config(), config.dynamic_masking, config.seed,
                                     distributed.rank(), distributed.world_size())
        if config.word_order_probability:  # StructBERT: shuffled trigrams to restore, after masking
            batches = WordOrderBatches(batches, config.word_order_probability,
                                       {special.cls, special.sep, special.pad, special.mask}, config.seed,
                                       distributed.rank())
    args = config.training_arguments(plot_keys=PLOT_KEYS)
    word_order_eval = held_out_word_order(config, data.eval_batches, special) if not (tlm or plm) else []

    electra = config.objective == "electra"

    def evaluate(m: torch.nn.Module) -> dict[str, float]:
        if electra:
            return evaluate_electra(m, data.eval_batches, data.most_frequent_token, config.seed)
        if tlm:
            return evaluate_tlm(m, data.eval_batches, data.most_frequent_token)
        if plm:
            return evaluate_plm(m, data.eval_batches, unigram)
        scores = evaluate_pretraining(m, data.eval_batches, pair_task, data.most_frequent_token)
        return scores | (evaluate_word_order(m, word_order_eval) if word_order_eval else {})

    step = electra_step if electra else tlm_step if tlm else PLMStep(batches) if plm else \
        lambda m, b: pretraining_step(m, b, pair_task)
    trainer = Trainer(model, args, batches, step,
                      evaluate=evaluate if data.eval_batches else None, tokenizer=tokenizer)
    result = trainer.train(resume=resume)
    checksums = distributed.gather(parameter_checksum(model))
    instances = len(batches.steps) * config.batch_size if plm else len(data.train)  # plm: segments of the streams
    summary = {"steps": result.step, "train_instances": instances, "ranks": distributed.world_size(),
               "device": str(device), "ddp_backend": distributed.backend(),
               "rank_checksums": checksums, "config": config.to_dict(),
               "final_train": next((r for r in reversed(result.history) if r["split"] == "train"), None),
               "final_eval": next((r for r in reversed(result.history) if r["split"] == "eval"), None)}
    if distributed.is_main():
        out = Path(config.output_dir)
        # ELECTRA keeps the discriminator as the model; its generator is an MLM of its own (fill-mask works)
        parts = {"model": model.discriminator, "generator": model.generator} if electra else {"model": model}
        for name, part in parts.items():
            part.save_pretrained(out / name, tokenizer=tokenizer)
        write_text_atomic(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    distributed.barrier()
    return summary


