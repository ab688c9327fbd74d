"""Bi-encoder losses (SBERT): in-batch negatives on pairs, CoSENT and cosine-similarity on scored pairs, and the
softmax classifier on labelled pairs (SBERT's original NLI objective).

Each takes the embeddings of the batch's columns and returns a scalar; the formulas are sentence-transformers'
(MultipleNegativesRankingLoss, CoSENTLoss, CosineSimilarityLoss, SoftmaxLoss with their default settings).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def cosine_matrix(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``out[i, j] = cos(a[i], b[j])``."""
    return F.normalize(a, p=2, dim=-1) @ F.normalize(b, p=2, dim=-1).T


def multiple_negatives_ranking_loss(anchors: torch.Tensor, *candidates: torch.Tensor,
                                    scale: float = 20.0) -> torch.Tensor:
    """Cross-entropy of picking each anchor's own positive (row i of the first candidates) among all candidates.

    Every other row of the batch is a negative for free ("in-batch negatives"); further candidate columns add
    hard negatives. ``scale`` is the inverse temperature of the softmax over cosines.
    """
    if not candidates:
        raise ValueError("multiple negatives ranking needs anchors and at least one column of positives")
    scores = cosine_matrix(anchors, torch.cat(candidates)) * scale
    return F.cross_entropy(scores, torch.arange(len(anchors), device=anchors.device))


def cosent_loss(a: torch.Tensor, b: torch.Tensor, scores: torch.Tensor, scale: float = 20.0) -> torch.Tensor:
    """CoSENT: ``log(1 + Σ exp(scale·(cos_kl − cos_ij)))`` over every two pairs where (i, j) is scored above (k, l).

    Only the order of the gold scores matters, which suits similarity ratings on any scale.
    """
    cosines = F.cosine_similarity(a, b, dim=-1).float() * scale
    gold = scores.float().view(-1)
    ranked_above = gold.unsqueeze(1) > gold.unsqueeze(0)  # [p, q]: pair p is scored above pair q
    differences = (cosines.unsqueeze(0) - cosines.unsqueeze(1))[ranked_above]  # cos_q − cos_p, to be negative
    return torch.logsumexp(torch.cat([differences.new_zeros(1), differences]), dim=0)


def cosine_similarity_loss(a: torch.Tensor, b: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """Mean squared error between each pair's cosine and its gold score (scores in [-1, 1], typically [0, 1])."""
    return F.mse_loss(F.cosine_similarity(a, b, dim=-1), scores.float().view(-1))


class SoftmaxClassifier(nn.Module):
    """SBERT's classification head: one linear layer on ``(u, v, |u − v|)`` → a logit per label."""

    def __init__(self, dimension: int, num_labels: int):
        super().__init__()
        if num_labels < 2:
            raise ValueError(f"a softmax classifier needs at least 2 labels, got {num_labels}")
        self.classifier = nn.Linear(3 * dimension, num_labels)

    def forward(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        features = torch.cat([u, v, (u - v).abs()], dim=-1)
        return self.classifier(features.to(self.classifier.weight.dtype))


def softmax_loss(head: SoftmaxClassifier, u: torch.Tensor, v: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of each pair's label (a class index) under the head's softmax over its logits."""
    return F.cross_entropy(head(u, v), labels.long().view(-1))


# name → whether the data has a gold score per pair (softmax's rows end with a class label instead)
LOSSES = {"mnrl": False, "cosent": True, "cosine": True, "softmax": False}
