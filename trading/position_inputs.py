"""What the position manager and the exits read of an open position that only a new analysis, risk
state, balance or stop can change: computed once a bar (the engine caches it), read on every tick."""

from __future__ import annotations

from dataclasses import dataclass

from trading.analysis import MarketAnalysis
from trading.domain import Position, SymbolSpec
from trading.parameters import StrategyParams
from trading.risk.modes import RiskLimits, RiskState, limit_use


@dataclass(frozen=True, slots=True)
class PositionInputs:
    atr: float  # the bar's ATR (a fallback of 6 minimum stop distances before the first analysis)
    unit: float  # ATR in money for the position's volume
    ml_against: float | None  # the model's probability of the opposite side
    regime_dangerous: bool
    rsi: float | None
    closes: tuple[float, ...]  # the last bars' closes, oldest first
    last_bar_range: float
    tp_profit: float | None  # the profit at the take-profit (None without one)
    daily_loss: float
    daily_limit: float


def position_inputs(
    pos: Position,
    a: MarketAnalysis | None,
    state: RiskState,
    balance: float,
    params: StrategyParams,
    limits: RiskLimits,
    spec: SymbolSpec,
) -> PositionInputs:
    atr = a.atr if a and a.atr > 0 else params.min_sl_distance * 6
    unit = atr * spec.money_per_price_unit(pos.volume)
    ml_against = a.ml.prob(pos.side.opposite) if a and a.ml else None
    tp_profit = abs(pos.tp - pos.open_price) * spec.money_per_price_unit(pos.volume) if pos.tp else None
    use = limit_use(state, limits, balance)
    return PositionInputs(
        atr=atr,
        unit=unit,
        ml_against=ml_against,
        regime_dangerous=bool(a and a.regime.dangerous),
        rsi=a.indicators.get("rsi_14") if a else None,
        closes=a.recent_closes if a else (),
        last_bar_range=float(a.indicators.get("bar_range", 0.0)) if a else 0.0,
        tp_profit=tp_profit,
        daily_loss=use.daily_loss,
        daily_limit=use.daily_limit,
    )
