"""`ecgcl tune`: hyperparameter search on validation records only, as an Optuna study (see `ecgcl.tuning.study`).

The package is `ecgcl.tuning`, not `ecgcl.tune`: importing a subpackage sets it as an attribute of its parent,
which would hide the Python API function `ecgcl.tune(...)` behind a module.
"""

from ecgcl.tuning.space import Space, parse_space
from ecgcl.tuning.study import TuneResult, tune

__all__ = ["Space", "TuneResult", "parse_space", "tune"]
