"""BYOL pretrained by two gloo processes (each half of the global batch) equals one process, EMA target included.

Comparable settings, as in tests/test_distributed_train.py: no augmentation (draws differ per rank by design),
dropout 0, `norm=group` in the encoder and `batch_norm=false` in BYOL's MLPs (per-sample statistics; BatchNorm
would see each rank's half batch and SyncBatchNorm is GPU-only). The ranks call `ecgcl.engine.loops.pretrain`
directly, started with `torch.multiprocessing.spawn` from a small script (fresh interpreters, no fork).
"""

from __future__ import annotations

import runpy
import socket
import subprocess
import sys
import textwrap

import pytest
import torch

WORLD = 2

WORKER = textwrap.dedent(
    """
    import os
    import sys

    import numpy as np
    import torch


    def train():
        from ecgcl.compose import parse_augmentations
        from ecgcl.context import RuntimeContext
        from ecgcl.data.sample import sample_store_path
        from ecgcl.data.store import open_store
        from ecgcl.distributed import world_size
        from ecgcl.engine.loops import pretrain
        from ecgcl.engine.settings import PretrainSettings, TrainingContext
        from ecgcl.engine.model import build_encoder
        from ecgcl.manager import create_plugin_manager

        store = open_store(sample_store_path())
        registry = create_plugin_manager(entry_points=False).registry
        torch.manual_seed(0)
        encoder = build_encoder(registry, "cnn", in_leads=12, window=1000, representation="time", embed_dim=8,
                                encoder_args={"width": 4, "depth": 1, "norm": "group", "dropout": 0.0})
        none = parse_augmentations("none", registry, RuntimeContext.of_store(store, torch.device("cpu")))
        objective = registry.create("objective", "byol", encoder=encoder, embed_dim=8, augmentation=none,
                                    projection_dim=8, momentum=0.9, batch_norm=False)
        settings = PretrainSettings(epochs=2, batch_size=16, lr=0.05, weight_decay=0.01, seed=3, window=1000,
                                    representation="time")
        history = pretrain(encoder=encoder, objective=objective, store=store, rows=np.arange(32), settings=settings,
                           context=TrainingContext(torch.device("cpu")))
        return {"world": world_size(), "history": history, "encoder": encoder.state_dict(),
                "objective": objective.state_dict()}


    def work(local_rank, folder, world, port):
        import torch.distributed as dist

        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=local_rank, world_size=world)
        torch.set_num_threads(1)
        torch.save(train(), f"{folder}/rank{local_rank}.pt")
        dist.barrier()  # no rank tears gloo down while another still talks to it
        dist.destroy_process_group()
        os._exit(0)  # results are on disk; skip interpreter teardown, where a gloo thread can abort a rank


    if __name__ == "__main__":
        import torch.multiprocessing as mp

        folder, world, port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
        mp.spawn(work, args=(folder, world, port), nprocs=world, join=True)
    """
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_two_gloo_ranks_pretrain_byol_like_one_process(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    result = subprocess.run([sys.executable, str(script), str(tmp_path), str(WORLD), str(free_port())],
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    single = runpy.run_path(str(script))["train"]()  # not __main__: only defines train(), run here in one process
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]
    assert single["world"] == 1 and [r["world"] for r in ranks] == [WORLD] * WORLD
    for outcome in ranks:
        assert [h["epoch"] for h in outcome["history"]] == [1, 2]
        for got, want in zip(outcome["history"], single["history"]):
            assert got["loss"] == pytest.approx(want["loss"], rel=1e-5, abs=1e-6)
        for part in ("encoder", "objective"):
            assert outcome[part].keys() == single[part].keys()
            for name, value in single[part].items():
                torch.testing.assert_close(outcome[part][name], value, rtol=1e-4, atol=1e-5, msg=f"{part} {name}")
    for name, value in ranks[0]["objective"].items():  # the EMA update is identical on every rank
        assert torch.equal(ranks[1]["objective"][name], value), name
    assert not torch.equal(single["objective"]["target_encoder.out.weight"], single["encoder"]["out.weight"])
