"""Long documents, one table: head, tail, head+tail (the auto length rule), sliding windows, key sentences, the
hierarchical reader (bertkit.finetuning.hierarchical), and Longformer-style local + global attention at 2,048 and
4,096 tokens (rows on request).

    .venv/bin/python bench/long_documents.py --model out/finetune-rt/best [--rows head,tail,...] [--train-docs 96]
        [--window 510] [--reviews 40,160]

No long labelled English set installs offline, so the documents are BUILT from Rotten Tomatoes reviews: each joins
40–160 reviews (``--reviews``) of one split (≈ 1–4k tokens), 60–70 % of them of one label, which is the document's
label (the overall opinion of a long thread). Unlike the same-label documents of bench/long_text.py, a window then
sees only a sample of the evidence. Every row starts from the same classifier fine-tuned on single reviews
(``make finetune-rt``) and is fine-tuned on the same training documents (one pass, batch 1, AdamW). key_sentences
keeps the reviews (sentences) most like the document's mean vector, ranked with the model's own input embeddings
(bertkit.finetuning.key_sentences); the hierarchical row reads windows of ``--window`` tokens back to back (at most
``--max-chunks``) through the classifier's encoder, one transformer layer over their vectors, and the head, all
trained end to end, the fresh layer ``--head-lr-scale`` times faster. Seconds per document are prediction time.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from compare_commits import cpu_model  # noqa: E402

from bertkit.encoding.batching import pad_batch  # noqa: E402
from bertkit.finetuning.datasets import load_dataset  # noqa: E402
from bertkit.finetuning.hierarchical import BertHierarchicalForSequenceClassification  # noqa: E402
from bertkit.finetuning.input_settings import InputSettings  # noqa: E402
from bertkit.finetuning.key_sentences import embedding_vectors, key_sentence_run  # noqa: E402
from bertkit.finetuning.long_text import auto_head_tokens, chunk_runs  # noqa: E402
from bertkit.finetuning.models import BertForSequenceClassification, TaskConfig  # noqa: E402
from bertkit.model.efficient import use_attention  # noqa: E402
from bertkit.model.long_positions import extend_positions  # noqa: E402
from bertkit.pretraining.documents import split_sentences  # noqa: E402
from bertkit.tokenization import AutoTokenizer  # noqa: E402

LOCAL_WINDOW = 256  # Longformer's ±256 (its 512-token window)
ROWS = ("head", "tail", "head+tail", "sliding", "key_sentences", "hierarchical", "local-2048", "local-4096")
DEFAULT_ROWS = ROWS[:6]


@dataclass
class Document:
    """A document's token ids, label id, and its sentences (text and ids) for key_sentences."""

    ids: list[int]
    label: int
    sentences: list[str]
    sentence_ids: list[list[int]]


def build_documents(reviews: list[dict], count: int, seed: int, low: int = 40, high: int = 160) -> list[dict]:
    """``count`` documents of ``low``–``high`` reviews, 60–70 % of one label (the document's), shuffled together."""
    rng = np.random.default_rng(seed)
    by_label = {label: [r["text"] for r in reviews if r["label"] == label] for label in sorted({r["label"] for r in
                                                                                              reviews})}
    labels = list(by_label)
    docs = []
    for i in range(count):
        label, other = labels[i % 2], labels[1 - i % 2]
        size = int(rng.integers(low, high + 1))
        major = int(round(size * rng.uniform(0.6, 0.7)))
        texts = list(rng.choice(by_label[label], major, replace=False))
        texts += list(rng.choice(by_label[other], size - major, replace=False))
        rng.shuffle(texts)
        docs.append({"text": " ".join(texts), "label": label, "reviews": size})
    return [docs[i] for i in rng.permutation(len(docs))]


def framed(tokenizer, ids: list[int]) -> list[int]:
    """[CLS] ids [SEP]."""
    return [tokenizer.cls_token_id, *ids, tokenizer.sep_token_id]


