"""`ecgcl tune`: an Optuna study over a `Space`, each trial scored on validation records only.

The study lives in any Optuna storage (SQLite in OUT/study.db by default, a `.log`/`.journal` path for a
journal file on a shared disk, or any database URL), so a rerun resumes it and workers on several machines
share it; `trials` counts what this worker runs. TPE sampling (Bergstra et al., NeurIPS 2011) seeded by
--seed; median, Hyperband or no pruning on the per-epoch score. OUT gets best.toml (the best trial's full
config, which `ecgcl run --config` accepts), trials.csv and two plots.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

from ecgcl.config import RunConfig, resolve_config
from ecgcl.errors import EcgclError
from ecgcl.reporting import Reporter
from ecgcl.tuning.space import Space, parse_space
from ecgcl.tuning.outputs import TuneResult, write_outputs
from ecgcl.tuning.trial import score_trial

PRUNERS = ("median", "hyperband", "none")


HEARTBEAT_S, GRACE_S = 30, 120  # a database trial silent this long lost its worker (killed, machine gone)


def open_storage(storage: str | None, out: Path):
    """The Optuna storage of `--storage` (default SQLite in OUT/study.db; a .log/.journal path: a journal file).

    Database storages record a heartbeat per running trial: a trial whose worker died (SIGKILL, a lost node) is
    marked failed by the next worker that starts a trial, and run again once with the same parameters (Optuna's
    `RetryFailedTrialCallback`), so an interrupted study resumes without a trial stuck as running."""
    import optuna

    if storage is not None and storage.endswith((".log", ".journal")) and "://" not in storage:
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        return JournalStorage(JournalFileBackend(str(Path(storage).resolve())))
    url = storage if storage is not None else f"sqlite:///{(out / 'study.db').resolve()}"
    if "://" not in url:
        return url  # not a URL: Optuna's own error names it
    with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna's terms since 2.8
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if hasattr(optuna.storages, "RetryHeartbeatStaleTrialCallback"):  # Optuna >= 4.9 renamed the callback
            retry = {"heartbeat_stale_trial_callback": optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1)}
        else:
            retry = {"failed_trial_callback": optuna.storages.RetryFailedTrialCallback(max_retry=1)}
        return optuna.storages.RDBStorage(url, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S, **retry)


OPEN_ATTEMPTS = 6  # workers started together race to create a new study's tables; the losers retry


def open_study(storage: str | None, out: Path, name: str, pruner, seed: int):
    """Create or load the study. One worker on the default SQLite study samples with TPE seeded by `seed`
    (reproducible). Workers sharing a `--storage` sample from the system's entropy: seeded alike, they would
    draw the same first points (TPE's random start-up), and their interleaving is not reproducible anyway."""
    import time

    import optuna

    sampler = optuna.samplers.TPESampler(seed=seed if storage is None else None)
    for attempt in range(OPEN_ATTEMPTS):
        try:
            return optuna.create_study(storage=open_storage(storage, out), study_name=name, direction="maximize",
                                       load_if_exists=True, pruner=pruner, sampler=sampler)
        except Exception as error:  # SQLAlchemy, driver and URL errors differ by backend: one line for all
            if attempt + 1 < OPEN_ATTEMPTS and _racing(error):
                time.sleep(0.2 * (attempt + 1))
                continue
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise EcgclError(f"--storage {storage or 'OUT/study.db'}: cannot open the study: {first}") from None


def _racing(error: Exception) -> bool:
    """Whether opening failed because another worker was creating the same study or its tables right then."""
    text = str(error).lower()
    return any(sign in text for sign in ("unique constraint", "already exists", "database is locked",
                                         "duplicate"))


def make_pruner(pruner):
    """`median` (after 2 finished trials and 1 epoch), `hyperband`, `none`, or an Optuna pruner object."""
    import optuna

    if not isinstance(pruner, str):
        return pruner
    if pruner not in PRUNERS:
        raise EcgclError(f"--pruner must be one of {', '.join(PRUNERS)}, not {pruner!r}")
    return {"median": lambda: optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1),
            "hyperband": optuna.pruners.HyperbandPruner, "none": optuna.pruners.NopPruner}[pruner]()


def tune(config: RunConfig, space: Space | dict, *, trials: int, storage: str | None = None,
         study_name: str | None = None, score: str = "knn", pruner="median", out: str | Path,
         reporter: Reporter | None = None, registry=None, timeout: float | None = None) -> TuneResult:
    """Run `trials` more trials of the study `study_name` (default "ecgcl") and write OUT's files. With
    `timeout` (seconds), no trial starts after that much time: a budget in time rather than in trials."""
    import optuna

    from ecgcl.files import make_folders

    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise EcgclError(f"--trials must be an integer >= 1, got {trials!r}")
    if timeout is not None and not timeout > 0:
        raise EcgclError(f"--timeout must be a number of seconds > 0, got {timeout!r}")
    if registry is None:
        from ecgcl.manager import get_registry

        registry = get_registry()
    space = space if isinstance(space, Space) else parse_space(space, config, registry)
    chosen_pruner = make_pruner(pruner)
    reporter, out = reporter or Reporter(), Path(out)
    if storage is None:  # the default SQLite study lives in OUT; another storage is opened before OUT is made
        make_folders(out, "tuning folder")
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(logging.WARNING)  # core never prints: trials are told through the reporter
    try:
        study = open_study(storage, out, study_name or "ecgcl", chosen_pruner, config.seed)
        make_folders(out, "tuning folder")

        def objective(trial) -> float:
            changes = space.suggest(trial)
            trial.set_user_attr("overrides", changes)
            folder = out / "trials" / f"trial_{trial.number}"
            trial_config = resolve_config({**config.to_dict(), **changes, "out": str(folder)})
            reporter.message(f"trial {trial.number}: {trial.params}")
            return score_trial(trial_config, registry=registry, trial=trial, folder=folder, reporter=reporter,
                               score=score)

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.optimize(objective, n_trials=trials, timeout=timeout)
    finally:
        optuna.logging.set_verbosity(verbosity)
    return write_outputs(study, config, out, reporter)
