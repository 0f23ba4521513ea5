"""An example ecgcl plugin: the module itself is the pluggy plugin, found through the `ecgcl` entry point.

Besides the components below it adds a reader (`csv_reader`: one CSV per record), a pretraining monitor
(`monitors`: `embedding_norm`), an experiment tracker (`trackers`: `csv_log`) and a command (`commands`:
`ecgcl store-summary STORE`).

The augmentation and the encoder work in physical units and take the store's sampling rate from the runtime: a
factory parameter named `fs` (likewise `leads`, `length`, `in_leads`, `device`) is filled by ecgcl, never by the
user. The SimSiam objective likewise names `embed_dim`, `augmentation` and `projection_dim`, which ecgcl passes.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import ecgcl
from ecgcl.errors import EcgclError
from ecgcl.interfaces import Augmentation, Encoder, Objective, Task, TaskTargets


class BaselineWander(Augmentation):
    """Add a slow sinusoidal baseline drift scaled to each lead's standard deviation.

    Baseline wander from respiration and electrode motion lies below about 0.5 Hz (Moody, Muldrow & Mark,
    "A noise stress test for arrhythmia detectors", Computers in Cardiology 1984). One random frequency in
    [min_hz, max_hz] and phase per recording; `fs` (Hz) comes from the store.
    """

    name = "baseline_wander"

    def __init__(self, fs: float, amplitude: float = 0.2, min_hz: float = 0.05, max_hz: float = 0.5) -> None:
        if not 0 <= amplitude:
            raise ValueError(f"amplitude must be >= 0, got {amplitude}")
        if not 0 < min_hz <= max_hz < fs / 2:
            raise ValueError(f"need 0 < min_hz <= max_hz < fs/2, got {min_hz}, {max_hz}, fs={fs}")
        self.fs, self.amplitude, self.min_hz, self.max_hz = float(fs), amplitude, min_hz, max_hz

    def __call__(self, batch: Tensor, generator: torch.Generator) -> Tensor:
        b, _, t = batch.shape
        opts = {"device": batch.device, "dtype": batch.dtype}
        freq = self.min_hz + (self.max_hz - self.min_hz) * torch.rand(b, 1, 1, generator=generator, **opts)
        phase = 2 * math.pi * torch.rand(b, 1, 1, generator=generator, **opts)
        time = torch.arange(t, **opts) / self.fs
        drift = torch.sin(2 * math.pi * freq * time + phase)
        return batch + self.amplitude * batch.std(dim=-1, keepdim=True) * drift


class GapCNN(Encoder):
    """Two convolution blocks and global average pooling: a compact encoder for any lead count, length and rate.

    The kernels span `kernel_ms` milliseconds (about a QRS complex) at the store's sampling rate `fs`, so the
    receptive field means the same at 100 Hz and at 500 Hz (Lin, Chen & Yan, "Network in network", 2014, for
    global average pooling).
    """

    def __init__(self, in_leads: int, length: int, fs: float, embed_dim: int = 64, width: int = 32,
                 kernel_ms: float = 70.0) -> None:
        super().__init__(in_leads, length, embed_dim)
        if kernel_ms <= 0:
            raise ValueError(f"kernel_ms must be > 0, got {kernel_ms}")
        samples = max(3, round(kernel_ms * fs / 1000))
        self.kernel_size = samples + (samples % 2 == 0)  # odd, so the padding keeps the length
        pad = self.kernel_size // 2
        self.net = nn.Sequential(
            nn.Conv1d(in_leads, width, self.kernel_size, padding=pad),
            nn.BatchNorm1d(width),
            nn.ReLU(),
            nn.Conv1d(width, embed_dim, self.kernel_size, padding=pad, stride=2),
            nn.BatchNorm1d(embed_dim),
            nn.ReLU(),
            nn.AdaptiveAvgPool1d(1),
        )

    def forward(self, batch: Tensor) -> Tensor:
        self.check_input(batch)
        return self.net(batch).flatten(1)


class AgeAtLeast(Task):
    """Binary: patients aged `years` or more against younger ones, from the store's `age` column."""

    def __init__(self, years: float = 60.0) -> None:
        if not 0 < years < 130:
            raise ValueError(f"age_at_least: years must be between 0 and 130, got {years}")
        self.years = float(years)

    def targets(self, metadata: pd.DataFrame) -> TaskTargets:
        if "age" not in metadata.columns:
            raise EcgclError(f"task {self.name!r} needs an 'age' column (from #Age: header lines or a labels table)")
        age = pd.to_numeric(metadata["age"], errors="coerce").to_numpy(dtype=float)
        labelled = np.isfinite(age) & (age < 130)  # PTB-XL codes ages over 89 as 300
        y = (np.nan_to_num(age) >= self.years).astype(np.float32)
        return TaskTargets(self.name, y, labelled, (f"under {self.years:g}", f"{self.years:g} or older"), "binary")


