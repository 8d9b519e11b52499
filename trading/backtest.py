"""Backtest: the live `TradingEngine` and the paper broker replayed over a bars file.

For each bar the replay feed's ticks along the intrabar path go to the paper broker (its SL/TP)
and to `engine.on_tick()`; at the bar close `engine.on_bar()` decides. The analysis is the same
`AnalysisFrame` the live analyzer builds, computed once for the file (it is causal row by row),
which `live_replay` checks against a replay that recomputes it from the broker's bars each bar.
"""

from __future__ import annotations

import math
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import polars as pl

from trading.analysis import MarketAnalysis
from trading.analyzer import AnalysisFrame, MarketAnalyzer, PrecomputedAnalyzer, RegimeSource, SignalSource
from trading.async_run import run_for_result
from trading.broker.feeds import ReplayFeed
from trading.broker.fills import LevelFill, slippage_summary
from trading.broker.paper import PaperBroker
from trading.domain import ClosedTrade, Side
from trading.engine import Analyzer, TradingEngine
from trading.intrabar import DEFAULT_TICKS_PER_BAR, TickPath
from trading.parameters import StrategyParams
from trading.records import MemoryRecorder, OpenedTrade
from trading.returns import annual_sharpe, annual_sortino, daily_returns
from trading.risk.modes import RiskLimits, RiskMode, RiskState, risk_state_to_dict
from trading.simulation import MarketLoop, SimClock, history_window
from trading.timing import PhaseTimer

Progress = Callable[[int, int], None]
PathFactory = Callable[[pl.DataFrame], TickPath]


@dataclass(frozen=True, slots=True)
class BacktestConfig:
    balance: float = 5_000.0
    commission_per_lot: float = 0.0
    slippage_points: int = 0
    leverage: int = 100
    ticks_per_bar: int = (
        DEFAULT_TICKS_PER_BAR  # the generated path the CLI, /backtest, walk-forward and optimize all use
    )
    warmup_bars: int = 200
    skip_idle: bool = True  # take the rest of a bar in one go when no position is open (exact; speed only)
    skip_quiet: bool = (
        True  # with positions open, take the ticks nothing acts on in one go (exact; speed only)
    )
    params: StrategyParams = field(default_factory=StrategyParams)
    limits: RiskLimits = field(default_factory=RiskLimits)


@dataclass(frozen=True, slots=True)
class HaltEvent:
    """A stretch of bars where a loss limit stopped entries: when, why, and what it kept out."""

    start: datetime  # close time of the first bar decided while STOPPED
    end: datetime | None  # close time of the first bar trading again; None: still halted at the end
    reason: str
    bars: int  # bars decided while halted
    setups_blocked: int  # of those, bars that had an SMC setup the halt kept out

    @property
    def limit_name(self) -> str:
        """The limit that halted, as the user reads it ("daily-loss limit"), else the reason as given."""
        for kind in ("daily", "total"):
            if self.reason.startswith(kind):
                return f"{kind}-loss limit"
        return self.reason

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": str(self.start),
            "end": None if self.end is None else str(self.end),
            "reason": self.reason,
            "bars": self.bars,
            "setups_blocked": self.setups_blocked,
        }


@dataclass(slots=True)
class BacktestResult:
    bars: int
    seconds: float
    start_balance: float
    trades: list[ClosedTrade]
    opened: list[OpenedTrade]
    equity_times: list[datetime]
    equity: np.ndarray
    gate_blocks: Counter[str]
    decisions: int
    label: str = "strategy"
    intrabar_mode: str = "generated"  # generated / M1 detail / real ticks (trading.intrabar)
    detail_share: float = 0.0  # share of the traded bars that had real detail
    ticks: int = 0  # ticks stepped one by one (not those taken in one go: skip_idle, skip_quiet)
    ticks_skipped: int = 0  # ticks of the path taken in one go, where no rule could act (exact)
    halts: list[HaltEvent] = field(default_factory=list)  # loss-limit halts (risk mode STOPPED), in order
    risk_state: RiskState | None = None  # the engine's risk counters at the end, to carry into a next run
    fills: dict[str, Any] = field(
        default_factory=dict
    )  # SL/TP fills against their levels (fills.slippage_summary)
    sl_moves: Counter[str] = field(default_factory=Counter)  # stop moves by the rule that made them
    level_fills: list[LevelFill] = field(
        default_factory=list
    )  # every SL/TP fill, to sum over runs (run_checks)
    point: float = 0.01  # the symbol's point, the unit of the fills' distances
    balance: np.ndarray = field(
        default_factory=lambda: np.zeros(0)
    )  # the account balance at each equity time

    def metrics(self) -> dict[str, Any]:
        return compute_metrics(self.trades, self.opened, self.equity_times, self.equity, self.start_balance)


