"""Retrieval scores of sentence vectors: recall@k and MRR@k of each query's one relevant passage."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def retrieval_metrics(queries: np.ndarray, passages: np.ndarray, relevant: Sequence[int] | None = None,
                      ks: Sequence[int] = (1, 10), mrr_at: int = 10) -> dict[str, float]:
    """Rank all passages by cosine for each query; query i's one relevant passage is ``relevant[i]`` (default i).

    A passage scored exactly as high as the relevant one does not push it down (ties count in its favour).
    """
    queries, passages = np.asarray(queries, dtype=np.float32), np.asarray(passages, dtype=np.float32)
    if queries.ndim != 2 or passages.ndim != 2 or queries.shape[1] != passages.shape[1]:
        raise ValueError(f"queries and passages must be (n, d) and (m, d) arrays, got {queries.shape} and "
                         f"{passages.shape}")
    relevant = np.arange(len(queries)) if relevant is None else np.asarray(relevant)
    if len(relevant) != len(queries) or relevant.min() < 0 or relevant.max() >= len(passages):
        raise ValueError("relevant must give one passage index per query")
    q = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
    p = passages / np.maximum(np.linalg.norm(passages, axis=1, keepdims=True), 1e-12)
    similarities = q @ p.T
    target = similarities[np.arange(len(q)), relevant]
    rank = (similarities > target[:, None]).sum(axis=1)  # 0 = first
    metrics = {f"recall@{k}": float(np.mean(rank < k)) for k in ks}
    metrics[f"mrr@{mrr_at}"] = float(np.mean(np.where(rank < mrr_at, 1.0 / (rank + 1), 0.0)))
    return metrics
