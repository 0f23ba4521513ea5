"""Robustness report: the same test records scored under missing leads, noise, baseline wander and resampling.

`conditions` lists the documented conditions, `perturb` applies one to a batch (reusing augmentation plugins,
so any registered augmentation can be a condition), `report` scores a model under each condition and
writes robustness.csv / robustness.json / robustness.png.
"""