def negative_cosine(p: Tensor, z: Tensor) -> Tensor:
    """SimSiam's D(p, z) = -cos(p, stopgrad(z)), averaged over the batch, in float32 outside autocast."""
    with torch.autocast(device_type=p.device.type, enabled=False):
        return -F.cosine_similarity(p.float(), z.detach().float(), dim=1).mean()


class SimSiam(Objective):
    """SimSiam: two views, a shared projection and a predictor, the symmetric negative cosine with a stop-gradient.

    Chen & He, "Exploring simple Siamese representation learning", CVPR 2021: no negatives and no momentum
    target; the stop-gradient on the projection side alone prevents collapse. The projection ends in batch norm
    (as in the paper) and the predictor is a bottleneck of `projection_dim // 4` units (512 for 2048 there).
    """

    takes_loss = False
    default_aug = "baseline_wander+noise"

    def __init__(self, embed_dim: int, augmentation, projection_dim: int = 64, hidden_dim: int | None = None) -> None:
        super().__init__()
        hidden = 2 * embed_dim if hidden_dim is None else hidden_dim
        bottleneck = max(1, projection_dim // 4)
        self.augmentation = augmentation
        self.projection = nn.Sequential(nn.Linear(embed_dim, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(),
                                        nn.Linear(hidden, projection_dim, bias=False), nn.BatchNorm1d(projection_dim))
        self.predictor = nn.Sequential(nn.Linear(projection_dim, bottleneck, bias=False), nn.BatchNorm1d(bottleneck),
                                       nn.ReLU(), nn.Linear(bottleneck, projection_dim))

    def forward(self, encoder, batch: Tensor, patient_ids: Tensor, generator: torch.Generator) -> Tensor:
        view1, view2 = self.augmentation.views(batch, generator)
        z1, z2 = self.projection(encoder.embed(view1)), self.projection(encoder.embed(view2))
        p1, p2 = self.predictor(z1), self.predictor(z2)
        return (negative_cosine(p1, z2) + negative_cosine(p2, z1)) / 2


@ecgcl.hookimpl
def register_augmentations(registry):
    registry.add("baseline_wander", BaselineWander, kind="augmentation")


@ecgcl.hookimpl
def register_encoders(registry):
    registry.add("gap_cnn", GapCNN, kind="encoder")


@ecgcl.hookimpl
def register_tasks(registry):
    registry.add("age_at_least", AgeAtLeast, kind="task")


@ecgcl.hookimpl
def register_objectives(registry):
    registry.add("simsiam", SimSiam, kind="objective")


@ecgcl.hookimpl
def register_readers(registry):
    from ecgcl_example_plugin.csv_reader import CsvLeadsReader

    registry.add("csv_leads", CsvLeadsReader, kind="reader")


@ecgcl.hookimpl
def register_monitors(registry):
    from ecgcl_example_plugin.monitors import EmbeddingNorm

    registry.add("embedding_norm", EmbeddingNorm, kind="monitor")


@ecgcl.hookimpl
def register_trackers(registry):
    from ecgcl_example_plugin.trackers import CsvLog

    registry.add("csv_log", CsvLog, kind="tracker")


@ecgcl.hookimpl
def register_commands(cli):
    from ecgcl_example_plugin.commands import store_summary

    cli.add_command(store_summary)
