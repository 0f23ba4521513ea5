"""The documented robustness grid: which perturbations the report applies, by family.

- leads: all leads (the clean reference), limb leads (I, II, III, aVR, aVL, aVF), precordial leads
  (V1-V6), I only, II only: the other leads are zeroed, as `--missing-leads zero` feeds a store without them.
  A subset the store does not fully have is skipped.
- noise: additive Gaussian noise at 20, 10, 5 and 0 dB SNR per lead (the `noise` augmentation with
  std = 10^(-SNR/20) of the lead's standard deviation, i.e. SNR = 10 log10(var(lead) / var(noise))).
- baseline wander: the `baseline_drift` augmentation (0.05-0.5 Hz) at 0.25, 0.5 and 1 lead std.
  These two families are rows of `AUGMENTATION_CONDITIONS`, the one place that names their augmentations.
- resampling: down to 250, 100 and 50 Hz and back up (polyphase filters), each rate below the store's.
- extra: any `--aug`-style spec given with `--robustness-extra`, e.g. `baseline_wander:amplitude=0.5`.
Every random condition is drawn from a generator seeded by (seed, family, condition).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ecgcl.data.leads import STANDARD_LEADS, normalise_lead_name

LEAD_SUBSETS: tuple[tuple[str, tuple[str, ...] | None], ...] = (
    ("all", None), ("limb", STANDARD_LEADS[:6]), ("precordial", STANDARD_LEADS[6:]), ("I only", ("I",)),
    ("II only", ("II",)),
)
NOISE_SNR_DB = (20, 10, 5, 0)
WANDER_AMPLITUDES = (0.25, 0.5, 1.0)
RESAMPLE_HZ = (250, 100, 50)
FAMILIES = ("leads", "noise", "baseline wander", "resampling", "extra")

# The default conditions that apply a registered augmentation, as (family, condition name, `--aug` spec) rows:
# the only place the grid names augmentation plugins.
AUGMENTATION_CONDITIONS: tuple[tuple[str, str, str], ...] = (
    *(("noise", f"{snr} dB SNR", f"noise:std={10 ** (-snr / 20):.6g}") for snr in NOISE_SNR_DB),
    *(("baseline wander", f"{amplitude:g} x std", f"baseline_drift:amplitude={amplitude:g}")
      for amplitude in WANDER_AMPLITUDES),
)


@dataclass(frozen=True)
class Condition:
    """One perturbation: keep only some leads, apply an augmentation spec, or resample down and up."""

    family: str
    name: str
    keep_leads: tuple[str, ...] | None = None
    augmentation: str | None = None
    resample_hz: float | None = None

    @property
    def clean(self) -> bool:
        return self.keep_leads is None and self.augmentation is None and self.resample_hz is None


def robustness_grid(leads: Sequence[str], fs: float, extra: Sequence[str] = ()) -> tuple[list[Condition], list[str]]:
    """The conditions that apply to a store with `leads` at `fs` Hz, and a note for each one skipped."""
    present = {normalise_lead_name(n) for n in leads}
    conditions, skipped = [], []
    for name, subset in LEAD_SUBSETS:
        if subset is not None and not set(subset) <= present:
            skipped.append(f"leads {name}: the store lacks {','.join(n for n in subset if n not in present)}")
        elif subset is not None and set(subset) == present:
            skipped.append(f"leads {name}: the store has exactly these leads (the 'all' condition)")
        else:
            conditions.append(Condition("leads", name, keep_leads=subset))
    conditions += [Condition(family, name, augmentation=spec) for family, name, spec in AUGMENTATION_CONDITIONS]
    for rate in RESAMPLE_HZ:
        if rate < fs:
            conditions.append(Condition("resampling", f"{fs:g} -> {rate:g} -> {fs:g} Hz", resample_hz=float(rate)))
    if not any(c.family == "resampling" for c in conditions):
        skipped.append(f"resampling: the store rate ({fs:g} Hz) is at or below the lowest grid rate")
    conditions += [Condition("extra", spec, augmentation=spec) for spec in extra]
    return conditions, skipped
