"""Embedding distillation: a sentence encoder (the teacher, default the installed all-MiniLM-L6-v2) → a student of
fewer layers (copied teacher layers) or a narrower one, trained on unlabeled sentences to reproduce the teacher's
sentence vectors (MSE, before any Normalize), as in Reimers & Gurevych 2020's multilingual distillation.

Sentences: ``train_file``'s, else the titles, passages and other prose paragraphs of the Python-docs retrieval pages
outside the test set (``bench/retrieval.py``'s split) and the dev set (15 % of the other pages' pairs, scored by
MRR@10), then Rotten Tomatoes reviews, up to ``max_texts``; dev and test pairs: ``dev_file`` / ``test_file``'s, else
those pages' (``embedding_data.py``). The student is a sentence-transformers folder (``output_dir/best``) that
``SentenceEncoder`` loads.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..assets import default_model_dir
from ..encoding import SentenceEncoder
from ..encoding.modules import Dense, FolderLayout, Normalize
from ..encoding.pairs import Pair
from ..encoding.retrieval import retrieval_metrics
from ..encoding.sentence_encoder import pad_batch
from ..finetuning.train import seed_everything
from ..model import AutoModel
from ..training import Trainer
from ..training.batches import EpochBatches
from .config import DistillConfig
from .embedding_data import load_embedding_data
from .losses import hidden_cosine, similarity_kl
from .speed import fastest_rounds
from .student import check_same_vocabulary, copied_student, every_other_layer, narrow_student, search_layers


def student_encoder(teacher: SentenceEncoder, config: DistillConfig,
                    layers: list[int] | None = None) -> SentenceEncoder:
    """The teacher's pipeline (pooling, Dense, Normalize …) over a smaller model; a narrower student gets a Dense
    (identity activation) up to the teacher's width, so that its vectors can be compared with the teacher's.
    A copied student takes ``layers``, else the config's ``student_layers``, else every other layer."""
    model = teacher.model
    if config.student_model is not None:
        check_same_vocabulary(teacher_folder(config), config.student_model)
        student = AutoModel.from_pretrained(config.student_model).train()
    elif config.student_hidden_size is not None:
        student = narrow_student(model, config.student_num_layers, config.student_hidden_size, config.student_heads,
                                 config.student_intermediate_size, seed=config.seed)
    else:
        student = copied_student(model, config.student_num_layers, layers or config.student_layers,
                                 config.student_intermediate_size)
    return wrap_student(teacher, student)


def wrap_student(teacher: SentenceEncoder, student: nn.Module) -> SentenceEncoder:
    """``student`` under the teacher's tokenizer and pipeline (in training mode)."""
    model = teacher.model
    modules = [copy.deepcopy(m) for m in teacher.head]
    if student.config.hidden_size != model.config.hidden_size:
        if any(not isinstance(m, Normalize) for m in modules):
            raise ValueError("a narrower student needs a teacher whose pipeline is pooling (+ Normalize) only")
        width = teacher.pooled_dimension
        modules = [Dense(width * student.config.hidden_size // model.config.hidden_size, width,
                         activation_function="torch.nn.modules.linear.Identity"), *modules]
    layout = FolderLayout(Path("."), teacher.pool, None, modules, teacher.max_seq_length, teacher.do_lower_case,
                          dict(teacher.prompts), teacher.default_prompt_name, teacher.similarity_fn_name)
    return SentenceEncoder(student, teacher.tokenizer, layout=layout).train()


def searched_layers(teacher: SentenceEncoder, config: DistillConfig, dev: list[Pair]) -> list[int]:
    """The teacher layers whose copied student scores the best dev MRR@10 before training (``layer_search``)."""
    def dev_mrr(model: nn.Module) -> float:
        return score(wrap_student(teacher, model).eval(), dev, config.eval_batch_size)["mrr@10"]
    return search_layers(teacher.model, config.student_num_layers, dev_mrr)


def teacher_folder(config: DistillConfig) -> Path:
    """The teacher's folder: the config's, else the installed MiniLM."""
    return Path(config.teacher) if config.teacher else default_model_dir()


