"""What a `Monitor` sees (`MonitorInputs`): the current encoder's embeddings of fixed record subsets, computed in
eval mode without gradients, and the repeat's training and validation records where a task is labelled."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass
class MonitorInputs:
    """The records and embeddings a monitor computes its figures from, at one epoch.

    - `embed(rows)`: (len(rows), D) float32 embeddings of store rows by the current encoder (eval mode, no
      gradients, no augmentation); rows embedded twice in one epoch are computed once;
    - `pool`: a fixed sample of the pretraining pool (label-free monitors: RankMe);
    - `train`, `val`: fixed samples of the repeat's labelled training records (neighbours, probe fit) and its
      validation records (queries); None without a labelled task. Never test records;
    - `y`, `target_kind`: the task's targets for the whole store (`ecgcl.interfaces.TaskTargets`);
    - `views(rows)`: embeddings (z1, z2) of two augmented views of `rows`, drawn with a fixed generator, for
      two-view objectives; None otherwise;
    - `seed`: for any random draw a monitor makes (the same every epoch).
    """

    embed: Callable[[np.ndarray], np.ndarray]
    pool: np.ndarray
    train: np.ndarray | None = None
    val: np.ndarray | None = None
    y: np.ndarray | None = None
    target_kind: str | None = None
    views: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None
    embed_dim: int = 0
    seed: int = 0


POOL_SAMPLE = 1024  # pretraining-pool records the label-free monitors embed (RankMe, alignment / uniformity)
TRAIN_SAMPLE = 1024  # training records that serve as k-NN neighbours or probe training set
VAL_SAMPLE = 1024  # validation records the label-based monitors score
MONITOR_BUDGET = 0.10  # `--monitor-every auto`: monitoring may add about this share to pretraining time
EMBED_SPEEDUP = 3.5  # an embedded record costs about 1/3.5 of a trained one (measured: cnn, contrastive, CPU)
COLLAPSE_RANK = 0.05  # RankMe below this share of the embedding size: the representation is collapsing
COLLAPSE_STD = 1e-4  # every embedding dimension's std below this: a constant representation


def fixed_sample(rows: np.ndarray, size: int, seed: int) -> np.ndarray:
    """At most `size` of `rows`, drawn once with `seed` (sorted, so the store is read in order)."""
    rows = np.asarray(rows, dtype=np.int64)
    if len(rows) <= size:
        return np.sort(rows)
    return np.sort(np.random.default_rng(seed).choice(rows, size=size, replace=False))


@dataclass
class MonitorRecords:
    """The fixed records monitors see: a `pool` sample and, with a labelled task, `train` / `val` samples."""

    pool: np.ndarray
    train: np.ndarray | None = None
    val: np.ndarray | None = None
    y: np.ndarray | None = None
    target_kind: str | None = None

    @classmethod
    def draw(cls, pool: np.ndarray, seed: int, *, train: np.ndarray | None = None, val: np.ndarray | None = None,
             targets=None) -> "MonitorRecords":
        """Samples of the pretraining pool, the repeat's training records (which the pool holds, so the label-free
        monitors reuse their embeddings) and its validation records."""
        labelled = targets is not None and train is not None and val is not None and len(train) and len(val)
        if not labelled:
            return cls(fixed_sample(pool, POOL_SAMPLE, seed))
        train_sample = fixed_sample(train, TRAIN_SAMPLE, seed)
        extra = fixed_sample(np.setdiff1d(pool, train_sample), max(POOL_SAMPLE - len(train_sample), 0), seed + 1)
        pool_sample = np.sort(np.concatenate([train_sample[:POOL_SAMPLE], extra]))
        return cls(pool_sample, train_sample, fixed_sample(val, VAL_SAMPLE, seed + 2), targets.y, targets.kind)


def auto_every(records: "MonitorRecords", pool_size: int) -> int:
    """The fewest epochs between monitorings that keep their cost near `MONITOR_BUDGET` of pretraining time,
    estimated from the records embedded against the records trained (so the same data give the same epochs)."""
    import math

    embedded = len(np.union1d(records.pool, np.concatenate([r for r in (records.train, records.val) if r is not None]
                                                           or [np.empty(0, dtype=np.int64)])))
    return max(1, math.ceil(embedded / (EMBED_SPEEDUP * MONITOR_BUDGET * max(pool_size, 1))))


class EpochMonitors:
    """The monitors of one pretraining run: which, every how many epochs, on which records.

    Called with the encoder after an epoch's training; embeds each needed record once (eval mode, no gradients,
    batches of `batch_size` on `device`) and returns every monitor's figures. It draws no random numbers from the
    training streams and leaves batch-norm statistics alone, so monitoring never changes what training computes.
    """

    def __init__(self, monitors: dict[str, Any], records: MonitorRecords, *, store, every: int, window: int,
                 representation: str, batch_size: int, device, augmentation=None, seed: int = 0) -> None:
        self.monitors, self.records, self.store, self.every = monitors, records, store, every
        self.window, self.representation, self.batch_size, self.device = window, representation, batch_size, device
        self.augmentation, self.seed = augmentation, seed

    def due(self, epoch: int, epochs: int) -> bool:
        """Monitors run every `every` epochs and after the last one."""
        return bool(self.monitors) and (epoch % self.every == 0 or epoch == epochs)

    def __call__(self, encoder) -> dict[str, float]:
        """Every monitor's figures for the current `encoder`."""
        cache = _EmbeddingCache(lambda rows: self._embed(encoder, rows))
        needs_views = any(getattr(m, "needs_views", False) for m in self.monitors.values())
        r = self.records
        inputs = MonitorInputs(embed=cache, pool=r.pool, train=r.train, val=r.val, y=r.y, target_kind=r.target_kind,
                               views=(lambda rows: self._views(encoder, rows)) if needs_views else None,
                               embed_dim=int(encoder.embed_dim), seed=self.seed)
        figures: dict[str, float] = {}
        for monitor in self.monitors.values():
            figures.update({k: float(v) for k, v in monitor(inputs).items()})
        return figures

    def _embed(self, encoder, rows: np.ndarray) -> np.ndarray:
        from ecgcl.engine.inference import compute_embeddings

        return compute_embeddings(encoder, self.store, rows, window=self.window, representation=self.representation,
                                  batch_size=self.batch_size, device=self.device)

    def _views(self, encoder, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings of two augmented views of `rows`, drawn from a generator seeded the same every epoch."""
        import torch

        from ecgcl.compose import draw_views
        from ecgcl.engine.model import embed

        generator = torch.Generator(device=self.device).manual_seed(self.seed)
        encoder.to(self.device).eval()
        first, second = [], []
        with torch.no_grad():
            for start in range(0, len(rows), self.batch_size):
                part = np.asarray(rows[start:start + self.batch_size])
                batch = torch.as_tensor(np.asarray(self.store.signals[part]), dtype=torch.float32, device=self.device)
                for out, view in zip((first, second), draw_views(self.augmentation, batch, generator)):
                    out.append(embed(encoder, view, window=self.window, representation=self.representation).float()
                               .cpu().numpy())
        return np.concatenate(first), np.concatenate(second)


class _EmbeddingCache:
    """`embed(rows)` that computes each row once per epoch (the label-free and k-NN monitors share rows)."""

    def __init__(self, compute: Callable[[np.ndarray], np.ndarray]) -> None:
        self.compute = compute
        self.rows = np.empty(0, dtype=np.int64)
        self.vectors: np.ndarray | None = None

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64)
        missing = np.setdiff1d(rows, self.rows)
        if len(missing):
            fresh = self.compute(missing)
            merged = np.concatenate([self.rows, missing])
            vectors = fresh if self.vectors is None else np.concatenate([self.vectors, fresh])
            order = np.argsort(merged, kind="stable")
            self.rows, self.vectors = merged[order], vectors[order]
        return self.vectors[np.searchsorted(self.rows, rows)]


def collapse_note(figures: dict[str, float], embed_dim: int, earlier_rank: float | None = None) -> str | None:
    """Why the figures show a collapsing representation, or None: RankMe below 5% of the embedding size and not
    risen since the monitoring before (`earlier_rank`; a randomly initialised encoder may start that low and
    climb), or every dimension's std below 1e-4 (a constant representation)."""
    rank, max_std = figures.get("rankme"), figures.get("max_std")
    if max_std is not None and np.isfinite(max_std) and max_std < COLLAPSE_STD:
        return f"every embedding dimension has std below {COLLAPSE_STD:g} (largest {max_std:.2g})"
    if rank is not None and np.isfinite(rank) and rank < COLLAPSE_RANK * embed_dim and earlier_rank is not None \
            and rank <= earlier_rank:
        return (f"RankMe {rank:.2f} is below {COLLAPSE_RANK:.0%} of the embedding size {embed_dim} and fell from "
                f"{earlier_rank:.2f}")
    return None
