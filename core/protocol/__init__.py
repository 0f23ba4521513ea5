"""The repeated patient-level protocol: splits, label fractions, metrics, confidence intervals, the repeat
loop with baselines, and the results folder."""