def batch_of(tokenizer, runs: list[list[int]], multiple: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Each run framed, right-padded into ids and mask (width a multiple of ``multiple``)."""
    return pad_batch([framed(tokenizer, run) for run in runs], tokenizer.pad_token_id, multiple=multiple)


def head_tail(ids: list[int], window: int) -> list[int]:
    """The auto length rule: 128 + 382 tokens up to 800, 256 + 254 beyond (the same shares of a smaller window)."""
    if len(ids) <= window:
        return ids
    head = auto_head_tokens(len(ids), window)
    return ids[:head] + ids[len(ids) - (window - head):]


def chunks(ids: list[int], size: int) -> list[list[int]]:
    """Consecutive, non-overlapping runs of ``size`` tokens (the last may be shorter)."""
    return [ids[s:s + size] for s in range(0, len(ids), size)]


def key_sentences(model: nn.Module, doc: Document, window: int) -> list[int]:
    """The sentences most like the document's mean vector (the model's embeddings), in order, up to the window."""
    if len(doc.ids) <= window or len(doc.sentence_ids) < 2:
        return doc.ids[:window]
    vectors = embedding_vectors(model)(doc.sentences, doc.sentence_ids)
    return key_sentence_run(doc.sentence_ids, vectors, window)


View = Callable[[nn.Module, object, Document, int], torch.Tensor]


def single_view(choose: Callable[[nn.Module, Document, int], list[int]]) -> View:
    """Logits of one window-sized view of the document."""
    return lambda model, tok, doc, window: model(*batch_of(tok, [choose(model, doc, window)])).logits


def sliding_view(model: nn.Module, tokenizer, doc: Document, window: int) -> torch.Tensor:
    """Mean logits of the document's consecutive windows (padded into one batch)."""
    return model(*batch_of(tokenizer, chunks(doc.ids, window))).logits.mean(0, keepdim=True)


def hierarchical_view(model: nn.Module, tokenizer, doc: Document, window: int) -> torch.Tensor:
    """The reader's logits over the document's windows (back to back, at most the model's max_chunks)."""
    runs = chunk_runs(doc.ids, window, None, model.config.finetuning.max_chunks)
    ids, mask = batch_of(tokenizer, runs)
    return model(ids, mask, chunk_owner=torch.zeros(len(runs), dtype=torch.long)).logits


def local_view(length: int) -> View:
    """Logits of the first ``length`` tokens through local + global attention."""
    def view(model: nn.Module, tokenizer, doc: Document, window: int) -> torch.Tensor:
        return model(*batch_of(tokenizer, [doc.ids[:length - 2]], multiple=LOCAL_WINDOW)).logits
    return view


VIEWS: dict[str, View] = {
    "head": single_view(lambda m, d, w: d.ids[:w]), "tail": single_view(lambda m, d, w: d.ids[-w:]),
    "head+tail": single_view(lambda m, d, w: head_tail(d.ids, w)), "sliding": sliding_view,
    "key_sentences": single_view(key_sentences), "hierarchical": hierarchical_view,
    "local-2048": local_view(2048), "local-4096": local_view(4096)}


def hierarchical_model(base: BertForSequenceClassification, max_chunks: int) -> nn.Module:
    """The classifier's encoder and head around a fresh chunk reader (bertkit.finetuning.hierarchical)."""
    settings = InputSettings(long_text="hierarchical", max_chunks=max_chunks)
    config = TaskConfig.from_dict(base.config.to_dict() | {"finetuning": settings.to_dict()})
    torch.manual_seed(0)
    model = BertHierarchicalForSequenceClassification(config)
    missing, unexpected = model.load_state_dict(base.state_dict(), strict=False)
    assert not unexpected and all(name.startswith("chunk_reader.") for name in missing), (missing, unexpected)
    return model


def long_model(base: nn.Module, row: str, max_chunks: int) -> nn.Module:
    """A fresh copy of the classifier; the local rows get 4,096 positions (copied table) and local + global
    attention (±256, [CLS] global); the hierarchical row its chunk reader."""
    if row == "hierarchical":
        return hierarchical_model(base, max_chunks)
    model = copy.deepcopy(base)
    if row.startswith("local"):
        extend_positions(model, 4096)
        use_attention(model, "local", local_window=LOCAL_WINDOW, local_global_tokens=[0])
    return model


