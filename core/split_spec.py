"""`--split` values: the split strategies a run may use, declared once, and the parsing of a value with its fold
options. Store-independent, so the configuration checks a value before any store is opened; drawing the split
itself is `ecgcl.protocol.strategies`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ecgcl.errors import EcgclError, did_you_mean

PTBXL_FOLDS = {"column": "strat_fold", "val_folds": (9,), "test_folds": (10,)}


@dataclass(frozen=True)
class SplitStrategy:
    """A parsed `--split` value: random draws, or fixed folds of a store column."""

    name: str
    column: str | None = None
    val_folds: tuple[int, ...] = ()
    test_folds: tuple[int, ...] = ()

    @property
    def fixed(self) -> bool:
        """Whether every repeat gets the same split (fold strategies), so repeats vary only the training seed."""
        return self.column is not None

    def describe(self) -> str:
        """One line for tables and split.json."""
        if not self.fixed:
            return "random patient-level splits, a new draw per repeat"
        folds = ", ".join(map(str, self.val_folds)), ", ".join(map(str, self.test_folds))
        official = "official PTB-XL folds, " if self.name == "ptbxl-folds" else ""
        return (f"{official}column {self.column!r}: validation fold(s) {folds[0]}, test fold(s) {folds[1]}, "
                "the rest train; the same split in every repeat, repeats vary only the training seed")


def _random(spec: str, val: tuple[int, ...], test: tuple[int, ...]) -> tuple[str | None, tuple, tuple]:
    if val or test:
        raise EcgclError("--val-folds/--test-folds need --split ptbxl-folds or --split column:NAME "
                         "(--split random draws patients by --val-fraction/--test-fraction)")
    return None, (), ()


def _ptbxl_folds(spec: str, val: tuple[int, ...], test: tuple[int, ...]) -> tuple[str | None, tuple, tuple]:
    return PTBXL_FOLDS["column"], val or PTBXL_FOLDS["val_folds"], test or PTBXL_FOLDS["test_folds"]


def _column(spec: str, val: tuple[int, ...], test: tuple[int, ...]) -> tuple[str | None, tuple, tuple]:
    column = spec[len("column:"):].strip()
    if not column:
        raise EcgclError(f"--split {spec!r} needs a column name, e.g. column:site")
    if not val or not test:
        raise EcgclError(f"--split {spec} needs --val-folds and --test-folds (fold numbers of column {column!r})")
    return column, val, test


# --split values: how each is written in help texts, and what it gives (column, validation and test folds)
STRATEGIES = {"random": _random, "ptbxl-folds": _ptbxl_folds, "column:NAME": _column}
SPLIT_STRATEGIES = tuple(STRATEGIES)


def parse_split(spec: str, val_folds=(), test_folds=()) -> SplitStrategy:
    """Check a `--split` value and its fold options (store-independent checks only)."""
    val, test = tuple(int(f) for f in val_folds or ()), tuple(int(f) for f in test_folds or ())
    key = "column:NAME" if spec.startswith("column:") else spec
    if key not in STRATEGIES:
        raise EcgclError(f"unknown --split {spec!r}{did_you_mean(spec, SPLIT_STRATEGIES)}; choose from "
                         f"{', '.join(SPLIT_STRATEGIES)}")
    column, val, test = STRATEGIES[key](spec, val, test)
    for option, folds in (("--val-folds", val), ("--test-folds", test)):
        if len(set(folds)) != len(folds):
            raise EcgclError(f"{option} lists a fold twice: {list(folds)}")
    if set(val) & set(test):
        raise EcgclError(f"fold(s) {sorted(set(val) & set(test))} are in both --val-folds and --test-folds")
    return SplitStrategy(spec, column, val, test)
