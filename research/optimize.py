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
number of workers. An evaluation is a pure function of (parameters, prepared data). The study is run
by `research.optuna_study`; the chosen set's verdict is `research.optimize_verdict` (both re-exported
here, where the command, the report, the bench and the tests read them).
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from research.baselines import smc_only_config
from research.optimize_verdict import Verdict as Verdict
from research.optimize_verdict import cscv_blocks as cscv_blocks
from research.optimize_verdict import neighbours as neighbours
from research.optimize_verdict import verdict as verdict
from research.optuna_study import TrialRecord as TrialRecord
from research.optuna_study import clean as clean
from research.optuna_study import distributions as distributions
from research.optuna_study import open_study as open_study
from research.optuna_study import run_trials as run_trials
from research.optuna_study import trial_records as trial_records
from research.walkforward import Chained, TrainOptions
from trading.analyzer import AnalysisFrame
from trading.backtest import BacktestConfig, RandomSide, run_backtest
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