class _JitteryWall:
    """A wall clock for `paced_replay`: each look moves it on by a pseudo-random step (a loaded machine)."""

    def __init__(self, seed: int, mean_step: float) -> None:
        self.t = 0.0
        self.rng = random.Random(seed)
        self.mean_step = mean_step

    def __call__(self) -> float:
        self.t += self.rng.expovariate(1 / self.mean_step)
        return self.t


async def replay_account(
    bars: pl.DataFrame, config: BacktestConfig, path: PathFactory | None
) -> tuple[int, ReplayFeed, PaperBroker]:
    """The warm-up length, the replay feed of `bars` on `path` and a connected paper account with the
    config's balance, costs and leverage: what every run over history (strategy or baseline) trades on."""
    warmup = min(config.warmup_bars, max(bars.height - 1, 0))
    feed = ReplayFeed(bars, speed=0, ticks_per_bar=config.ticks_per_bar, history=warmup, path=path)
    if feed.finished:
        raise ValueError("no bars to replay after the warm-up")
    broker = PaperBroker(
        feed=feed,
        balance=config.balance,
        commission_per_lot=config.commission_per_lot,
        slippage_points=config.slippage_points,
        leverage=config.leverage,
    )
    await broker.connect()
    return warmup, feed, broker


async def _drive(
    bars: pl.DataFrame,
    analyzer: Analyzer,
    config: BacktestConfig,
    *,
    live: bool,
    progress: Progress | None,
    label: str,
    path: PathFactory | None = None,
    speed: float = 0.0,
    wall_seed: int = 0,
    risk_state: RiskState | None = None,
    window: Callable[[int], pl.DataFrame] | None = None,
) -> BacktestResult:
    """The bars through `MarketLoop`, the same loop a paper replay runs: as fast as possible (speed 0)
    or paced at `speed` against a jittery simulated wall clock (`paced_replay`). `risk_state` continues
    an earlier run's risk counters. `window(bar)`: the closed bars the analyzer gets (by default the
    last 10,000 live, else the bar alone)."""
    warmup, feed, broker = await replay_account(bars, config, path)
    times: list[datetime] = bars["time"].to_list()
    clock = SimClock(times[warmup])
    recorder = MemoryRecorder(keep_decisions=False)
    blocks: Counter[str] = Counter()
    eq_times: list[datetime] = []
    equity: list[float] = []
    balance: list[float] = []
    total = bars.height - warmup
    bar_len = timedelta(minutes=15)

    halts: list[HaltEvent] = []
    halt: list[Any] | None = None  # [start, reason, bars, setups] of the halt in progress

    def decided(bar: int, _window: pl.DataFrame, decision: Any) -> None:
        nonlocal halt
        blocked = decision.blocked_by
        if blocked is not None:
            blocks[blocked] += 1
        mode, closed_at = engine.mode(), times[bar] + bar_len
        if mode.mode is RiskMode.STOPPED:
            halt = halt or [closed_at, mode.reason, 0, 0]
            halt[2] += 1
            halt[3] += engine.analysis is not None and engine.analysis.setup is not None
        elif halt is not None:
            halts.append(HaltEvent(halt[0], closed_at, halt[1], halt[2], halt[3]))
            halt = None
        eq_times.append(times[bar] + bar_len)
        equity.append(broker.equity())
        balance.append(broker.balance)
        if progress is not None and (bar - warmup) % 500 == 0:
            progress(bar - warmup, total)

    engine = TradingEngine(
        broker,
        analyzer,
        params=config.params,
        limits=config.limits,
        recorder=recorder,
        clock=clock,
        full_decisions=recorder.keep_decisions,
        timer=PhaseTimer(enabled=False),  # (wall-clock phases of a run in market time: nobody reads them)
    )
    await engine.start({"risk": risk_state_to_dict(risk_state)} if risk_state is not None else None)
    if window is None:
        window = history_window(bars, 10_000) if live else (lambda b: bars.slice(b, 1))
    if speed > 0:
        wall = _JitteryWall(wall_seed, mean_step=1.0)  # the 1-second job, late or early as a busy loop is
        loop = MarketLoop(
            feed,
            broker,
            engine,
            clock,
            window,
            on_decision=decided,
            speed=speed,
            wall=wall,
            skip_idle=config.skip_idle,
            skip_quiet=config.skip_quiet,
        )
        while not loop.finished:
            await loop.run_due()
    else:
        loop = MarketLoop(
            feed,
            broker,
            engine,
            clock,
            window,
            on_decision=decided,
            skip_idle=config.skip_idle,
            skip_quiet=config.skip_quiet,
        )
        await loop.run()
    # positions still open when the data ends are closed at the last price, so that every opened trade
    # is in the metrics and the final equity is the start balance plus the trades' profits
    for pos in list(engine.positions.values()):
        await engine._close(pos, "end_of_data", "the data ended", by="backtest")
    eq_times.append(times[-1] + bar_len)
    equity.append(broker.equity())
    balance.append(broker.balance)
    if halt is not None:
        halts.append(HaltEvent(halt[0], None, halt[1], halt[2], halt[3]))
    if progress is not None:
        progress(total, total)
    return BacktestResult(
        bars=total,
        seconds=0.0,
        start_balance=config.balance,
        trades=recorder.closed,
        opened=recorder.opened,
        equity_times=eq_times,
        equity=np.asarray(equity, dtype=float),
        gate_blocks=blocks,
        decisions=loop.decisions,
        label=label,
        intrabar_mode=feed.mode,
        detail_share=feed.path.detail_share(),
        ticks=loop.ticks,
        ticks_skipped=loop.skipped,
        halts=halts,
        risk_state=engine.state,
        fills=slippage_summary(broker.level_fills, broker.spec.point),
        sl_moves=Counter(change[4].split(":", 1)[0] for change in recorder.sl_changes),
        level_fills=list(broker.level_fills),
        point=broker.spec.point,
        balance=np.asarray(balance, dtype=float),
    )


