"""The trades the engine would take: SMC setups that pass the entry gates which do not use the model.

The rows of the meta-model are these setups, found with the engine's own code (`trading.analyzer`
builds the per-bar picture, `trading.gates` judges it), so training sees what live trading sees.
Gates that depend on the account rather than on the bar (risk mode, cooldown, open positions, lot
size) are left out: they decide *whether* the account can trade, not whether the setup is good.
Each setup is then labelled by its own stop, take-profit and the engine's hard time limit
(`models.labels.triple_barrier`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import polars as pl

from models.labels import BarrierOutcome, triple_barrier
from trading.analyzer import AnalysisFrame
from trading.gates import GATES, EntryContext, NewsStatus
from trading.parameters import StrategyParams
from trading.risk.modes import ModeDecision, RiskMode

# gates judged on the bar alone (account-state gates and the ML gates are left out)
BAR_GATES = (
    "flash_crash_guard",
    "session",
    "news_blackout",
    "smc_setup",
    "market_quality",
    "confirmation",
    "pullback",
    "h1_bias",
    "hours_9_21",
    "spread_limit",
    "regime_sleep",
)
POINT = 0.01  # XAUUSD price units per spread point
BARS_PER_HOUR = 4


def time_limit_bars(params: StrategyParams) -> int:
    """The engine's hard time limit (`time_hard_hours`) in M15 bars."""
    return max(1, round(params.time_hard_hours * BARS_PER_HOUR))


@dataclass(frozen=True)
class EngineSetups:
    """One row per setup bar: where, which side, the engine's levels, whether the bar gates pass, the outcome."""

    frame: pl.DataFrame  # bar_index, time, side, entry, stop, target, risk, reward, risk_reward, confidence,
    #                      fvg, spread_price, eligible, blocked_by
    outcome: BarrierOutcome
    horizon: int

    @property
    def eligible(self) -> np.ndarray:
        return self.frame["eligible"].to_numpy()


def find_setups(
    bars: pl.DataFrame, params: StrategyParams | None = None, news: NewsStatus | None = None
) -> pl.DataFrame:
    """Every bar with an SMC setup, with its levels and whether the bar-level gates would let it through."""
    params = params or StrategyParams()
    frame = AnalysisFrame.build(bars, with_h1_bias=params.gate_enabled("h1_bias"))
    mode = ModeDecision(RiskMode.NORMAL, "dataset")
    gates = [(n, GATES[n]) for n in BAR_GATES if params.gate_enabled(n)]
    rows: dict[str, list] = {
        k: []
        for k in (
            "bar_index",
            "side",
            "entry",
            "stop",
            "target",
            "risk_reward",
            "confidence",
            "fvg",
            "spread_points",
            "eligible",
            "blocked_by",
        )
    }
    prev = None
    for i in range(len(frame)):
        setup = frame.setup_at(i)
        if setup is not None:
            analysis = frame.at(i, prev)
            ctx = EntryContext(
                now=analysis.bar_time + timedelta(minutes=15),
                analysis=analysis,
                params=params,
                mode=mode,
                paused=False,
                open_positions=0,
                max_positions=1,
                last_entry_time=None,
                lot=None,
                confidence_threshold=analysis.quality.threshold,
                news=news,
            )
            block = next((name for name, gate in gates if gate(ctx).blocked), "")
            rows["bar_index"].append(i)
            rows["side"].append(setup.side.sign)
            rows["entry"].append(setup.entry)
            rows["stop"].append(setup.stop_loss)
            rows["target"].append(setup.take_profit)
            rows["risk_reward"].append(setup.risk_reward)
            rows["confidence"].append(setup.confidence)
            rows["fvg"].append(1 if setup.kind == "FVG" else 0)
            rows["spread_points"].append(int(analysis.spread_points))
            rows["eligible"].append(block == "")
            rows["blocked_by"].append(block)
        prev = setup
    schema = {
        "bar_index": pl.Int64,
        "side": pl.Int8,
        "entry": pl.Float64,
        "stop": pl.Float64,
        "target": pl.Float64,
        "risk_reward": pl.Float64,
        "confidence": pl.Float64,
        "fvg": pl.Int8,
        "spread_points": pl.Int64,
        "eligible": pl.Boolean,
        "blocked_by": pl.String,
    }
    out = pl.DataFrame(rows, schema=schema)
    return out.with_columns(
        time=bars["time"].gather(out["bar_index"]),
        risk=(pl.col("entry") - pl.col("stop")).abs(),
        reward=(pl.col("target") - pl.col("entry")).abs(),
        spread_price=pl.col("spread_points").cast(pl.Float64) * POINT,
    )


def label_setups(bars: pl.DataFrame, setups: pl.DataFrame, horizon: int) -> BarrierOutcome:
    """Triple-barrier outcome of every setup row (stop, take-profit, `horizon` bars)."""
    spread = bars["spread"].cast(pl.Float64).to_numpy() * POINT
    return triple_barrier(
        bars["high"].to_numpy(),
        bars["low"].to_numpy(),
        bars["close"].to_numpy(),
        spread,
        setups["bar_index"].to_numpy(),
        setups["side"].to_numpy(),
        setups["stop"].to_numpy(),
        setups["target"].to_numpy(),
        horizon,
    )


def engine_setups(bars: pl.DataFrame, params: StrategyParams | None = None) -> EngineSetups:
    """Setups, their bar-gate verdicts and their triple-barrier outcomes under the engine's exits."""
    params = params or StrategyParams()
    setups = find_setups(bars, params)
    horizon = time_limit_bars(params)
    return EngineSetups(setups, label_setups(bars, setups, horizon), horizon)
