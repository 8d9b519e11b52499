"""Walk-forward backtest: train both models on a window, trade the next window with them, roll.

Fold k trains on bars [s, s + train) only (into a throw-away registry) and trades bars
[s + train, s + train + test); the backtest of the test window is given the `warmup_bars` before it
as analysis history, and the engine trades only after that warm-up, so every trade reported here is
out-of-sample. Folds are chained: fold k starts with fold k-1's final equity, and the overall
figures are `compute_metrics` over the concatenated trades and equity curve. The engine's risk
counters carry from fold to fold as a live restart keeps them: the 10 % total-loss limit counts from
the first fold's balance, and a total stop stays on (nobody approves a reset in a backtest).
Baselines over the same test windows, on the same intrabar path and config, chained the same way:
SMC-only (ML gates off, the fold model's regime), random entries (a coin picks each setup's side,
same exits, ML gates off) and buy-and-hold. Every halt by a loss limit is kept with its date and the
setups it kept out.

Beside the chained "as live" account, every fold is also traded on its own fresh account (the start
balance, fresh risk counters) by the strategy and each baseline, so that a baseline halted by the
total-loss limit in one fold still counts in the next; `research.compare` sets them side by side in
R per trade and fold return, with 95 % intervals.

This lives in bot/ because it wires models/ (training, registry) to trading/ (the engine backtest),
which must not import each other that way.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from models.dataset import DEFAULT_GAP
from models.live import SlotRegime, SlotSignal
from models.metrics import roc_auc
from models.registry import ModelBundle, ModelRegistry, ModelSlot
from models.signal import NUM_BOOST_ROUND
from models.training import bundle_dataset, train_models
from research.baselines import (  # noqa: F401  (smc_only_config, ML_GATES: re-exported, their old home)
    ML_GATES,
    buy_and_hold_chained,
    run_buy_and_hold,
    run_random,
    run_smc_only,
    smc_only_config,
)
from trading.backtest import (
    BacktestConfig,
    BacktestResult,
    HaltEvent,
    PathFactory,
    compute_metrics,
    run_backtest,
)
from trading.domain import ClosedTrade
from trading.records import OpenedTrade
from trading.risk.modes import RiskState

# stage text, fold index (0-based), number of folds
WalkProgress = Callable[[str, int, int], None]


@dataclass(frozen=True, slots=True)
class TrainOptions:
    """Training inside each fold: small on purpose (a fold's window is short and there are several)."""

    n_folds: int = 2
    test_size: int = 500
    valid_size: int = 500
    gap: int = DEFAULT_GAP
    hmm_seeds: tuple[int, ...] = (42, 59)
    fold_hmm_seeds: tuple[int, ...] | None = (42,)
    num_boost_round: int = NUM_BOOST_ROUND

    def kwargs(self) -> dict[str, Any]:
        return {
            "n_folds": self.n_folds,
            "test_size": self.test_size,
            "valid_size": self.valid_size,
            "gap": self.gap,
            "hmm_seeds": self.hmm_seeds,
            "fold_hmm_seeds": self.fold_hmm_seeds,
            "num_boost_round": self.num_boost_round,
        }


@dataclass(frozen=True, slots=True)
class FoldPlan:
    """Bar indices of one fold: `train` fits the models, `test` is traded (half-open ranges)."""

    fold: int
    train: range
    test: range

    def backtest_range(self, warmup: int) -> range:
        """The bars handed to the backtest: the warm-up history, then the test window."""
        return range(self.test.start - warmup, self.test.stop)


def plan_folds(
    n_bars: int, train_bars: int, test_bars: int, step: int | None = None, warmup: int = 200
) -> list[FoldPlan]:
    """Rolling [train][test] windows moved by `step` (default `test_bars`); only complete test windows."""
    step = test_bars if step is None else step
    if min(train_bars, test_bars, step) < 1:
        raise ValueError(
            f"train, test and step must be positive bar counts (got {train_bars}:{test_bars}:{step})"
        )
    if step < test_bars:
        raise ValueError(
            f"step {step} is shorter than the test window {test_bars}: test windows would overlap "
            "and count the same out-of-sample bars twice"
        )
    if train_bars < warmup:
        raise ValueError(
            f"the train window ({train_bars} bars) must hold at least the {warmup}-bar warm-up "
            "that precedes each test window"
        )
    folds: list[FoldPlan] = []
    start = 0
    while start + train_bars + test_bars <= n_bars:
        mid = start + train_bars
        folds.append(FoldPlan(len(folds), range(start, mid), range(mid, mid + test_bars)))
        start += step
    if not folds:
        raise ValueError(
            f"{n_bars} bars are too few for one fold of {train_bars} train + {test_bars} test bars"
        )
    return folds


@dataclass(slots=True)
class FoldOutcome:
    plan: FoldPlan
    train_from: datetime
    train_to: datetime  # open time of the last training bar
    test_from: datetime
    test_to: datetime
    model_version: str
    model_trained_to: str  # the registry's own record of the newest bar the model was fitted on
    model_auc: float | None  # AUC of the fold's model on its own (inner) walk-forward
    test_auc: float | None  # AUC of the same model on the test window's rows (out-of-sample)
    strategy: BacktestResult
    smc_only: BacktestResult
    random: BacktestResult | None = None
    fresh: dict[str, BacktestResult] = field(default_factory=dict)  # the fold on its own fresh account

    def row(self) -> dict[str, Any]:
        m = self.strategy.metrics()
        return {
            "fold": self.plan.fold + 1,
            "train_from": str(self.train_from),
            "train_to": str(self.train_to),
            "test_from": str(self.test_from),
            "test_to": str(self.test_to),
            "train_bars": len(self.plan.train),
            "test_bars": len(self.plan.test),
            "model_version": self.model_version,
            "model_trained_to": self.model_trained_to,
            "model_auc": self.model_auc,
            "test_auc": self.test_auc,
            "start_equity": round(self.strategy.start_balance, 2),
            "trades": m["trades"],
            "net_profit": m["net_profit"],
            "win_rate": m["win_rate"],
            "profit_factor": m["profit_factor"],
            "max_drawdown_pct": m["max_drawdown_pct"],
            "smc_only_trades": len(self.smc_only.trades),
            "smc_only_net_profit": round(sum(t.profit for t in self.smc_only.trades), 2),
            "random_net_profit": None
            if self.random is None
            else round(sum(t.profit for t in self.random.trades), 2),
            "halts": [h.to_dict() for h in self.strategy.halts],
        }


@dataclass(slots=True)
class Chained:
    """Fold results joined into one out-of-sample account (tickets renumbered to stay unique)."""

    start_balance: float
    trades: list[ClosedTrade] = field(default_factory=list)
    opened: list[OpenedTrade] = field(default_factory=list)
    times: list[datetime] = field(default_factory=list)
    equity: list[float] = field(default_factory=list)
    halts: list[HaltEvent] = field(default_factory=list)
    risk_state: RiskState | None = None  # the last run's risk counters: the next fold starts from them
    _offset: int = 0

    @property
    def balance(self) -> float:
        return self.equity[-1] if self.equity else self.start_balance

    def add(self, r: BacktestResult) -> None:
        off = self._offset
        self.trades += [replace(t, ticket=t.ticket + off) for t in r.trades]
        self.opened += [replace(o, ticket=o.ticket + off) for o in r.opened]
        self.times += r.equity_times
        self.equity += r.equity.tolist()
        halts = list(r.halts)
        if (
            self.halts
            and self.halts[-1].end is None
            and halts
            and r.equity_times
            and halts[0].start == r.equity_times[0]
        ):  # a halt that went on into this run is one halt
            last, first = self.halts.pop(), halts.pop(0)
            halts.insert(
                0,
                replace(
                    last,
                    end=first.end,
                    bars=last.bars + first.bars,
                    setups_blocked=last.setups_blocked + first.setups_blocked,
                ),
            )
        self.halts += halts
        self.risk_state = r.risk_state
        self._offset = off + max([t.ticket for t in r.trades] + [o.ticket for o in r.opened] + [0])

    def equity_array(self) -> np.ndarray:
        return np.asarray(self.equity, dtype=float)

    def metrics(self) -> dict[str, Any]:
        return compute_metrics(self.trades, self.opened, self.times, self.equity_array(), self.start_balance)


@dataclass(slots=True)
class WalkForwardResult:
    train_bars: int
    test_bars: int
    step: int
    folds: list[FoldOutcome]
    strategy: Chained
    smc_only: Chained
    untested_bars: int  # bars after the last complete test window
    random: Chained | None = None
    buy_and_hold: dict[str, Any] | None = None

    def overall(self) -> dict[str, Any]:
        return self.strategy.metrics()

    def gate_blocks(self) -> dict[str, int]:
        """Which gate stopped the strategy's setups, summed over the folds' out-of-sample bars."""
        total: Counter[str] = Counter()
        for f in self.folds:
            total.update(f.strategy.gate_blocks)
        return dict(total.most_common())

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "train_bars": self.train_bars,
            "test_bars": self.test_bars,
            "step": self.step,
            "untested_bars": self.untested_bars,
            "out_of_sample_bars": sum(len(f.plan.test) for f in self.folds),
            "folds": [f.row() for f in self.folds],
            "overall": self.overall(),
            "gate_blocks": self.gate_blocks(),
            "smc_only": self.smc_only.metrics(),
            "baselines": self.baselines(),
            "halts": [h.to_dict() for h in self.strategy.halts],
            "baseline_halts": {
                name: [h.to_dict() for h in c.halts]
                for name, c in (("smc_only", self.smc_only), ("random", self.random))
                if c is not None
            },
            "intrabar_mode": self.folds[0].strategy.intrabar_mode if self.folds else None,
            "fresh": self.fresh_comparison(),
        }

    def fresh_comparison(self) -> dict[str, Any] | None:
        from research.compare import compare_folds

        if not self.folds or not all(f.fresh for f in self.folds):
            return None
        return compare_folds(
            [f.fresh for f in self.folds],
            names={"smc_only": "SMC-only", "random": "random entries", "buy_and_hold": "buy-and-hold"},
        )

    def baselines(self) -> dict[str, dict[str, Any]]:
        out = {"smc_only": self.smc_only.metrics()}
        if self.random is not None:
            out["random"] = self.random.metrics()
        if self.buy_and_hold is not None:
            out["buy_and_hold"] = self.buy_and_hold
        return out


