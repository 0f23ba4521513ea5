"""A trained encoder for notebooks: `load_encoder(path).embed(signals, fs=..., leads=...)` on raw arrays.

Raw signals go through what `ecgcl ingest` and `ecgcl embed` would do to them, from the encoder's own metadata:
units to mV, resampling to the encoder's rate (scipy.signal.resample_poly, as ingest), the band-pass its
training data had, lead mapping by name (any spelling and order; trained leads the input lacks follow the
`--missing-leads` policies, by default the one `embed` takes), then windows of the encoder's length
(consecutive, as `ingest --windows`; averaged per record, or one row each with `windows=True`) embedded as
fine-tuning embeds (`ecgcl.engine.model.embed`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ecgcl.errors import EcgclError


class PretrainedEncoder:
    """An encoder with its metadata (`fs`, `leads`, `length`, `embed_dim`, `meta`) and `embed` for raw arrays;
    `torch_module` is the `torch.nn.Module` itself, for fine-tuning in your own loop."""

    def __init__(self, checkpoint: dict[str, Any], *, source: str, registry=None) -> None:
        from ecgcl.engine.embeddings import encoder_state

        if registry is None:
            from ecgcl.manager import get_registry

            registry = get_registry()
        self.source, self.registry = source, registry
        self.meta: dict[str, Any] = checkpoint["meta"]
        self.state = encoder_state(checkpoint, source=source)
        self.torch_module = self._build(list(self.trained_leads))
        self.torch_module.load_state_dict(self.state)
        self.torch_module.eval()

    @property
    def fs(self) -> float:
        return float(self.meta["fs"])

    @property
    def leads(self) -> list[str]:
        return list(self.meta["leads"])

    @property
    def trained_leads(self) -> list[str]:
        return list(self.meta.get("encoder_leads", self.meta["leads"]))

    @property
    def length(self) -> int:
        """Samples per record the encoder was trained on (at `fs`)."""
        return int(self.meta["length"])

    @property
    def embed_dim(self) -> int:
        return int(self.meta["embed_dim"])

    def __repr__(self) -> str:
        return (f"PretrainedEncoder({self.meta['encoder']!r}, {len(self.trained_leads)} leads at {self.fs:g} Hz, "
                f"{self.length} samples, embed_dim={self.embed_dim}, from {self.source})")

    def _build(self, leads: list[str]):
        from ecgcl.engine.model import encoder_from_meta

        return encoder_from_meta(self.meta, self.registry, source=self.source, leads=leads)

    def prepare(self, signals: np.ndarray, *, fs: float, leads: Sequence[str] | None = None, units: str = "mV",
                pad: bool = False) -> tuple[np.ndarray, int]:
        """(windows of (N x W, leads, length) in mV at the encoder's rate, W): the steps of the module docstring
        up to the lead mapping, which `embed` applies."""
        from ecgcl.data.preprocess import bandpass, cut_windows, parse_band, resample, window_starts
        from ecgcl.data.units import mv_factors

        array = np.asarray(signals, dtype=np.float32)
        if array.ndim == 2:
            array = array[None]
        if array.ndim != 3 or 0 in array.shape:
            raise EcgclError(f"signals must be (records, leads, samples) or (leads, samples), got shape "
                             f"{np.shape(signals)}")
        if not np.isfinite(array).all():
            raise EcgclError("signals hold NaN or infinite values")
        names = list(leads) if leads is not None else self.leads
        if len(names) != array.shape[1]:
            raise EcgclError(f"{len(names)} lead names for {array.shape[1]} leads; pass leads=[...] in the "
                             "signals' channel order")
        if not (np.isfinite(fs) and fs > 0):
            raise EcgclError(f"fs must be a positive sampling rate in Hz, got {fs!r}")
        from ecgcl.data.records import BadRecord

        try:
            factors = mv_factors([units] * array.shape[1], names)
        except BadRecord as bad:
            raise EcgclError(f"units={units!r}: {bad.detail}") from None
        array = array * factors[None, :, None].astype(np.float32)
        array = resample(array, float(fs), self.fs)
        band = parse_band(self.meta.get("preprocessing", {}).get("options", {}).get("filter"))
        if band is not None:
            array = bandpass(array, self.fs, band)
        if array.shape[-1] < self.length and not pad:
            raise EcgclError(f"records are {array.shape[-1] / self.fs:g} s long; the encoder takes "
                             f"{self.length / self.fs:g} s (pass pad=True to zero-pad them)")
        starts = window_starts(array.shape[-1], self.length, self.length, pad=False)
        rows, _ = cut_windows(array, self.length, starts)
        return rows, len(starts)

    def embed(self, signals: np.ndarray, *, fs: float, leads: Sequence[str] | None = None, units: str = "mV",
              windows: bool = False, pad: bool = False, missing_leads: str | None = None, batch_size: int = 64,
              device: str = "cpu") -> np.ndarray:
        """(N, embed_dim) float32 embeddings of `signals` ((N, leads, samples) or one (leads, samples) record)
        sampled at `fs` Hz with channels named `leads` (default: the encoder's own) in `units` (mV, uV or V).

        Records longer than the encoder's length are cut in consecutive windows, averaged per record, or with
        `windows=True` returned one row per window, (N * W, embed_dim), record-major.
        """
        import torch

        from ecgcl.data.leads import normalise_lead_name
        from ecgcl.engine.inference import embed_batches
        from ecgcl.engine.lead_mapping import default_policy, plan_leads, slice_state

        rows, per_record = self.prepare(signals, fs=fs, leads=leads, units=units, pad=pad)
        names = list(leads) if leads is not None else self.leads
        present = {normalise_lead_name(n) for n in names}
        lacking = any(normalise_lead_name(n) not in present for n in self.trained_leads)
        policy = missing_leads or self.meta.get("missing_leads") or (
            default_policy(self.meta, self.registry) if lacking else None)
        plan = plan_leads(self.trained_leads, names, policy, source=self.source, store="the signals")
        encoder = self.torch_module
        if plan.policy == "slice":
            encoder = self._build(list(plan.encoder_leads))
            encoder.load_state_dict(slice_state(self.state, encoder, plan, source=self.source))
        batches = (torch.from_numpy(rows[start:start + batch_size]) for start in range(0, len(rows), batch_size))
        vectors = embed_batches(encoder, batches, len(rows), window=self.meta["window"],
                                representation=self.meta["representation"], device=device,
                                lead_adapter=plan.adapter())
        if windows or per_record == 1:
            return vectors
        return vectors.reshape(-1, per_record, vectors.shape[-1]).mean(axis=1)


def load_encoder(path_or_id: str | os.PathLike, *, registry=None) -> PretrainedEncoder:
    """The encoder of a checkpoint (`pretrain.pt`, `pretrain.last.pt`, a fine-tuned `*.best.pt`), of a folder
    written by `ecgcl export`, or of `hf://ORG/NAME` (with `pip install 'ecgcl[hub]'`)."""
    from ecgcl.engine.checkpoint import load_checkpoint

    return PretrainedEncoder(load_checkpoint(path_or_id, registry=registry), source=str(path_or_id), registry=registry)
