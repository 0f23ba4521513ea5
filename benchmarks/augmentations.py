"""Throughput of the built-in augmentations against per-sample, per-lead Python loops of the same operation.

For every augmentation it prints, measured in this process on the same batch:
- the vectorised time on the full batch (every lead gets its own draw: `mode="lead"` where there is a mode,
  which is what the loop does; clocs draws per sample and forms both views, as the loop does);
- the loop time: the same operation written per sample and per lead with torch ops on 1-D tensors and the
  same generator, timed on the first `--loop-samples` samples (64: ~15 MB, so neither side runs from a small cache)
  and scaled linearly to the full batch;
- speed-up = loop / vectorised, and x copy = vectorised / copy, where copy is `batch.clone()` (the memory-bandwidth
  floor: no transform of the whole batch can be faster than writing it once).

    .venv/bin/python benchmarks/augmentations.py                 # 256 x 12 x 5000
    .venv/bin/python benchmarks/augmentations.py --batch 32 --length 1000
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

from ecgcl.plugins.augmentations import Clocs, Dropout, Noise, Permute, TimeWarp, ZeroMask


# --- the per-sample, per-lead loop baselines (same operations, one 1-D lead at a time) ---------------------------

def loop_time_warp(batch: torch.Tensor, g: torch.Generator, segments: int, stretch: float) -> torch.Tensor:
    t = batch.shape[-1]
    out = torch.empty_like(batch)
    width = (t - 1) / segments
    grid = torch.arange(t, dtype=torch.float32, device=batch.device)
    for b in range(batch.shape[0]):
        for lead in range(batch.shape[1]):
            stretched = torch.randperm(segments, generator=g, device=batch.device) < segments // 2
            scale = torch.where(stretched, 1.0 + stretch, 1.0 - stretch)
            knots = torch.cat([torch.zeros(1, device=batch.device), torch.cumsum(scale * width, 0)])
            knots[-1] = t - 1
            seg = (torch.searchsorted(knots, grid, right=True) - 1).clamp(0, segments - 1)
            pos = (seg * width + (grid - knots[seg]) / scale[seg]).clamp(0, t - 1)
            left = pos.floor().long()
            right = (left + 1).clamp(max=t - 1)
            x = batch[b, lead]
            out[b, lead] = torch.lerp(x[left], x[right], (pos - left).to(x.dtype))
    return out


def loop_permute(batch: torch.Tensor, g: torch.Generator, segments: int) -> torch.Tensor:
    t = batch.shape[-1]
    bounds = [k * t // segments for k in range(segments + 1)]
    out = torch.empty_like(batch)
    for b in range(batch.shape[0]):
        for lead in range(batch.shape[1]):
            order = torch.randperm(segments, generator=g, device=batch.device).tolist()
            x = batch[b, lead]
            out[b, lead] = torch.cat([x[bounds[k] : bounds[k + 1]] for k in order])
    return out


def loop_zero_mask(batch: torch.Tensor, g: torch.Generator, fraction: float) -> torch.Tensor:
    t = batch.shape[-1]
    run = round(fraction * t)
    out = batch.clone()
    for b in range(batch.shape[0]):
        for lead in range(batch.shape[1]):
            start = int(torch.randint(0, t - run + 1, (1,), generator=g, device=batch.device))
            out[b, lead, start : start + run] = 0
    return out


def loop_dropout(batch: torch.Tensor, g: torch.Generator, fraction: float) -> torch.Tensor:
    out = torch.empty_like(batch)
    for b in range(batch.shape[0]):
        for lead in range(batch.shape[1]):
            x = batch[b, lead]
            out[b, lead] = x.masked_fill(torch.rand(x.shape, generator=g, device=x.device) < fraction, 0)
    return out


def loop_noise(batch: torch.Tensor, g: torch.Generator, std: float) -> torch.Tensor:
    out = torch.empty_like(batch)
    for b in range(batch.shape[0]):
        for lead in range(batch.shape[1]):
            x = batch[b, lead]
            noise = torch.randn(x.shape, generator=g, device=x.device, dtype=x.dtype)
            out[b, lead] = x + std * x.std(correction=0) * noise
    return out


def loop_clocs_cmsc(batch: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    b_size, leads, t = batch.shape
    s = t // 2
    first = torch.empty(b_size, leads, s, dtype=batch.dtype, device=batch.device)
    second = torch.empty_like(first)
    for b in range(b_size):
        offset = int(torch.randint(0, t - 2 * s + 1, (1,), generator=g, device=batch.device))
        swap = int(torch.randint(0, 2, (1,), generator=g, device=batch.device))
        for lead in range(leads):
            x = batch[b, lead]
            a, c = x[offset : offset + s], x[offset + s : offset + 2 * s]
            first[b, lead], second[b, lead] = (c, a) if swap else (a, c)
    return first, second


# --- timing ------------------------------------------------------------------------------------------------------

def best_time(fn: Callable[[], object], repeats: int, device: torch.device) -> float:
    """The fastest of `repeats` runs after one warm-up, in seconds."""
    fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--leads", type=int, default=12)
    parser.add_argument("--length", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--loop-samples", type=int, default=64, help="samples the loop baseline is timed on")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    device = torch.device(args.device)
    batch = torch.randn(args.batch, args.leads, args.length, generator=torch.Generator().manual_seed(0)).to(device)
    subset = batch[: min(args.loop_samples, args.batch)].contiguous()
    scale = args.batch / subset.shape[0]
    gen = torch.Generator(device=device).manual_seed(0)

    cases: list[tuple[str, Callable[[], object], Callable[[], object]]] = [
        ("time_warp", lambda: TimeWarp(segments=4, stretch=0.25, mode="lead")(batch, gen),
         lambda: loop_time_warp(subset, gen, 4, 0.25)),
        ("permute", lambda: Permute(segments=5, mode="lead")(batch, gen), lambda: loop_permute(subset, gen, 5)),
        ("zero_mask", lambda: ZeroMask(fraction=0.1, mode="lead")(batch, gen),
         lambda: loop_zero_mask(subset, gen, 0.1)),
        ("dropout", lambda: Dropout(fraction=0.1, mode="lead")(batch, gen), lambda: loop_dropout(subset, gen, 0.1)),
        ("noise", lambda: Noise(std=0.05)(batch, gen), lambda: loop_noise(subset, gen, 0.05)),
        ("clocs (cmsc views)", lambda: Clocs(strategy="cmsc").views(batch, gen), lambda: loop_clocs_cmsc(subset, gen)),
    ]

    copy_s = best_time(batch.clone, max(10, args.repeats), device)  # cheap: more tries for a stable floor
    print(
        f"batch {args.batch} x {args.leads} x {args.length} float32 on {device}, {torch.get_num_threads()} threads, "
        f"best of {args.repeats}; loops timed on {subset.shape[0]} samples and scaled x{scale:g}"
    )
    print(f"copy (batch.clone, the bandwidth floor): {copy_s * 1e3:.1f} ms")
    header = f"{'augmentation':<20} {'vectorised ms':>14} {'loop ms (scaled)':>17} {'speed-up':>9} {'x copy':>7}"
    print(header)
    print("-" * len(header))
    for name, vectorised, loop in cases:
        vec_s = best_time(vectorised, args.repeats, device)
        loop_s = best_time(loop, max(1, args.repeats - 1), device) * scale
        print(f"{name:<20} {vec_s * 1e3:>14.1f} {loop_s * 1e3:>17.1f} {loop_s / vec_s:>8.1f}x {vec_s / copy_s:>6.1f}x")
    print("defaults (lead-consistent: one draw per sample shared by its leads), vectorised only:")
    for name, vectorised in [
        ("time_warp sample", lambda: TimeWarp(segments=4, stretch=0.25, mode="sample")(batch, gen)),
        ("permute sample", lambda: Permute(segments=5, mode="sample")(batch, gen)),
        ("permute 7 pieces", lambda: Permute(segments=7, mode="sample")(batch, gen)),
        ("zero_mask sample", lambda: ZeroMask(fraction=0.1, mode="sample")(batch, gen)),
    ]:
        vec_s = best_time(vectorised, args.repeats, device)
        print(f"{name:<20} {vec_s * 1e3:>14.1f} {'-':>17} {'-':>9} {vec_s / copy_s:>6.1f}x")


if __name__ == "__main__":
    main()
