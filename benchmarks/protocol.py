"""The full protocol on the shared PTB-XL subset (100 Hz): does it complete here, what does pretraining add, and
how far is it from the published PTB-XL benchmark?

Ingests ../shared/data/ptbxl (records100, ~1,990 records of which 690 labelled) once into a cached store, then
runs `ecgcl.protocol.runner.run_protocol` and prints, per label fraction and method, test AUROC (mean and 95% CI
over repeats) and the paired differences (each method vs supervised from scratch, pretrained vs random-init
linear probe). The numbers are reported as they come out.

    python benchmarks/protocol.py [--repeats 3] [--pretrain-epochs 3] [--finetune-epochs 5] [--out DIR]
    python benchmarks/protocol.py --split ptbxl-folds --task superclasses --label-fractions 1.0
    python benchmarks/protocol.py ... --resume     # reuse finished repeats (e.g. fewer --repeats on a busy machine)
    python benchmarks/protocol.py ... --probe-check  # refit every linear probe with scikit-learn: agree within 0.01

--probe-check embeds each linear-probe unit's frozen encoder with `ecgcl embed` (its checkpoint), standardises
the features with the training records' statistics, fits scikit-learn's `LogisticRegression` (one per class for
binary and multi-label tasks, multinomial for multi-class) for every C of the grid, picks C by validation AUROC
and asserts that its test AUROC is within 0.01 of the one ecgcl reported.

With `--split ptbxl-folds --task superclasses` the setting is the one of the PTB-XL benchmark (official folds:
1-8 train, 9 validation, 10 test; multi-label diagnostic superclasses, macro AUROC), so the table adds the gap to
the published supervised results (Strodthoff et al., IEEE JBHI 2021, superdiagnostic): xresnet1d101 0.928,
resnet1d_wang 0.930. The shared subset is ~3% of PTB-XL (a few
hundred training records against ~17,000), so a gap is expected; the repeats vary only the training seed.

    python benchmarks/protocol.py --robustness [--repeats 3] [--pretrain-epochs 1] [--width 8 --depth 2]

--robustness pretrains twice, with `permute+noise` and with `lead_mask:keep_limb=true+permute+noise`, fine-tunes
both on the 12 leads (end to end and linear probe, all labels) and scores their test records with the
robustness grid: it prints AUROC on all leads, on the limb leads and on lead I only (the other leads zeroed,
as `--missing-leads zero` feeds a store without them) and the drop from all leads to lead I.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ecgcl.config import resolve_config
from ecgcl.data.ingest import ingest
from ecgcl.protocol.results import endings_caption, method_rows, paired_rows
from ecgcl.protocol.runner import run_protocol

PTBXL = Path(__file__).resolve().parents[2] / "shared" / "data" / "ptbxl"
PUBLISHED = {"xresnet1d101": 0.928, "resnet1d_wang": 0.930}  # superdiagnostic macro AUROC, official folds


def _interval(row: dict, metric: str = "auroc") -> str:
    low, high = row[f"{metric}_ci_low"], row[f"{metric}_ci_high"]
    return "n/a" if low is None or low != low else f"[{low:+.3f}, {high:+.3f}]" if row.get("baseline") else \
        f"[{low:.3f}, {high:.3f}]"


AUGS = {"without lead_mask": "permute+noise", "with lead_mask": "lead_mask:keep_limb=true+permute+noise"}
LEAD_CONDITIONS = ("all", "limb", "I only")


def robustness(args, store: Path, out: Path) -> None:
    """12-lead models pretrained with and without lead_mask, scored on all leads, limb leads and lead I only."""
    table = {}
    for label, aug in AUGS.items():
        config = resolve_config(None, {
            "data": str(store), "task": args.task, "encoder": args.encoder, "split": args.split,
            "encoder_args": {"width": args.width, "depth": args.depth}, "aug": aug, "repeats": args.repeats,
            "pretrain_epochs": args.pretrain_epochs, "finetune_epochs": args.finetune_epochs,
            "label_fractions": [1.0], "methods": ["pretrained_finetune", "pretrained_linear"], "robustness": True,
            "out": str(out / f"robustness-{aug.split(':')[0].split('+')[0]}"), "device": "cpu",
        })
        result = run_protocol(config, overwrite=True)
        for row in result.robustness:
            if row["metric"] == "auroc" and row["family"] == "leads" and row["condition"] in LEAD_CONDITIONS:
                table[(label, row["method"], row["condition"])] = row
    print(f"{'pretraining':<18} {'method':<20}" + "".join(f"{c + ' (95% CI)':>24}" for c in LEAD_CONDITIONS)
          + f"{'all - I only':>14}")
    for label in AUGS:
        for method in ("pretrained_finetune", "pretrained_linear"):
            cells = [table[(label, method, c)] for c in LEAD_CONDITIONS]
            text = "".join(f"{c['mean']:>8.3f} [{c['ci_low']:.3f}, {c['ci_high']:.3f}]" for c in cells)
            print(f"{label:<18} {method:<20}{text}{cells[0]['mean'] - cells[-1]['mean']:>14.3f}")


PROBE_AGREEMENT = 0.01  # test AUROC: ecgcl's probe against scikit-learn refitted on the embedded features


def _sklearn_probe_auroc(train_x, train_y, val_x, val_y, test_x, test_y, multiclass: bool) -> tuple[float, float]:
    """Test AUROC and C of scikit-learn logistic regressions on standardised features, C chosen on validation."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from ecgcl.engine.probe import C_GRID
    from ecgcl.metrics import classification_metrics

    mean, std = train_x.mean(axis=0), train_x.std(axis=0)
    std[std < 1e-12] = 1.0
    z = [(x - mean) / std for x in (train_x, val_x, test_x)]

    def fitted(c):
        if multiclass:
            model = LogisticRegression(C=c, max_iter=5000, tol=1e-8).fit(z[0], train_y)
            full = np.zeros((len(z[1]) + len(z[2]), int(max(train_y.max(), val_y.max(), test_y.max())) + 1))
            full[:, model.classes_] = model.predict_proba(np.concatenate(z[1:]))
            return full[: len(z[1])], full[len(z[1]):]
        columns = train_y.reshape(len(train_y), -1)
        probs = [LogisticRegression(C=c, max_iter=5000, tol=1e-8).fit(z[0], columns[:, k])
                 .predict_proba(np.concatenate(z[1:]))[:, 1] for k in range(columns.shape[1])]
        both = np.stack(probs, axis=1) if train_y.ndim == 2 else probs[0]
        return both[: len(z[1])], both[len(z[1]):]

    best = (-1.0, None, None)
    for c in C_GRID:
        val_p, test_p = fitted(c)
        score = classification_metrics(val_y, val_p)["auroc"]
        if score > best[0]:
            best = (score, c, test_p)
    return classification_metrics(test_y, best[2])["auroc"], best[1]