def unnormalized(encoder: SentenceEncoder, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The encoder's vectors before Normalize: what the student learns to reproduce (lengths carry information)."""
    hidden = encoder.model(input_ids, attention_mask=attention_mask).last_hidden_state
    vectors = encoder.pool(hidden, attention_mask, 0)
    for module in encoder.head:
        if not isinstance(module, Normalize):
            vectors = module(vectors)
    return vectors


def vector_loss(student: torch.Tensor, teacher: torch.Tensor, config: DistillConfig
                ) -> tuple[torch.Tensor, dict[str, float]]:
    """MSE of the vectors + cosine_weight·(1 − cos) + similarity_weight·(in-batch similarity KL); the parts too."""
    terms = {"loss_mse": (1.0, F.mse_loss(student.float(), teacher.float()))}
    if config.cosine_weight:
        terms["loss_cosine"] = (config.cosine_weight, hidden_cosine(student, teacher))
    if config.similarity_weight:
        terms["loss_similarity"] = (config.similarity_weight,
                                    similarity_kl(student, teacher, config.similarity_temperature))
    total = sum(weight * value for weight, value in terms.values())
    return total, {name: value.item() for name, (_, value) in terms.items()}


def teacher_targets(teacher: SentenceEncoder, ids: list[list[int]], batch_size: int) -> torch.Tensor:
    """The teacher's vectors for every text, computed once (the teacher never changes)."""
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    out = torch.empty(len(ids), teacher.dimension)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            chosen = order[start:start + batch_size]
            input_ids, mask = pad_batch([ids[i] for i in chosen], teacher.tokenizer.pad_token_id)
            out[chosen] = unnormalized(teacher, input_ids, mask).float()
    return out


def distill_embeddings(config: DistillConfig) -> dict[str, Any]:
    """Train the student, keep its best dev model, and report teacher and student side by side on the test pages."""
    return config.guarded_run(_distill_embeddings)


def _distill_embeddings(config: DistillConfig) -> dict[str, Any]:
    seed_everything(config.seed)
    teacher = SentenceEncoder.from_pretrained(teacher_folder(config))
    teacher.requires_grad_(False)
    if config.max_length:
        teacher.max_seq_length = min(config.max_length, teacher.max_seq_length)
    data = load_embedding_data(config)  # the user's files where given, else the installed pages and reviews
    texts, dev, test = data.texts, data.dev, data.test
    layers = searched_layers(teacher, config, dev) if config.layer_search else config.student_layers
    if layers is None and config.student_hidden_size is None and config.student_model is None:
        layers = every_other_layer(teacher.model.config.num_hidden_layers, config.student_num_layers)  # reported
    student = student_encoder(teacher, config, layers)
    ids, _ = teacher.tokenize(texts)
    print(f"{len(texts):,} unlabeled sentences ({data.sources['train']}); dev {len(dev)} pairs, test {len(test)} "
          "pairs; teacher vectors …", file=sys.stderr)
    targets = teacher_targets(teacher, ids, config.eval_batch_size)
    pad_id = teacher.tokenizer.pad_token_id

    def collate(rows: list[int]) -> dict[str, torch.Tensor]:
        input_ids, mask = pad_batch([ids[i] for i in rows], pad_id)
        return {"input_ids": input_ids, "attention_mask": mask, "targets": targets[rows]}

    def compute(model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        vectors = unnormalized(model, batch["input_ids"], batch["attention_mask"])
        total, parts = vector_loss(vectors, batch["targets"], config)
        return total, {**parts, "tokens": float(batch["attention_mask"].sum())}

    batches = EpochBatches(list(range(len(ids))), config.batch_size, collate, seed=config.seed, bucket_size=50,
                           length=lambda i: len(ids[i]))
    args = config.training_arguments(batches.steps_per_epoch, "mrr@10",
                                     ("loss", "loss_mse", "loss_cosine", "loss_similarity", "mrr@10"))

    def evaluate(m: nn.Module) -> dict[str, float]:
        return score(m, dev, config.eval_batch_size)

    outcome = Trainer(student, args, batches, compute, evaluate=evaluate,
                      save_best=lambda m, folder: m.save_pretrained(folder)).train()
    best = SentenceEncoder.from_pretrained(Path(config.output_dir) / "best")
    return compare(config, teacher, best, test, outcome.step, config.steps_per_epoch(batches.steps_per_epoch),
                   len(texts), layers, data.sources | {"dev_pairs": len(dev)})


def score(encoder: SentenceEncoder, pairs: list[Pair], batch_size: int) -> dict[str, float]:
    """Recall@1, recall@10 and MRR@10 of each title's own passage among all the pairs' passages."""
    queries = encoder.encode([p.query for p in pairs], batch_size=batch_size)
    passages = encoder.encode([p.passage for p in pairs], batch_size=batch_size)
    return retrieval_metrics(queries, passages)


def compare(config: DistillConfig, teacher: SentenceEncoder, student: SentenceEncoder, test: list[Pair],
            steps: int, steps_per_epoch: int, texts: int, layers: list[int] | None = None,
            data: dict[str, Any] | None = None) -> dict[str, Any]:
    """Retrieval quality and encode time of teacher and student on the test pairs, in one run; ``data`` says
    where the sentences and pairs came from."""
    scores = {"teacher": score(teacher, test, config.eval_batch_size),
              "student": score(student, test, config.eval_batch_size)}
    every = [t for p in test for t in (p.query, p.passage)]
    seconds = fastest_rounds({name: (lambda e=e: e.encode(every, batch_size=32))
                              for name, e in (("teacher", teacher), ("student", student))}, config.speed_rounds)
    queries, passages = ([p.query for p in test], [p.passage for p in test])
    agreement = float(np.mean(np.sum(student.encode(queries + passages) * teacher.encode(queries + passages), 1)))
    result = {
        "output_dir": config.output_dir, "teacher_dir": str(config.teacher or "all-MiniLM-L6-v2 (installed)"),
        "test_pairs": len(test), "unlabeled_sentences": texts, "data": data or {}, "steps": steps,
        "epochs_run": round(steps / steps_per_epoch, 3),
        "mean_cosine_student_teacher": agreement, "student_layers": layers,
        **{name: {**scores[name], "layers": e.model.config.num_hidden_layers, "hidden_size": e.model.config.hidden_size,
                  "parameters": e.model.num_parameters(), "encode_seconds": seconds[name],
                  "texts_per_second": len(every) / seconds[name]}
           for name, e in (("teacher", teacher), ("student", student))},
        "mrr_kept": scores["student"]["mrr@10"] / scores["teacher"]["mrr@10"],
    }
    return config.save_results(result, seconds, f"MRR@10 teacher {scores['teacher']['mrr@10']:.4f}, student "
                               f"{scores['student']['mrr@10']:.4f} ({100 * result['mrr_kept']:.1f} % kept)")
