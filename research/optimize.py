"""Walk-forward optimisation of the strategy's numbers, scored out of sample only.

The bars are cut into `folds` walk-forward windows and a final hold-out window:

    [train 1][test 1]
             [train 2][test 2]
                      [train 3][test 3]
                               [train H][hold-out]

Each fold's models are trained on its train window only (once, before any trial); a trial is one
set of parameters traded over the test windows 1..k, chained as one account whose risk counters
(the total-loss reference, a total stop) carry from fold to fold as a live restart keeps them.
The objective is the annualised Sharpe ratio of that account's daily returns. A set that trades
fewer than `min_trades` times over the folds (by default one trade per 200 traded bars, at least
10: `min_trades_for`) is not scored: its Sharpe is kept as measured, but it can never be chosen,
and the sampler is told by an Optuna constraint (trades short of the minimum) so that it still climbs
towards sets that trade. No sentinel number stands in for a score anywhere.
The hold-out window
comes after every test window and is never seen by the objective: the chosen parameters, the
current defaults and the baselines are traded there once, for the report.

Trials are asked from Optuna's TPE sampler in batches of a fixed size, evaluated (here, in local
processes or as Ray tasks) and told back in order, so a seed gives the same trials whatever the
number of workers. An evaluation is a pure function of (parameters, prepared data).
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from research.baselines import smc_only_config
from research.walkforward import Chained, TrainOptions
from trading.analyzer import AnalysisFrame
from trading.backtest import BacktestConfig, RandomSide, run_backtest
from trading.numbers import signed_usd
from trading.parameters import SEARCH_SPACE, ParamRange, StrategyParams
from trading.returns import annual_sharpe, daily_returns

# the meta-model's EV gate (trading.gates.ml_confidence): its P(win) floor (0: the floor fitted on the
# model's validation slice) and the EV margin in R; searched only when the windows trade with models
ML_SEARCH_SPACE: dict[str, ParamRange] = {
    "ml_min_win_prob": ParamRange(0.0, 0.6, 0.05),
    "ml_min_ev_r": ParamRange(0.0, 0.5, 0.05),
}
BARS_PER_REQUIRED_TRADE = 200  # about two trading days of M15 bars
MIN_TRADES_FLOOR = 10
# what a stored study's objective means; a study stored under another scoring is refused, not mixed
SCORING = "annual Sharpe of the folds; sets below the trade minimum unscored (constraint)"


def min_trades_for(plan_folds: int, test_bars: int) -> int:
    """The trade count a set needs over the folds to be scored: one per 200 traded bars, at least 10."""
    return max(MIN_TRADES_FLOOR, math.ceil(plan_folds * test_bars / BARS_PER_REQUIRED_TRADE))


@dataclass(frozen=True, slots=True)
class Window:
    """One traded window: the warm-up bars and the test bars, with their precomputed analysis."""

    name: str
    bars: pl.DataFrame
    frame: AnalysisFrame
    test_from: datetime
    test_to: datetime
    model_version: str


@dataclass(frozen=True, slots=True)
class OptimizationData:
    """Everything a trial needs; shipped once to each worker (or once to Ray's object store)."""

    folds: tuple[Window, ...]
    holdout: Window
    config: BacktestConfig
    space: dict[str, ParamRange]
    min_trades: int = 30

    @property
    def uses_models(self) -> bool:
        return any(k in self.space for k in ML_SEARCH_SPACE)


@dataclass(frozen=True, slots=True)
class OptimizationPlan:
    folds: int
    train_bars: int
    test_bars: int
    holdout_bars: int
    warmup: int

    def fold_ranges(self, n_bars: int) -> list[tuple[range, range]]:
        """(train, test) bar ranges of the folds and, last, of the hold-out."""
        start_test = n_bars - self.holdout_bars - self.folds * self.test_bars
        out = []
        for k in range(self.folds):
            t0 = start_test + k * self.test_bars
            out.append((range(t0 - self.train_bars, t0), range(t0, t0 + self.test_bars)))
        h0 = n_bars - self.holdout_bars
        out.append((range(h0 - self.train_bars, h0), range(h0, n_bars)))
        return out


def plan_optimization(
    n_bars: int, folds: int = 3, holdout_bars: int = 2000, train_bars: int = 4000, warmup: int = 200
) -> OptimizationPlan:
    """Test windows of equal length fill what the first training window and the hold-out leave."""
    if folds < 1:
        raise ValueError(f"--folds must be at least 1 (got {folds})")
    if holdout_bars < 1 or train_bars < warmup:
        raise ValueError(
            f"need a hold-out of at least 1 bar and a train window of at least the {warmup}-bar warm-up"
        )
    test = (n_bars - train_bars - holdout_bars) // folds
    if test < 200:
        raise ValueError(
            f"{n_bars} bars leave {max(test, 0)} bars per test window after {train_bars} train and "
            f"{holdout_bars} hold-out bars; need at least 200 (use fewer folds or a shorter train window)"
        )
    return OptimizationPlan(folds, train_bars, test, holdout_bars, warmup)


def search_space(uses_models: bool) -> dict[str, ParamRange]:
    space = dict(SEARCH_SPACE)
    if uses_models:
        space |= ML_SEARCH_SPACE
    return space


def default_values(space: dict[str, ParamRange]) -> dict[str, float]:
    base = StrategyParams()
    return {k: getattr(base, k) for k in space}


# ------------------------------------------------------------------------------------ preparing


def prepare(
    bars: pl.DataFrame,
    plan: OptimizationPlan,
    config: BacktestConfig,
    *,
    use_models: bool = True,
    min_trades: int = 30,
    train_options: TrainOptions | None = None,
    progress: Callable[[str], None] | None = None,
) -> OptimizationData:
    """Train each window's models on its own train bars and precompute each window's analysis."""
    say = progress or (lambda text: None)
    options = train_options or TrainOptions()
    ranges = plan.fold_ranges(bars.height)
    with tempfile.TemporaryDirectory(prefix="optimize-") as tmp:
        windows = []
        for k, (train, test) in enumerate(ranges):
            name = "hold-out" if k == len(ranges) - 1 else f"fold {k + 1}"
            regime = signal = None
            version = ""
            if use_models:
                from models.live import SlotRegime, SlotSignal
                from models.registry import ModelRegistry, ModelSlot
                from models.training import train_models

                say(f"{name}: training the models")
                registry = ModelRegistry(Path(tmp) / f"w{k}", keep=2)
                report = train_models(
                    bars.slice(train.start, len(train)),
                    registry=registry,
                    activate=False,
                    triggered_by=f"optimize {name}",
                    **options.kwargs(),
                )
                assert report.version is not None
                slot = ModelSlot(registry.load(report.version))
                regime, signal, version = SlotRegime(slot), SlotSignal(slot), report.version
            say(f"{name}: analysis")
            w = bars.slice(test.start - plan.warmup, len(test) + plan.warmup)
            frame = AnalysisFrame.build(w, regime, signal, with_h1_bias=config.params.gate_enabled("h1_bias"))
            frame.setup_at(0)  # fills the setup-column cache once, so trials' copies of the frame share it
            times = bars["time"]
            windows.append(Window(name, w, frame, times[test.start], times[test.stop - 1], version))
    return OptimizationData(
        tuple(windows[:-1]),
        windows[-1],
        replace(config, warmup_bars=plan.warmup),
        search_space(use_models),
        min_trades,
    )


# ------------------------------------------------------------------------------------ one trial


@dataclass(frozen=True, slots=True)
class Score:
    """A parameter set's figures over a set of windows traded as one account."""

    objective: float  # annualised Sharpe of the daily returns, as measured
    daily_returns: tuple[float, ...]
    metrics: dict[str, Any]
    halts: tuple[dict[str, Any], ...] = ()
    scored: bool = True  # False: fewer trades over the folds than the minimum; never chosen
    shortfall: int = 0  # trades short of the minimum over the folds (<= 0: enough)


def params_for(values: dict[str, float], base: StrategyParams) -> StrategyParams:
    kinds = {f.name: f.type for f in fields(StrategyParams)}
    changes: dict[str, Any] = {}
    for k, v in values.items():
        changes[k] = round(v) if kinds[k] in ("int", int) else float(v)
    return replace(base, **changes)


def trade_windows(
    values: dict[str, float], data: OptimizationData, windows: Sequence[Window], variant: str = "strategy"
) -> Chained:
    """Trade `windows` in order as one account. Variants: strategy, smc_only (ML gates off),
    random (a coin picks each setup's side, same exits, ML gates off)."""
    config = replace(data.config, params=params_for(values, data.config.params))
    if variant in ("smc_only", "random"):
        config = smc_only_config(config)
    account = Chained(config.balance)
    risk = None
    for w in windows:
        wrapper = (lambda a: RandomSide(a, seed=7)) if variant == "random" else None
        run = run_backtest(
            w.bars,
            replace(config, balance=account.balance),
            frame=w.frame,
            label=f"{w.name} {variant}",
            analyzer_wrapper=wrapper,
            risk_state=risk,
        )
        risk = run.risk_state
        account.add(run)
    return account


def score(
    values: dict[str, float],
    data: OptimizationData,
    windows: Sequence[Window] | None = None,
    variant: str = "strategy",
) -> Score:
    """The figures of `values` over `windows` (default: the folds). Only on the folds does the minimum
    trade count apply: a set below it is `scored=False` (its Sharpe kept as measured)."""
    account = trade_windows(values, data, data.folds if windows is None else windows, variant)
    r = daily_returns(account.times, account.equity_array())
    shortfall = 0 if windows is not None else data.min_trades - len(account.trades)
    return Score(
        annual_sharpe(r),
        tuple(float(x) for x in r),
        account.metrics(),
        tuple(h.to_dict() for h in account.halts),
        shortfall <= 0,
        shortfall,
    )


# ------------------------------------------------------------------------------------ executors


_WORKER_DATA: OptimizationData | None = None


def _init_worker(data: OptimizationData) -> None:
    global _WORKER_DATA
    _WORKER_DATA = data


def _score_in_worker(values: dict[str, float]) -> Score:
    assert _WORKER_DATA is not None, "worker not initialised"
    return score(values, _WORKER_DATA)


class LocalExecutor:
    """Scores batches in this process (workers=1) or in a pool of spawned processes, order kept."""

    def __init__(self, data: OptimizationData, workers: int = 1) -> None:
        if workers < 1:
            raise ValueError(f"--workers must be at least 1 (got {workers})")
        self.data = data
        self.workers = workers
        self._pool = None
        if workers > 1:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            # spawn, not fork: polars and the BLAS threads do not survive a fork reliably
            self._pool = ProcessPoolExecutor(
                workers, mp_context=mp.get_context("spawn"), initializer=_init_worker, initargs=(data,)
            )

    def map(self, batch: list[dict[str, float]]) -> list[Score]:
        if self._pool is None:
            return [score(v, self.data) for v in batch]
        return list(self._pool.map(_score_in_worker, batch))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None


class RayExecutor:
    """Scores batches as Ray tasks on a cluster; the data goes to the object store once (ray.put)."""

    def __init__(
        self, data: OptimizationData, address: str, *, init_kwargs: dict[str, Any] | None = None
    ) -> None:
        try:
            import ray
        except ImportError as exc:
            raise ValueError("--ray needs Ray: pip install '.[ray]'") from exc
        self._ray = ray
        self._own = not ray.is_initialized()
        if self._own:
            from research.ray_connect import init_ray

            init_ray(ray, address, **(init_kwargs or {}))
        self._ref = ray.put(data)
        self._task = ray.remote(_ray_score)

    def map(self, batch: list[dict[str, float]]) -> list[Score]:
        return self._ray.get([self._task.remote(self._ref, v) for v in batch])

    def close(self) -> None:
        if self._own:
            self._ray.shutdown()


def _ray_score(data: OptimizationData, values: dict[str, float]) -> Score:
    return score(values, data)  # Ray resolves the object reference before the call


# ------------------------------------------------------------------------------------ the study


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


def fingerprint(bars: pl.DataFrame, plan: OptimizationPlan, data: OptimizationData) -> dict[str, Any]:
    """What a study was run on; resuming on anything else is refused."""
    return {
        "bars": bars.height,
        "from": str(bars["time"][0]),
        "to": str(bars["time"][-1]),
        "plan": [plan.folds, plan.train_bars, plan.test_bars, plan.holdout_bars, plan.warmup],
        "space": {k: [r.low, r.high, r.step] for k, r in data.space.items()},
        "balance": data.config.balance,
        "commission": data.config.commission_per_lot,
        "min_trades": data.min_trades,
        "scoring": SCORING,
    }


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


# ------------------------------------------------------------------------------------ the report


def neighbours(
    values: dict[str, float], space: dict[str, ParamRange]
) -> list[tuple[str, float, dict[str, float]]]:
    """One grid step down and up of each parameter (inside its range): (name, new value, values)."""
    out = []
    for name, r in space.items():
        for delta in (-r.step, r.step):
            v = round(values[name] + delta, 10)
            if r.low - 1e-9 <= v <= r.high + 1e-9:
                out.append((name, v, {**values, name: v}))
    return out


@dataclass(slots=True)
class Verdict:
    survives: bool
    reasons: list[str] = field(default_factory=list)  # why not, in words


def verdict(
    holdout: dict[str, dict[str, Any]], dsr: float, pbo: float | None, min_dsr: float = 0.95
) -> Verdict:
    """The chosen set survives only if, on the hold-out, it beats every baseline and the defaults and
    has a positive Sharpe, and the search statistics say the fold result is not luck or overfitting."""
    v = Verdict(True)
    chosen = holdout["chosen"]
    for name, m in holdout.items():
        if name != "chosen" and chosen["net_profit"] <= m["net_profit"]:
            v.reasons.append(
                f"on the hold-out it makes {signed_usd(chosen['net_profit'])}, not more than "
                f"{name.replace('_', ' ')} ({signed_usd(m['net_profit'])})"
            )
    if (chosen.get("sharpe") or 0.0) <= 0:
        v.reasons.append(f"its hold-out Sharpe is {chosen.get('sharpe') or 0.0:.2f}, not positive")
    if not (dsr >= min_dsr):
        v.reasons.append(
            f"the deflated Sharpe ratio is {dsr:.2f} < {min_dsr:.2f}: the fold Sharpe is within "
            "what the best of this many skill-less trials would show"
        )
    if pbo is not None and pbo >= 0.5:
        v.reasons.append(f"the probability of backtest overfitting is {pbo:.0%} (≥ 50%)")
    v.survives = not v.reasons
    return v


def cscv_blocks(n_obs: int, wanted: int = 8) -> int | None:
    """The even number of CSCV blocks the observations allow (at least 2 observations a block)."""
    b = min(wanted, n_obs // 2)
    b -= b % 2
    return b if b >= 2 else None
