"""The Optuna side of the optimisation: a study in SQLite that resumes deterministically, trials asked in
batches and told back in order (a seed gives the same trials whatever the number of workers), and the
completed trials read back as records."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from trading.parameters import ParamRange, StrategyParams


@dataclass(slots=True)
class TrialRecord:
    number: int
    values: dict[str, float]
    objective: float
    daily_returns: tuple[float, ...]
    trades: int
    net_profit: float
    scored: bool = True  # traded at least the minimum over the folds


def distributions(space: dict[str, ParamRange]) -> dict[str, Any]:
    from optuna.distributions import FloatDistribution, IntDistribution

    kinds = {f.name: f.type for f in fields(StrategyParams)}
    out: dict[str, Any] = {}
    for name, r in space.items():
        if kinds.get(name) in ("int", int):
            out[name] = IntDistribution(int(r.low), int(r.high), step=int(r.step))
        else:
            out[name] = FloatDistribution(r.low, r.high, step=r.step)
    return out


def open_study(name: str, storage: str | Path, seed: int, setup: dict[str, Any]) -> Any:
    """Create or resume a study in SQLite. The sampler is seeded with seed + trials already there,
    so a resumed run continues deterministically instead of re-drawing the first trials."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = f"sqlite:///{Path(storage)}"
    study = optuna.create_study(study_name=name, storage=url, direction="maximize", load_if_exists=True)
    saved = study.user_attrs.get("setup")
    if saved is None:
        study.set_user_attr("setup", setup)
        study.set_user_attr("seed", seed)
    elif saved != setup:
        raise ValueError(
            f"study {name!r} in {storage} was run on other data, ranges or scoring; use another --study name"
        )
    elif study.user_attrs.get("seed") != seed:
        raise ValueError(
            f"study {name!r} was started with --seed {study.user_attrs.get('seed')}; resume with that seed"
        )
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study.tell(t.number, state=optuna.trial.TrialState.FAIL)  # left by an interrupted run
    done = len(study.get_trials(deepcopy=False))
    study.sampler = optuna.samplers.TPESampler(seed=seed + done, n_startup_trials=10)
    return study


def run_trials(
    study: Any,
    executor: Any,
    space: dict[str, ParamRange],
    n_trials: int,
    batch: int = 4,
    progress: Callable[[int, int], None] | None = None,
) -> None:
    """Until the study holds `n_trials` complete trials: ask a batch, score it, tell it in order."""
    import optuna

    if batch < 1:
        raise ValueError(f"--batch must be at least 1 (got {batch})")
    dist = distributions(space)

    def complete() -> int:
        return len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))

    done = complete()
    if progress:
        progress(done, n_trials)
    while done < n_trials:
        trials = [study.ask(dist) for _ in range(min(batch, n_trials - done))]
        scores = executor.map([clean(t.params) for t in trials])
        for t, s in zip(trials, scores, strict=True):
            t.set_user_attr("daily_returns", list(s.daily_returns))
            t.set_user_attr("trades", s.metrics["trades"])
            t.set_user_attr("net_profit", s.metrics["net_profit"])
            t.set_user_attr("max_drawdown_pct", s.metrics["max_drawdown_pct"])
            t.set_user_attr("scored", s.scored)
            # TPE ranks a trial with a positive constraint below every feasible one, nearer ones first:
            # the search climbs towards sets that trade without any stand-in score
            t.set_constraint("trades_short_of_minimum", s.shortfall)
            study.tell(t, s.objective)
        done += len(trials)
        if progress:
            progress(done, n_trials)


def clean(params: dict[str, Any]) -> dict[str, float]:
    """Grid values without the float noise of Optuna's stepped floats (0.7000000000000001 -> 0.7)."""
    return {k: (round(v, 10) if isinstance(v, float) else v) for k, v in params.items()}


def trial_records(study: Any) -> list[TrialRecord]:
    import optuna

    out = []
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        out.append(
            TrialRecord(
                t.number,
                clean(t.params),
                float(t.value),
                tuple(t.user_attrs.get("daily_returns", ())),
                int(t.user_attrs.get("trades", 0)),
                float(t.user_attrs.get("net_profit", 0.0)),
                bool(t.user_attrs.get("scored", True)),
            )
        )
    return out