def probe_check(config, result, out: Path) -> None:
    """Refit every linear-probe unit with scikit-learn on its `ecgcl embed` features; fail beyond 0.01 AUROC."""
    import numpy as np

    from ecgcl.engine.embeddings import embed_checkpoint
    from ecgcl.protocol.runner import draw_repeat_split, prepare
    from ecgcl.protocol.splits import label_fraction_subset

    exp = prepare(config)
    y, codes, key = exp.targets.y, exp.store.group_codes, exp.targets.stratify_key()
    print("\nprobe check: ecgcl's linear probe against scikit-learn refitted on `ecgcl embed` features")
    print(f"{'repeat':>6} {'labels':>6}  {'method':<18} {'ecgcl AUROC':>11} {'sklearn AUROC':>13} {'diff':>7}  "
          f"{'ecgcl C':>7} {'sklearn C':>9}")
    worst = 0.0
    for row in (r for r in result.rows if r["method"].endswith("linear")):
        split = draw_repeat_split(exp, row["repeat"])
        train = label_fraction_subset(split.train, codes, key, row["label_fraction"], row["seed"])
        features = out / "probe-check.npy"
        embed_checkpoint(row["checkpoint"], config.data, features, device="cpu", overwrite=True)
        x = np.load(features)
        auroc, c = _sklearn_probe_auroc(x[train], y[train], x[split.val], y[split.val], x[split.test], y[split.test],
                                        exp.targets.multiclass)
        worst = max(worst, abs(auroc - row["auroc"]))
        print(f"{row['repeat'] + 1:>6} {row['label_fraction']:>6g}  {row['method']:<18} {row['auroc']:>11.3f} "
              f"{auroc:>13.3f} {auroc - row['auroc']:>+7.3f}  {row['probe_c']:>7g} {c:>9g}")
    print(f"largest |difference|: {worst:.4f} (allowed {PROBE_AGREEMENT})")
    assert worst <= PROBE_AGREEMENT, f"ecgcl's linear probe differs from scikit-learn by {worst:.4f} AUROC"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pretrain-epochs", type=int, default=3)
    parser.add_argument("--finetune-epochs", type=int, default=100, help="Most end-to-end epochs (see --patience)")
    parser.add_argument("--patience", type=int, default=10)
    parser.add_argument("--encoder", default="cnn")
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--split", default="random", help="random, ptbxl-folds or column:NAME")
    parser.add_argument("--task", default="normal_vs_abnormal")
    parser.add_argument("--label-fractions", default="0.1,1.0")
    parser.add_argument("--robustness", action="store_true",
                        help="Pretrain with and without lead_mask; AUROC on all leads, limb leads and lead I only.")
    parser.add_argument("--out", default="/tmp/ecgcl-bench-protocol")
    parser.add_argument("--probe-check", action="store_true",
                        help="Refit each linear probe with scikit-learn on its embedded features; fail beyond 0.01 AUROC")
    parser.add_argument("--resume", action="store_true",
                        help="Reuse the finished units of an earlier run in --out (same settings; --repeats may differ)")
    args = parser.parse_args()
    out = Path(args.out)
    store = out / "ptbxl100"
    started = time.perf_counter()
    if not store.exists():
        ingest(PTBXL, store, fs=100)
    ingested = time.perf_counter()
    if args.robustness:
        robustness(args, store, out)
        print(f"store: {store} ({args.repeats} repeats, pretrain {args.pretrain_epochs} epochs, fine-tune "
              f"{args.finetune_epochs} epochs, encoder {args.encoder} width {args.width} depth {args.depth})")
        print(f"ingest {ingested - started:.1f} s, both protocols {time.perf_counter() - ingested:.1f} s")
        return
    config = resolve_config(None, {
        "data": str(store), "task": args.task, "encoder": args.encoder, "split": args.split,
        "encoder_args": {"width": args.width, "depth": args.depth}, "aug": "permute+noise", "repeats": args.repeats,
        "pretrain_epochs": args.pretrain_epochs, "finetune_epochs": args.finetune_epochs, "patience": args.patience,
        "label_fractions": args.label_fractions, "out": str(out / f"results-{args.split}-{args.task}"),
        "device": "cpu",
    })
    result = run_protocol(config, overwrite=not args.resume)
    finished = time.perf_counter()
    print(f"store: {store} ({args.repeats} repeats, pretrain {args.pretrain_epochs} epochs, fine-tune at most "
          f"{args.finetune_epochs} epochs with patience {args.patience}, encoder {args.encoder} width {args.width} "
          f"depth {args.depth})")
    print(f"task {args.task}, split {args.split}: {result.split_note}")
    test_records = sorted({r["test_records"] for r in result.rows})
    train_records = sorted({r["train_records"] for r in result.rows})
    print(f"train records {train_records}, test records {test_records}")
    print(f"ingest {ingested - started:.1f} s, protocol {finished - ingested:.1f} s")
    benchmark = args.split == "ptbxl-folds" and args.task == "superclasses"
    gaps = "".join(f"  {'gap to ' + name:>20}" for name in PUBLISHED) if benchmark else ""
    print(f"{'labels':>6}  {'method':<22} {'test AUROC mean':>15}  {'95% CI':<16}  {'F-max':>6}{gaps}")
    for row in method_rows(result.summary):
        gap = "".join(f"  {row['auroc_mean'] - value:>+20.3f}" for value in PUBLISHED.values()) if benchmark else ""
        print(f"{row['label_fraction']:>6g}  {row['method']:<22} {row['auroc_mean']:>15.3f}  {_interval(row):<16}  "
              f"{row['f_max_mean']:>6.3f}{gap}")
    print("\npaired AUROC differences (mean over repeats, 95% t interval, paired t-test p)")
    for row in paired_rows(result.summary):
        p = row["auroc_p"]
        print(f"{row['label_fraction']:>6g}  {row['method'] + ' - ' + row['baseline']:<40} {row['auroc_mean']:>+8.3f}  "
              f"{_interval(row):<18}  p {'n/a' if p is None or p != p else f'{p:.3g}'}")
    print("\nhow the units ended (best epoch / epochs run; linear probes: C chosen on validation)")
    for row in result.rows:
        how = f"C={row['probe_c']:g} {row['stopped']}" if row.get("probe_c") is not None else \
            f"{row['best_epoch']}/{row['epochs_run']} {row['stopped']}"
        print(f"  repeat {row['repeat'] + 1} labels {row['label_fraction']:g} {row['method']:<20} {how}")
    print(endings_caption(result.rows))
    if args.probe_check:
        probe_check(config, result, out)


if __name__ == "__main__":
    main()
