"""What watching pretraining costs, and whether keeping the validation-best epoch (`best:knn`) beats the last one.

1. Cost: `ecgcl pretrain` on the official training folds of the fully labelled PTB-XL pool (100 Hz, cnn, the
   default contrastive objective) without monitors, with the defaults (`--monitor auto --monitor-every auto`)
   and with every monitor every epoch; the variants alternate in one process, and each is reported as seconds
   per pretraining run and its ratio to the run without monitors. Each monitor's own cost (its embeddings
   included) comes from a run with that monitor alone every epoch (mean `monitor_seconds` per epoch over the
   mean training seconds per epoch).
2. Selection: for each objective and seed, one pretraining with `--monitor knn --monitor-every 1
   --pretrain-select best:knn` keeps both the chosen epoch (pretrain.pt) and the last one; a converged linear
   probe of each (and of a random-init encoder) is scored on the test fold (fold 10). The k-NN figure that
   chose saw only validation records (fold 9); paired differences over seeds: chosen - last, chosen - random.

    python benchmarks/monitoring.py [--parts cost,select] [--objectives contrastive,cpc] [--seeds 3]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from ecgcl.config import resolve_config
from ecgcl.data.ingest import ingest
from ecgcl.engine.checkpoint import load_checkpoint, save_checkpoint
from ecgcl.protocol.paired import paired_difference
from ecgcl.protocol.single import finetune_once, pretrain_once

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "ptbxl-all"
COMMON = {"split": "ptbxl-folds", "task": "superclasses", "encoder": "cnn", "encoder_args": {"width": 16, "depth": 3},
          "device": "cpu"}
VARIANTS = {"none": {"monitors": ["none"]}, "defaults": {},
            "all every epoch": {"monitors": ["rankme,knn,probe,align_uniform"], "monitor_every": "1"}}
MONITORS = ("rankme", "knn", "probe", "align_uniform")


def _pretrain(store: Path, out: Path, **values) -> tuple[float, list[dict]]:
    config = resolve_config(None, {"data": str(store), "out": str(out), **COMMON, **values})
    started = time.perf_counter()
    pretrain_once(config, overwrite=True)
    seconds = time.perf_counter() - started
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    return seconds, history


def cost(store: Path, out: Path, epochs: int, rounds: int) -> None:
    """Seconds per pretraining run of each variant, alternated `rounds` times, and each monitor's own cost."""
    seconds: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for round_ in range(rounds):
        for name, values in VARIANTS.items():
            taken, _ = _pretrain(store, out / "cost" / name.replace(" ", "_"), pretrain_epochs=epochs, **values)
            seconds[name].append(taken)
            print(f"round {round_ + 1}: {name}: {taken:.1f} s", flush=True)
    base = np.mean(seconds["none"])
    print(f"\nmonitoring cost, {epochs} pretraining epochs (mean of {rounds} alternated runs; ratio to no monitors)")
    for name, values in seconds.items():
        print(f"  {name:<16} {np.mean(values):7.1f} s   x{np.mean(values) / base:.3f}")
    print("\neach monitor alone, every epoch: monitor seconds / training seconds per epoch")
    for monitor in MONITORS:
        _, history = _pretrain(store, out / "cost" / monitor, pretrain_epochs=epochs, monitors=[monitor],
                               monitor_every="1")
        watched = history[1:]  # the first epoch pays for warm-up
        share = np.mean([h["monitor_seconds"] for h in watched]) / np.mean(
            [h["seconds"] - h["monitor_seconds"] for h in watched])
        print(f"  {monitor:<14} {np.mean([h['monitor_seconds'] for h in watched]):6.2f} s per epoch  "
              f"{100 * share:5.1f}% of training time", flush=True)


def _probe(store: Path, checkpoint: Path | None, out: Path, seed: int) -> float:
    config = resolve_config(None, {"data": str(store), "out": str(out), **COMMON, "seed": seed})
    given = {} if checkpoint else {}
    result = finetune_once(config, checkpoint=str(checkpoint) if checkpoint else None, given=given, mode="linear",
                           overwrite=True)
    return float(result.row["auroc"])


def select(store: Path, out: Path, objectives: list[str], seeds: int, epochs: int) -> None:
    """Test AUROC of a linear probe on the chosen epoch, the last epoch and a random-init encoder."""
    rows = []
    for objective in objectives:
        chosen, last, random_, epochs_kept = [], [], [], []
        for seed in range(seeds):
            where = out / "select" / objective / f"seed_{seed}"
            _pretrain(store, where, objective=objective, pretrain_epochs=epochs, seed=seed, monitors=["knn"],
                      monitor_every="1", pretrain_select="best:knn")
            kept = load_checkpoint(where / "pretrain.pt")
            final = load_checkpoint(where / "pretrain.last.pt")
            save_checkpoint(where / "last_epoch.pt", {"kind": "encoder", "meta": {**kept["meta"], "chosen_epoch":
                                                                                  final["epoch"], "chosen_by": "last"},
                                                      "history": final["history"], "encoder": final["encoder"]})
            epochs_kept.append(kept["meta"]["chosen_epoch"])
            chosen.append(_probe(store, where / "pretrain.pt", where / "probe_chosen", seed))
            last.append(_probe(store, where / "last_epoch.pt", where / "probe_last", seed))
            random_.append(_probe(store, None, where / "probe_random", seed))
            print(f"{objective} seed {seed}: kept epoch {epochs_kept[-1]}; test AUROC chosen {chosen[-1]:.3f}, "
                  f"last {last[-1]:.3f}, random-init {random_[-1]:.3f}", flush=True)
        rows.append((objective, epochs_kept, chosen, last, random_))
    print(f"\nbest:knn against last, {epochs} pretraining epochs, {seeds} seeds, official folds (test fold 10), "
          "linear probe test macro AUROC; paired differences mean [95% CI] p")
    for objective, kept, chosen, last, random_ in rows:
        cells = []
        for values, base in ((chosen, last), (chosen, random_), (last, random_)):
            d = paired_difference(values, base)
            cells.append(f"{d['mean']:+.3f} [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}] p {d['p']:.2g}")
        print(f"  {objective:<12} epochs kept {kept}  chosen {np.mean(chosen):.3f}  last {np.mean(last):.3f}  "
              f"random {np.mean(random_):.3f}\n    chosen - last {cells[0]}\n    chosen - random {cells[1]}\n"
              f"    last - random {cells[2]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="cost,select")
    parser.add_argument("--objectives", default="contrastive,cpc")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--cost-epochs", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--source", default=str(SHARED), help="ptbxl-all (or a copy laid out with its links)")
    parser.add_argument("--out", default="/tmp/ecgcl-bench-monitoring")
    args = parser.parse_args()
    out = Path(args.out)
    store = out / "ptbxl-all-100"
    if not store.exists():
        ingest(args.source, store, fs=100)
    parts = args.parts.split(",")
    if "cost" in parts:
        cost(store, out, args.cost_epochs, args.rounds)
    if "select" in parts:
        select(store, out, args.objectives.split(","), args.seeds, args.epochs)


if __name__ == "__main__":
    main()