def run_backtest(
    bars: pl.DataFrame,
    config: BacktestConfig | None = None,
    *,
    regime: RegimeSource | None = None,
    signal: SignalSource | None = None,
    frame: AnalysisFrame | None = None,
    analyzer_wrapper: Callable[[Analyzer], Analyzer] | None = None,
    progress: Progress | None = None,
    label: str = "strategy",
    path: PathFactory | None = None,
    risk_state: RiskState | None = None,
) -> BacktestResult:
    """Replay `bars` (BAR_SCHEMA, UTC) through the engine with the precomputed analysis.

    `risk_state` continues an earlier run's risk counters (a previous result's `risk_state`): the
    total-loss reference, a total stop and the day's counters carry over as a live restart keeps them."""
    config = config or BacktestConfig()
    t0 = time.perf_counter()
    frame = frame or AnalysisFrame.build(
        bars,
        regime,
        signal,
        with_h1_bias=config.params.gate_enabled("h1_bias"),
        flash_crash_pct=config.params.flash_crash_pct,
        flash_crash_bars=config.params.flash_crash_bars,
    )
    precomputed = PrecomputedAnalyzer(frame)
    analyzer: Analyzer = precomputed
    if analyzer_wrapper is not None:
        analyzer = analyzer_wrapper(analyzer)
    result = run_for_result(
        _drive(
            bars,
            analyzer,
            config,
            live=False,
            progress=progress,
            label=label,
            path=path,
            risk_state=risk_state,
            window=precomputed.window(bars),
        )
    )
    result.seconds = time.perf_counter() - t0
    return result


def live_replay(
    bars: pl.DataFrame,
    config: BacktestConfig | None = None,
    *,
    regime: RegimeSource | None = None,
    signal: SignalSource | None = None,
    path: PathFactory | None = None,
) -> BacktestResult:
    """The same bars through the live analyzer, which recomputes from the broker feed's closed bars."""
    config = config or BacktestConfig()
    t0 = time.perf_counter()
    analyzer = MarketAnalyzer(
        regime,
        signal,
        history=bars.height,
        with_h1_bias=config.params.gate_enabled("h1_bias"),
        flash_crash_pct=config.params.flash_crash_pct,
        flash_crash_bars=config.params.flash_crash_bars,
    )
    result = run_for_result(
        _drive(bars, analyzer, config, live=True, progress=None, label="live replay", path=path)
    )
    result.seconds = time.perf_counter() - t0
    return result


