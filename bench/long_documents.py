"""Long documents, one table: head, tail, head+tail (the auto length rule), sliding windows, Longformer-style
local + global attention at 2,048 and 4,096 tokens, and a hierarchical model (chunk vectors → a small encoder).

    .venv/bin/python bench/long_documents.py --model out/finetune-rt/best [--rows head,tail,...] [--train-docs 96]

No long labelled English set installs offline, so the documents are BUILT from Rotten Tomatoes reviews: each joins
40–160 reviews of one split (≈ 1–4k tokens), 60–70 % of them of one label, which is the document's label (the
overall opinion of a long thread). Unlike the same-label documents of bench/long_text.py, a window then sees only a
sample of the evidence. Every row starts from the same classifier fine-tuned on single reviews (``make finetune-rt``)
and is fine-tuned on the same training documents (one pass, batch 1, AdamW); the hierarchical row trains only its
small encoder over frozen chunk vectors. Seconds per document are prediction time on the test documents.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from compare_commits import cpu_model  # noqa: E402

from bertkit.encoding.batching import pad_batch  # noqa: E402
from bertkit.finetuning.datasets import load_dataset  # noqa: E402
from bertkit.finetuning.long_text import auto_head_tokens  # noqa: E402
from bertkit.finetuning.models import BertForSequenceClassification  # noqa: E402
from bertkit.model.efficient import use_attention  # noqa: E402
from bertkit.model.long_positions import extend_positions  # noqa: E402
from bertkit.tokenization import AutoTokenizer  # noqa: E402

WINDOW = 510  # BERT's 512 positions less [CLS] and [SEP]
LOCAL_WINDOW = 256  # Longformer's ±256 (its 512-token window)
ROWS = ("head", "tail", "head+tail", "sliding", "local-2048", "local-4096", "hierarchical")


def build_documents(reviews: list[dict], count: int, seed: int) -> list[dict]:
    """``count`` documents of 40–160 reviews, 60–70 % of one label (the document's), shuffled together."""
    rng = np.random.default_rng(seed)
    by_label = {label: [r["text"] for r in reviews if r["label"] == label] for label in sorted({r["label"] for r in
                                                                                              reviews})}
    labels = list(by_label)
    docs = []
    for i in range(count):
        label, other = labels[i % 2], labels[1 - i % 2]
        size = int(rng.integers(40, 161))
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


def head_tail(ids: list[int]) -> list[int]:
    """The auto length rule: 128 + 382 tokens up to 800, 256 + 254 beyond."""
    if len(ids) <= WINDOW:
        return ids
    head = auto_head_tokens(len(ids), WINDOW)
    return ids[:head] + ids[len(ids) - (WINDOW - head):]


def chunks(ids: list[int], size: int = WINDOW) -> list[list[int]]:
    """Consecutive, non-overlapping runs of ``size`` tokens (the last may be shorter)."""
    return [ids[s:s + size] for s in range(0, len(ids), size)]


def single_view(model: nn.Module, tokenizer, ids: list[int], choose: Callable[[list[int]], list[int]]) -> torch.Tensor:
    """Logits of one 512-token view of the document."""
    return model(*batch_of(tokenizer, [choose(ids)])).logits


def sliding_view(model: nn.Module, tokenizer, ids: list[int]) -> torch.Tensor:
    """Mean logits of the document's consecutive 510-token windows (padded into one batch)."""
    return model(*batch_of(tokenizer, chunks(ids))).logits.mean(0, keepdim=True)


def local_view(length: int):
    """Logits of the first ``length`` tokens through local + global attention."""
    def view(model: nn.Module, tokenizer, ids: list[int]) -> torch.Tensor:
        return model(*batch_of(tokenizer, [ids[:length - 2]], multiple=LOCAL_WINDOW)).logits
    return view


VIEWS = {"head": lambda m, t, ids: single_view(m, t, ids, lambda x: x[:WINDOW]),
         "tail": lambda m, t, ids: single_view(m, t, ids, lambda x: x[-WINDOW:]),
         "head+tail": lambda m, t, ids: single_view(m, t, ids, head_tail),
         "sliding": sliding_view, "local-2048": local_view(2048), "local-4096": local_view(4096)}


def long_model(base: nn.Module, row: str) -> nn.Module:
    """A fresh copy of the classifier; the local rows get 4,096 positions (copied table) and local + global
    attention (±256, [CLS] global)."""
    model = copy.deepcopy(base)
    if row.startswith("local"):
        extend_positions(model, 4096)
        use_attention(model, "local", local_window=LOCAL_WINDOW, local_global_tokens=[0])
    return model


def fine_tune(model: nn.Module, view, tokenizer, train: list[tuple[list[int], int]], lr: float) -> float:
    """One pass over the training documents, batch 1, AdamW with linear decay; returns the seconds."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1 - step / len(train))
    model.train()
    start = time.perf_counter()
    for i, (ids, label) in enumerate(train):
        loss = F.cross_entropy(view(model, tokenizer, ids), torch.tensor([label]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if (i + 1) % 16 == 0:
            print(f"  {i + 1}/{len(train)} documents, loss {loss.item():.3f}, "
                  f"{time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    return time.perf_counter() - start


@torch.inference_mode()
def predict(model: nn.Module, view, tokenizer, test: list[tuple[list[int], int]]) -> tuple[float, float]:
    """Accuracy and seconds per document."""
    model.eval()
    start = time.perf_counter()
    right = sum(int(view(model, tokenizer, ids).argmax(-1).item() == label) for ids, label in test)
    return right / len(test), (time.perf_counter() - start) / len(test)


class ChunkEncoder(nn.Module):
    """The hierarchical model's top: chunk vectors + learned chunk positions → one transformer layer → mean → labels."""

    def __init__(self, width: int, labels: int, max_chunks: int = 64):
        super().__init__()
        self.positions = nn.Embedding(max_chunks, width)
        self.layer = nn.TransformerEncoderLayer(width, nhead=6, dim_feedforward=2 * width, dropout=0.1,
                                                batch_first=True)
        self.classifier = nn.Linear(width, labels)

    def forward(self, vectors: torch.Tensor) -> torch.Tensor:
        """(1, chunks, width) → (1, labels)."""
        hidden = self.layer(vectors + self.positions.weight[:vectors.shape[1]])
        return self.classifier(hidden.mean(1))


@torch.inference_mode()
def chunk_vectors(base: nn.Module, tokenizer, ids: list[int]) -> torch.Tensor:
    """The classifier's sentence vector of every 510-token chunk: (1, chunks, width)."""
    return base.sentence_vector(*batch_of(tokenizer, chunks(ids)), None).unsqueeze(0)


def hierarchical(base: nn.Module, tokenizer, train, test, epochs: int, lr: float) -> dict:
    """Frozen chunk vectors → ChunkEncoder trained ``epochs`` passes; accuracy and seconds per document (chunk
    vectors included)."""
    base.eval()
    start = time.perf_counter()
    train_vectors = [(chunk_vectors(base, tokenizer, ids), label) for ids, label in train]
    train_seconds = time.perf_counter() - start
    torch.manual_seed(0)
    top = ChunkEncoder(base.config.hidden_size, base.config.num_labels)
    optimizer = torch.optim.AdamW(top.parameters(), lr=lr, weight_decay=0.01)
    order = np.random.default_rng(0)
    start = time.perf_counter()
    for _ in range(epochs):
        top.train()
        for i in order.permutation(len(train_vectors)):
            vectors, label = train_vectors[i]
            loss = F.cross_entropy(top(vectors), torch.tensor([label]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    train_seconds += time.perf_counter() - start
    top.eval()
    with torch.inference_mode():
        start = time.perf_counter()
        right = sum(int(top(chunk_vectors(base, tokenizer, ids)).argmax(-1).item() == label) for ids, label in test)
        seconds = (time.perf_counter() - start) / len(test)
    return {"accuracy": right / len(test), "seconds_per_document": seconds, "train_seconds": train_seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="a classifier fine-tuned on single reviews (make finetune-rt)")
    parser.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated, of {', '.join(ROWS)}")
    parser.add_argument("--train-docs", type=int, default=96)
    parser.add_argument("--test-docs", type=int, default=100)
    parser.add_argument("--lr", type=float, default=2e-5)
    parser.add_argument("--top-epochs", type=int, default=10, help="hierarchical: passes of its small encoder")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", default=None, help="append each row as a JSON line here")
    args = parser.parse_args()
    rows = args.rows.split(",")
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        parser.error(f"unknown rows {unknown}; choose from {ROWS}")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    base = BertForSequenceClassification.from_pretrained(args.model).eval()
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    label_ids = base.config.label2id
    splits = load_dataset("rotten_tomatoes")

    def encoded(docs: list[dict]) -> list[tuple[list[int], int]]:
        return [(tokenizer.text_to_ids(d["text"]), label_ids[d["label"]]) for d in docs]

    train = encoded(build_documents(splits["train"], args.train_docs, seed=1))
    test = encoded(build_documents(splits["test"], args.test_docs, seed=2))
    lengths = [len(ids) for ids, _ in test]
    print(f"{cpu_model()}, {args.threads} thread(s); {len(train)} training and {len(test)} test documents, "
          f"test {np.mean(lengths):.0f} tokens on average ({min(lengths)}–{max(lengths)})", flush=True)
    for row in rows:
        if row == "hierarchical":
            result = hierarchical(base, tokenizer, train, test, args.top_epochs, lr=1e-3)
        else:
            model = long_model(base, row)
            train_seconds = fine_tune(model, VIEWS[row], tokenizer, train, args.lr)
            accuracy, seconds = predict(model, VIEWS[row], tokenizer, test)
            result = {"accuracy": accuracy, "seconds_per_document": seconds, "train_seconds": train_seconds}
        result = {"row": row, **result, "train_docs": len(train), "test_docs": len(test), "cpu": cpu_model(),
                  "threads": args.threads}
        print(f"{row:<13} accuracy {result['accuracy']:.3f}   {result['seconds_per_document']:.3f} s/document   "
              f"(training {result['train_seconds']:.0f} s)", flush=True)
        if args.output:
            with open(args.output, "a", encoding="utf-8") as out:
                out.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