def _test_auc(bundle: ModelBundle, bars: pl.DataFrame, test_from: datetime) -> float | None:
    ds = bundle_dataset(bundle, bars)
    keep = ds.times >= np.datetime64(test_from.replace(tzinfo=None))
    if keep.sum() < 2:
        return None
    auc = roc_auc(bundle.signal.predict_proba(ds.x[keep]), ds.y[keep])
    return round(float(auc), 4) if np.isfinite(auc) else None


def walk_forward(
    bars: pl.DataFrame,
    train_bars: int,
    test_bars: int,
    step: int | None = None,
    config: BacktestConfig | None = None,
    train_options: TrainOptions | None = None,
    *,
    models_dir: str | Path | None = None,
    progress: WalkProgress | None = None,
    path: PathFactory | None = None,
) -> WalkForwardResult:
    """Train on each window, backtest the next with that fold's models; out-of-sample figures only.

    `models_dir` keeps the fold registries (one version per fold); by default a temporary folder is
    used and removed. `path` is the intrabar path factory (M1 detail, real ticks; None: generated)
    the strategy and every baseline walk.
    """
    config = config or BacktestConfig()
    options = train_options or TrainOptions()
    plans = plan_folds(bars.height, train_bars, test_bars, step, config.warmup_bars)
    if models_dir is None:
        with tempfile.TemporaryDirectory(prefix="walkforward-") as tmp:
            return _run(bars, plans, train_bars, test_bars, step, config, options, Path(tmp), progress, path)
    return _run(bars, plans, train_bars, test_bars, step, config, options, Path(models_dir), progress, path)