def paced_replay(
    bars: pl.DataFrame,
    config: BacktestConfig | None = None,
    *,
    speed: float,
    wall_seed: int = 0,
    regime: RegimeSource | None = None,
    signal: SignalSource | None = None,
    path: PathFactory | None = None,
) -> BacktestResult:
    """The bars as a paper replay at `speed` runs them: the market loop called by a 1-second job whose
    wall clock jitters (`wall_seed`). Its trades must equal `run_backtest`'s at any speed."""
    config = config or BacktestConfig()
    t0 = time.perf_counter()
    frame = AnalysisFrame.build(
        bars,
        regime,
        signal,
        with_h1_bias=config.params.gate_enabled("h1_bias"),
        flash_crash_pct=config.params.flash_crash_pct,
        flash_crash_bars=config.params.flash_crash_bars,
    )
    precomputed = PrecomputedAnalyzer(frame)
    result = run_for_result(
        _drive(
            bars,
            precomputed,
            config,
            live=False,
            progress=None,
            label=f"replay at {speed:g}x",
            path=path,
            speed=speed,
            wall_seed=wall_seed,
            window=precomputed.window(bars),
        )
    )
    result.seconds = time.perf_counter() - t0
    return result


# ---------------------------------------------------------------------------------------- baselines


class RandomSide:
    """Baseline: on every bar where the strategy has a setup, a coin decides the side; the stop and
    target keep their distances, mirrored. Same gates, exits and sizing."""

    def __init__(self, inner: Analyzer, seed: int = 7) -> None:
        self.inner = inner
        self.rng = random.Random(seed)
        self._prev: Side | None = None

    def __call__(self, bars: pl.DataFrame) -> MarketAnalysis:
        a = self.inner(bars)
        setup = a.setup
        prev, self._prev = self._prev, None
        if setup is None:
            return replace(a, prev_setup_side=prev)
        side = Side.BUY if self.rng.random() < 0.5 else Side.SELL
        if side is not setup.side:
            risk, reward = abs(setup.entry - setup.stop_loss), abs(setup.take_profit - setup.entry)
            setup = replace(
                setup,
                side=side,
                stop_loss=round(setup.entry - side.sign * risk, 2),  # type: ignore[type-var]
                take_profit=round(setup.entry + side.sign * reward, 2),
            )
        self._prev = side
        return replace(a, setup=setup, prev_setup_side=prev)


# ---------------------------------------------------------------------------------------- metrics


def _drawdown(equity: np.ndarray) -> tuple[float, np.ndarray]:
    if equity.size == 0:
        return 0.0, equity
    peak = np.maximum.accumulate(equity)
    dd = (peak - equity) / np.where(peak > 0, peak, 1.0)
    return float(dd.max() * 100), dd


def compute_metrics(
    trades: list[ClosedTrade],
    opened: list[OpenedTrade],
    times: list[datetime],
    equity: np.ndarray,
    start_balance: float,
) -> dict[str, Any]:
    profits = np.array([t.profit for t in trades], dtype=float)
    wins, losses = profits[profits > 0], profits[profits < 0]
    gross_win, gross_loss = float(wins.sum()), float(-losses.sum())
    max_dd, _ = _drawdown(equity)
    rets = daily_returns(times, equity)
    years = max((times[-1] - times[0]).total_seconds() / (365.25 * 86400), 1e-9) if len(times) > 1 else 1e-9
    final = float(equity[-1]) if equity.size else start_balance
    cagr = (final / start_balance) ** (1 / years) - 1 if final > 0 and start_balance > 0 else -1.0
    entry_info = {o.ticket: o.extra for o in opened}

    def grouped(key: str) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for t in trades:
            name = str(entry_info.get(t.ticket, {}).get(key, "unknown"))
            g = out.setdefault(name, {"trades": 0, "net_profit": 0.0, "wins": 0})
            g["trades"] += 1
            g["net_profit"] = round(g["net_profit"] + t.profit, 2)
            g["wins"] += t.profit > 0
        for g in out.values():
            g["win_rate"] = round(g.pop("wins") / g["trades"], 4)
        return out

    def finite(x: float) -> float | None:
        return round(x, 4) if math.isfinite(x) else None

    return {
        "trades": len(trades),
        "win_rate": round(len(wins) / len(trades), 4) if trades else 0.0,
        "profit_factor": finite(gross_win / gross_loss) if gross_loss > 0 else None,
        "expectancy": round(float(profits.mean()), 2) if trades else 0.0,
        "net_profit": round(float(profits.sum()), 2),
        "final_equity": round(final, 2),
        "max_drawdown_pct": round(max_dd, 2),
        "sharpe": finite(annual_sharpe(rets)),
        "sortino": finite(annual_sortino(rets)),
        "calmar": finite(cagr / (max_dd / 100)) if max_dd > 0 else 0.0,
        "avg_hold_minutes": round(float(np.mean([t.duration_seconds for t in trades])) / 60, 1)
        if trades
        else 0.0,
        "exit_reasons": dict(Counter(t.reason for t in trades).most_common()),
        "by_session": grouped("session"),
        "by_regime": grouped("regime"),
    }
