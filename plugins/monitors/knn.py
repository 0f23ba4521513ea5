"""`knn`: the validation AUROC of a k-nearest-neighbour classifier on the frozen embeddings, the usual cheap
read-out of a self-supervised encoder during training (Wu et al., "Unsupervised feature learning via
non-parametric instance discrimination", CVPR 2018; DINO, Caron et al., ICCV 2021).

Neighbours are the labelled training records, queries the validation records; similarity is cosine. By default a
neighbour's vote weighs 1 / (cosine distance + eps), as scikit-learn's
`KNeighborsClassifier(weights="distance", metric="cosine")`; `temperature=T` weighs it exp(cos / T) instead (Wu
et al.; DINO uses T = 0.07). Class probabilities are the weighted vote fractions (multi-label: per class, the
weighted fraction of neighbours with that class), scored by `ecgcl.metrics.classification_metrics`.
"""

from __future__ import annotations

import math

import numpy as np

from ecgcl.errors import EcgclError
from ecgcl.interfaces import Monitor
from ecgcl.metrics import classification_metrics
from ecgcl.plugins.monitors._targets import class_count, labelled_rows

EPS = 1e-12  # added to cosine distances: an identical neighbour (distance 0) outvotes every other one
CHUNK = 1024  # queries per similarity block: memory CHUNK x training records


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def knn_probabilities(train_x: np.ndarray, votes: np.ndarray, query_x: np.ndarray, k: int,
                      temperature: float | None = None) -> np.ndarray:
    """(Q, C) weighted vote fractions of the k most cosine-similar training rows; `votes` is (N, C): one-hot
    classes, or 0/1 per class (multi-label, binary as one column)."""
    train_n, k = _unit(train_x), min(k, len(train_x))
    out = []
    for start in range(0, len(query_x), CHUNK):
        sims = _unit(query_x[start:start + CHUNK]) @ train_n.T
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k] if k < sims.shape[1] else np.argsort(-sims, axis=1)
        near = np.take_along_axis(sims, top, axis=1)
        if temperature is None:
            weights = 1.0 / (np.maximum(1.0 - near, 0.0) + EPS)
        else:
            weights = np.exp((near - near.max(axis=1, keepdims=True)) / temperature)
        out.append(np.einsum("qk,qkc->qc", weights, votes[top]) / weights.sum(axis=1, keepdims=True))
    return np.concatenate(out)


class KNN(Monitor):
    """k-NN AUROC on validation: cosine neighbours among the training records, inverse-distance weighted votes
    (or exp(cos / temperature)); NaN where the AUROC is undefined (one class in validation)."""

    name = "knn"
    primary = "knn"
    needs_labels = True
    higher_is_better = True

    def __init__(self, k: int = 20, temperature: float | None = None) -> None:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise EcgclError(f"knn: k must be an integer >= 1, got {k!r}")
        if temperature is not None and (isinstance(temperature, bool) or not isinstance(temperature, (int, float))
                                        or not temperature > 0):
            raise EcgclError(f"knn: temperature must be a number > 0 (or unset), got {temperature!r}")
        self.k, self.temperature = k, None if temperature is None else float(temperature)

    def __call__(self, inputs) -> dict[str, float]:
        rows = labelled_rows(inputs)
        if rows is None:
            return {"knn": float("nan")}
        train, val = rows
        y = np.asarray(inputs.y)
        if inputs.target_kind == "multiclass":
            votes = np.eye(class_count(inputs, train, val))[y[train].astype(np.int64)]
        else:
            votes = y[train].reshape(len(train), -1).astype(np.float64)
        probs = knn_probabilities(inputs.embed(train), votes, inputs.embed(val), self.k, self.temperature)
        if inputs.target_kind not in ("multiclass", "multilabel"):
            probs = probs[:, 0]
        auroc = classification_metrics(y[val], probs)["auroc"]
        return {"knn": float("nan") if math.isnan(auroc) else float(auroc)}


__all__ = ["KNN", "knn_probabilities"]
