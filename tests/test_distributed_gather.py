"""Two gloo processes, each with half the batch, give the single-process losses and gradients over the whole batch.

The workers run from a small script launched with `torch.multiprocessing.spawn`, so each rank is a fresh
interpreter (no fork of a process that already started torch threads).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap

import pytest
import torch

from ecgcl.distributed import gather_with_grad, is_distributed, rank, world_size
from ecgcl.manager import create_plugin_manager

WORLD, BATCH, DIM, TEMPERATURE = 2, 8, 6, 0.3
PATIENTS = [0, 1, 2, 0, 1, 3, 4, 0]  # patients 0 and 1 have recordings on both ranks

WORKER = textwrap.dedent(
    """
    import os
    import sys
    import torch
    import torch.distributed as dist
    import torch.multiprocessing as mp

    from ecgcl.distributed import gather_with_grad, rank, world_size
    from ecgcl.manager import create_plugin_manager

    def work(local_rank, folder, world, inputs, port):
        # a TCP store: gloo's FileStore can abort a rank at teardown ("terminate called without an active exception")
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=local_rank, world_size=world)
        torch.set_num_threads(1)
        z1, z2, ids, temperature = torch.load(inputs)
        per_rank = z1.shape[0] // world
        rows = slice(local_rank * per_rank, (local_rank + 1) * per_rank)
        registry = create_plugin_manager(entry_points=False).registry
        results = {"rank": rank(), "world": world_size(), "gathered": gather_with_grad(ids[rows]).tolist()}
        for name in registry.names("loss"):
            a = z1[rows].clone().requires_grad_()
            b = z2[rows].clone().requires_grad_()
            loss = registry.create("loss", name, temperature=temperature)(a, b, ids[rows])
            loss.backward()
            results[name] = (loss.item(), a.grad, b.grad)
        torch.save(results, f"{folder}/rank{local_rank}.pt")
        dist.barrier()  # no rank tears gloo down while another still talks to it (that aborts the process)
        dist.destroy_process_group()
        os._exit(0)  # results are on disk; skip interpreter teardown, where a gloo thread can still abort a rank

    if __name__ == "__main__":
        folder, world, port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
        mp.spawn(work, args=(folder, world, f"{folder}/inputs.pt", port), nprocs=world, join=True)
    """
)


def test_helpers_are_no_ops_in_a_single_process():
    assert not is_distributed() and rank() == 0 and world_size() == 1
    t = torch.randn(3, 2)
    assert gather_with_grad(t) is t


def free_port() -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_two_ranks_equal_one_process_over_the_global_batch(tmp_path):
    generator = torch.Generator().manual_seed(0)
    z1 = torch.randn(BATCH, DIM, generator=generator)
    z2 = z1 + 0.3 * torch.randn(BATCH, DIM, generator=generator)
    ids = torch.tensor(PATIENTS)
    torch.save((z1, z2, ids, TEMPERATURE), tmp_path / "inputs.pt")
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    result = subprocess.run(
        [sys.executable, str(script), str(tmp_path), str(WORLD), str(free_port())], capture_output=True, text=True,
        timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]
    assert [r["rank"] for r in ranks] == [0, 1] and all(r["world"] == WORLD for r in ranks)
    assert all(r["gathered"] == PATIENTS for r in ranks)

    registry = create_plugin_manager(entry_points=False).registry
    per_rank = BATCH // WORLD
    assert registry.names("loss")
    for name in registry.names("loss"):
        a, b = z1.clone().requires_grad_(), z2.clone().requires_grad_()
        loss = registry.create("loss", name, temperature=TEMPERATURE)(a, b, ids)
        loss.backward()
        # each rank averages over its own rows, so the mean over ranks is the global loss ...
        assert sum(r[name][0] for r in ranks) / WORLD == pytest.approx(loss.item(), rel=1e-5), name
        # ... and DDP's gradient average (sum over ranks / world) equals the global gradient
        for r, outcome in enumerate(ranks):
            rows = slice(r * per_rank, (r + 1) * per_rank)
            torch.testing.assert_close(outcome[name][1] / WORLD, a.grad[rows], msg=f"{name} rank {r} view 1")
            torch.testing.assert_close(outcome[name][2] / WORLD, b.grad[rows], msg=f"{name} rank {r} view 2")
