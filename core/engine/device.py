"""Device selection and seeding."""

from __future__ import annotations

import hashlib

import torch

from ecgcl.errors import EcgclError


def select_device(name: str = "auto") -> torch.device:
    """`auto` picks CUDA, then Apple MPS, then CPU; an explicit name must be available."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise EcgclError(f"--device {name!r} is not a torch device (use auto, cpu, cuda, cuda:0 or mps)") from error
    if device.type not in ("cpu", "cuda", "mps"):
        raise EcgclError(f"--device {name!r} cannot train or evaluate models; use auto, cpu, cuda, cuda:0 or mps")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise EcgclError(f"--device {name!r}: CUDA is not available on this machine")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise EcgclError(f"--device {name!r}: MPS is not available on this machine")
    return device


def derive_seed(*parts: object) -> int:
    """A 63-bit seed from any parts (run seed, stage, epoch ...), stable across processes and platforms.

    Every epoch reseeds its shuffling, augmentation and dropout from (seed, stage, epoch), so a run resumed
    from a checkpoint draws exactly what an uninterrupted run would have drawn.
    """
    text = "/".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "little") >> 1


def seed_everything(seed: int) -> None:
    """Seed torch's global RNG (weight init, dropout) and ask for deterministic kernels where cheap.

    Deterministic mode would also fill every new tensor with NaN (a check for kernels that read memory they
    never wrote): no result depends on it, and it cost about 7% of a CPU pretraining step, so it is off.
    """
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.utils.deterministic.fill_uninitialized_memory = False