def fine_tune(model: nn.Module, view: View, tokenizer, train: list[Document], window: int, lr: float,
              fresh_lr_scale: float) -> float:
    """One pass over the training documents, batch 1, AdamW with linear decay (fresh weights — the chunk reader —
    ``fresh_lr_scale`` times faster, as bertkit finetune's head_lr_scale); returns the seconds."""
    fresh = [p for n, p in model.named_parameters() if n.startswith("chunk_reader.")]
    rest = [p for n, p in model.named_parameters() if not n.startswith("chunk_reader.")]
    groups = [{"params": rest, "lr": lr}] + ([{"params": fresh, "lr": lr * fresh_lr_scale}] if fresh else [])
    optimizer = torch.optim.AdamW(groups, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1 - step / len(train))
    model.train()
    start = time.perf_counter()
    for i, doc in enumerate(train):
        loss = F.cross_entropy(view(model, tokenizer, doc, window), torch.tensor([doc.label]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if (i + 1) % 16 == 0:
            print(f"  {i + 1}/{len(train)} documents, loss {loss.item():.3f}, "
                  f"{time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    return time.perf_counter() - start


@torch.inference_mode()
def predict(model: nn.Module, view: View, tokenizer, test: list[Document], window: int) -> tuple[float, float]:
    """Accuracy and seconds per document."""
    model.eval()
    start = time.perf_counter()
    right = sum(int(view(model, tokenizer, doc, window).argmax(-1).item() == doc.label) for doc in test)
    return right / len(test), (time.perf_counter() - start) / len(test)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="a classifier fine-tuned on single reviews (make finetune-rt)")
    parser.add_argument("--rows", default=",".join(DEFAULT_ROWS), help=f"comma-separated, of {', '.join(ROWS)}")
    parser.add_argument("--train-docs", type=int, default=96)
    parser.add_argument("--test-docs", type=int, default=100)
    parser.add_argument("--window", type=int, default=510, help="tokens a view holds besides [CLS] and [SEP]")
    parser.add_argument("--reviews", default="40,160", help="reviews per document: LOW,HIGH")
    parser.add_argument("--lr", type=float, default=2e-5)
    parser.add_argument("--head-lr-scale", type=float, default=10.0, help="hierarchical: its fresh layer's rate")
    parser.add_argument("--max-chunks", type=int, default=16, help="hierarchical: windows per document")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", default=None, help="append each row as a JSON line here")
    args = parser.parse_args()
    rows = args.rows.split(",")
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        parser.error(f"unknown rows {unknown}; choose from {ROWS}")
    low, high = (int(x) for x in args.reviews.split(","))
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    base = BertForSequenceClassification.from_pretrained(args.model).eval()
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    label_ids = base.config.label2id
    splits = load_dataset("rotten_tomatoes")

    def encoded(docs: list[dict]) -> list[Document]:
        out = []
        for d in docs:
            sentences = split_sentences(d["text"])
            out.append(Document(tokenizer.text_to_ids(d["text"]), label_ids[d["label"]], sentences,
                                [tokenizer.text_to_ids(s) for s in sentences]))
        return out

    train = encoded(build_documents(splits["train"], args.train_docs, seed=1, low=low, high=high))
    test = encoded(build_documents(splits["test"], args.test_docs, seed=2, low=low, high=high))
    lengths = [len(doc.ids) for doc in test]
    print(f"{cpu_model()}, {args.threads} thread(s); {len(train)} training and {len(test)} test documents of "
          f"{low}–{high} reviews, test {np.mean(lengths):.0f} tokens on average ({min(lengths)}–{max(lengths)}), "
          f"{np.mean([len(d.sentences) for d in test]):.0f} sentences; window {args.window} tokens", flush=True)
    print(f"{'row':<14} {'accuracy':>8} {'s/document':>11} {'training s':>11}", flush=True)
    for row in rows:
        model = long_model(base, row, args.max_chunks)
        train_seconds = fine_tune(model, VIEWS[row], tokenizer, train, args.window, args.lr, args.head_lr_scale)
        accuracy, seconds = predict(model, VIEWS[row], tokenizer, test, args.window)
        result = {"row": row, "accuracy": accuracy, "seconds_per_document": seconds, "train_seconds": train_seconds,
                  "train_docs": len(train), "test_docs": len(test), "window": args.window, "reviews": [low, high],
                  "cpu": cpu_model(), "threads": args.threads}
        print(f"{row:<14} {accuracy:>8.3f} {seconds:>11.3f} {train_seconds:>11.0f}", flush=True)
        if args.output:
            with open(args.output, "a", encoding="utf-8") as out:
                out.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
