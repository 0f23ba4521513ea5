"""The full protocol on the shared PTB-XL subset (normal vs abnormal, 100 Hz): does it complete here, and
what does pretraining add?

Ingests ../shared/data/ptbxl (records100, ~1,990 records of which 690 labelled) once into a cached store,
then runs `ecgcl.protocol.runner.run_protocol` with label fractions 0.1 and 1.0 and prints test AUROC
(mean and 95% CI over repeats) for pretrained vs random-init vs supervised-from-scratch, plus wall time.
The numbers are reported as they come out.

    python benchmarks/protocol.py [--repeats 3] [--pretrain-epochs 3] [--finetune-epochs 5] [--out DIR]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ecgcl.config import resolve_config
from ecgcl.data.ingest import ingest
from ecgcl.protocol.runner import run_protocol

PTBXL = Path(__file__).resolve().parents[2] / "shared" / "data" / "ptbxl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pretrain-epochs", type=int, default=3)
    parser.add_argument("--finetune-epochs", type=int, default=5)
    parser.add_argument("--encoder", default="cnn")
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--out", default="/tmp/ecgcl-bench-protocol")
    args = parser.parse_args()
    out = Path(args.out)
    store = out / "ptbxl100"
    started = time.perf_counter()
    if not store.exists():
        ingest(PTBXL, store, fs=100)
    ingested = time.perf_counter()
    config = resolve_config(None, {
        "data": str(store), "task": "normal_vs_abnormal", "encoder": args.encoder,
        "encoder_args": {"width": args.width, "depth": args.depth}, "aug": "permute+noise", "repeats": args.repeats,
        "pretrain_epochs": args.pretrain_epochs, "finetune_epochs": args.finetune_epochs,
        "label_fractions": [0.1, 1.0], "out": str(out / "results"), "device": "cpu",
    })
    result = run_protocol(config, overwrite=True)
    finished = time.perf_counter()
    print(f"store: {store} ({args.repeats} repeats, pretrain {args.pretrain_epochs} epochs, fine-tune "
          f"{args.finetune_epochs} epochs, encoder {args.encoder} width {args.width} depth {args.depth})")
    print(f"ingest {ingested - started:.1f} s, protocol {finished - ingested:.1f} s")
    print(f"{'labels':>6}  {'method':<22} {'test AUROC mean':>15}  95% CI")
    for row in result.summary:
        print(f"{row['label_fraction']:>6g}  {row['method']:<22} {row['auroc_mean']:>15.3f}  "
              f"[{row['auroc_ci_low']:.3f}, {row['auroc_ci_high']:.3f}]")


if __name__ == "__main__":
    main()
