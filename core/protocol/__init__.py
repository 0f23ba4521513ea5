"""The repeated patient-level protocol: splits, label fractions, metrics, confidence intervals, the repeat
loop with baselines, and the results folder."""

SPLIT_PARTS = ("train", "validation", "test", "pretraining_pool")  # the record lists of a run's split.json
