"""Every pretraining objective with the same budget on the shared PTB-XL pool: does any beat random features?

For each objective (token objectives with `patch_transformer`, the others with `cnn`), the repeated protocol runs
its pretrained arms (linear probe, fine-tuned); the baselines (random-init linear probe, supervised from scratch)
run once per encoder, since they do not depend on the objective (same seeds, same splits). Per setting and label
fraction it prints, per objective, seconds per pretraining epoch, test AUROC, and the paired differences over the
repeats (same test patients): pretrained LP - random-init LP and fine-tuned - supervised, mean, 95% t interval and
paired t-test p. Nothing is tuned on test folds: every run uses the objective's defaults.

    python benchmarks/objectives.py [--pretrain-epochs 10] [--repeats 5] [--objectives contrastive,byol,...]
    python benchmarks/objectives.py --settings folds --resume      # reuse finished units in --out

Settings: `folds` = `--split ptbxl-folds --task superclasses` (official folds, 5 training seeds), `random` =
`--task normal_vs_abnormal` with 5 random patient-level repeats.

`--probe-only patch_transformer` (the default) runs only the linear-probe arms for objectives on that encoder:
end-to-end training of the transformer with validation stopping takes ~7 minutes per unit on 2 cores, which
does not fit the benchmark's hour; the FT columns then say n/a.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ecgcl.config import resolve_config
from ecgcl.data.ingest import ingest
from ecgcl.manager import get_registry
from ecgcl.protocol.paired import paired_difference
from ecgcl.protocol.runner import run_protocol

PTBXL = Path(__file__).resolve().parents[2] / "shared" / "data" / "ptbxl"
SETTINGS = {"folds": {"split": "ptbxl-folds", "task": "superclasses"},
            "random": {"split": "random", "task": "normal_vs_abnormal"}}
ENCODERS = {"tokens": ("patch_transformer", {}), None: ("cnn", {"width": 16, "depth": 3}),
            "sequence": ("cnn", {"width": 16, "depth": 3})}


def _run(store: Path, out: Path, setting: str, args, **values):
    config = resolve_config(None, {"data": str(store), **SETTINGS[setting], "repeats": args.repeats,
                                   "pretrain_epochs": args.pretrain_epochs, "label_fractions": args.label_fractions,
                                   "out": str(out), "device": "cpu", **values})
    times: list[float] = []
    started = [time.perf_counter()]

    def clock(stage, epoch, epochs, record):
        if stage == "pretrain":
            times.append(time.perf_counter() - started[0])
        started[0] = time.perf_counter()

    result = run_protocol(config, overwrite=not args.resume, on_epoch_end=clock)
    return {(r["repeat"], r["label_fraction"], r["method"]): r["auroc"] for r in result.rows}, times


def _cell(values: list[float], base: list[float]) -> str:
    d = paired_difference(values, base)
    return f"{d['mean']:+.3f} [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}] p {d['p']:.3g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objectives", default=",".join(c.name for c in get_registry().components("objective")))
    parser.add_argument("--settings", default="folds,random")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--pretrain-epochs", type=int, default=10)
    parser.add_argument("--label-fractions", default="0.1,1.0")
    parser.add_argument("--out", default="/tmp/ecgcl-bench-objectives")
    parser.add_argument("--resume", action="store_true", help="Reuse finished units in --out")
    parser.add_argument("--probe-only", default="patch_transformer",
                        help="Comma-separated encoders whose objectives get only the linear-probe arms")
    args = parser.parse_args()
    out = Path(args.out)
    store = out / "ptbxl100"
    if not store.exists():
        ingest(PTBXL, store, fs=100)
    registry = get_registry()
    for setting in args.settings.split(","):
        baselines, results = {}, {}
        for name in args.objectives.split(","):
            encoder, encoder_args = ENCODERS[registry.get("objective", name).factory_attribute("needs")]
            probe_only = encoder in args.probe_only.split(",")
            if encoder not in baselines:
                baselines[encoder], _ = _run(store, out / setting / f"baselines-{encoder}", setting, args,
                                             encoder=encoder, encoder_args=encoder_args, pretrain_epochs=0,
                                             methods=["random_linear"] + ([] if probe_only else ["supervised"]))
            started = time.perf_counter()
            scores, times = _run(store, out / setting / name, setting, args, objective=name, encoder=encoder,
                                 encoder_args=encoder_args,
                                 methods=["pretrained_linear"] + ([] if probe_only else ["pretrained_finetune"]))
            results[name] = (encoder, scores, sum(times) / max(len(times), 1), time.perf_counter() - started)
        print(f"\n{setting}: {SETTINGS[setting]}, {args.repeats} repeats, {args.pretrain_epochs} pretraining epochs "
              "(test macro AUROC; paired differences over repeats: mean [95% CI] p)")
        print(f"{'objective':<12} {'encoder':<18} {'s/epoch':>7} {'labels':>6} {'LP':>6} {'rand LP':>7} "
              f"{'LP - random LP':<34} {'FT':>6} {'sup':>6} {'FT - supervised':<34}")
        for name, (encoder, scores, per_epoch, _) in results.items():
            base = baselines[encoder]
            for fraction in sorted({k[1] for k in scores}):
                keys = sorted(k[0] for k in scores if k[1:] == (fraction, "pretrained_linear"))
                lp = [scores[(r, fraction, "pretrained_linear")] for r in keys]
                rlp = [base[(r, fraction, "random_linear")] for r in keys]
                mean = lambda v: sum(v) / len(v)  # noqa: E731
                finetuned = "n/a (probe only)"
                if (keys[0], fraction, "pretrained_finetune") in scores:
                    ft = [scores[(r, fraction, "pretrained_finetune")] for r in keys]
                    sup = [base[(r, fraction, "supervised")] for r in keys]
                    finetuned = f"{mean(ft):>6.3f} {mean(sup):>6.3f} {_cell(ft, sup):<34}"
                print(f"{name:<12} {encoder:<18} {per_epoch:>7.1f} {fraction:>6g} {mean(lp):>6.3f} {mean(rlp):>7.3f} "
                      f"{_cell(lp, rlp):<34} {finetuned}")


if __name__ == "__main__":
    main()