def _run(
    bars: pl.DataFrame,
    plans: list[FoldPlan],
    train_bars: int,
    test_bars: int,
    step: int | None,
    config: BacktestConfig,
    options: TrainOptions,
    root: Path,
    progress: WalkProgress | None,
    path: PathFactory | None = None,
) -> WalkForwardResult:
    say = progress or (lambda stage, k, n: None)
    times = bars["time"]
    registry = ModelRegistry(root, keep=max(len(plans) + 1, 2))
    strategy, smc, rnd = Chained(config.balance), Chained(config.balance), Chained(config.balance)
    tested: list[pl.DataFrame] = []
    folds: list[FoldOutcome] = []
    for plan in plans:
        n = len(plans)
        say("training", plan.fold, n)
        train = bars.slice(plan.train.start, len(plan.train))
        report = train_models(
            train,
            registry=registry,
            activate=False,
            triggered_by=f"walk-forward fold {plan.fold + 1}",
            **options.kwargs(),
        )
        assert report.version is not None
        bundle = registry.load(
            report.version
        )  # the fold's model, whatever the registry's activation rules say
        slot = ModelSlot(bundle)
        regime, signal = SlotRegime(slot), SlotSignal(slot)
        window = plan.backtest_range(config.warmup_bars)
        test = bars.slice(window.start, len(window))
        test_from = times[plan.test.start]
        say("trading", plan.fold, n)
        fold = f"fold {plan.fold + 1}"
        run = run_backtest(
            test,
            replace(config, balance=strategy.balance),
            regime=regime,
            signal=signal,
            label=fold,
            risk_state=strategy.risk_state,
            path=path,
        )
        say("SMC-only", plan.fold, n)
        base = run_smc_only(
            test,
            replace(config, balance=smc.balance),
            regime=regime,
            path=path,
            label=f"{fold} SMC-only",
            risk_state=smc.risk_state,
        )
        say("random", plan.fold, n)
        coin = run_random(
            test,
            replace(config, balance=rnd.balance),
            regime=regime,
            path=path,
            label=f"{fold} random",
            risk_state=rnd.risk_state,
        )
        say("fresh accounts", plan.fold, n)
        fresh = {  # the same fold on its own account: the start balance and fresh risk counters
            "strategy": run
            if plan.fold == 0
            else run_backtest(test, config, regime=regime, signal=signal, label=f"{fold} fresh", path=path),
            "smc_only": base
            if plan.fold == 0
            else run_smc_only(test, config, regime=regime, path=path, label=f"{fold} SMC-only fresh"),
            "random": coin
            if plan.fold == 0
            else run_random(test, config, regime=regime, path=path, label=f"{fold} random fresh"),
            "buy_and_hold": run_buy_and_hold(test, config, path=path),
        }
        strategy.add(run)
        smc.add(base)
        rnd.add(coin)
        tested.append(test)
        folds.append(
            FoldOutcome(
                plan,
                times[plan.train.start],
                times[plan.train.stop - 1],
                test_from,
                times[plan.test.stop - 1],
                report.version,
                str(bundle.metadata.get("data", {}).get("to", "")),
                report.signal.get("auc"),
                _test_auc(bundle, test, test_from),
                run,
                base,
                coin,
                fresh,
            )
        )
        say("done", plan.fold + 1, n)
    last = plans[-1].test.stop
    return WalkForwardResult(
        train_bars,
        test_bars,
        step or test_bars,
        folds,
        strategy,
        smc,
        bars.height - last,
        rnd,
        buy_and_hold_chained(tested, config, path=path),
    )


def parse_spec(text: str) -> tuple[int, int, int | None]:
    """'6000:1500' or '6000:1500:750' -> (train, test, step)."""
    parts = text.split(":")
    if len(parts) not in (2, 3) or not all(p.strip().isdigit() for p in parts):
        raise ValueError(f"--walk-forward wants TRAIN:TEST[:STEP] in bars, e.g. 6000:1500 (got {text!r})")
    nums = [int(p) for p in parts]
    return nums[0], nums[1], nums[2] if len(nums) == 3 else None
