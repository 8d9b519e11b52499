"""Lot sizing: half-Kelly risk fraction capped by the risk per trade, turned into lots from the
stop distance with the symbol's real tick value (the original's pip value was 10x off), then the
regime, session and mode factors, the account's lot band, the symbol's step and free margin."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from trading.domain import SymbolSpec
from trading.risk.modes import RiskLimits, RiskMode

KELLY_CAP = 0.25
MIN_TRADES_FOR_KELLY = 20


@dataclass(frozen=True, slots=True)
class KellyEstimate:
    win_rate: float
    payoff: float  # average win / average loss
    fraction: float  # half-Kelly, clamped to [0, KELLY_CAP / 2]
    trades: int


def kelly_estimate(recent_profits: Sequence[float], prior_payoff: float = 2.0) -> KellyEstimate:
    """Half-Kelly from the last trades; with fewer than 20, a neutral prior (p=0.5, b=the setup's R)."""
    trades = [p for p in recent_profits[-100:] if p != 0]
    if len(trades) < MIN_TRADES_FOR_KELLY:
        p, b = 0.5, max(prior_payoff, 1e-9)
    else:
        wins = [t for t in trades if t > 0]
        losses = [-t for t in trades if t < 0]
        p = len(wins) / len(trades)
        avg_win = sum(wins) / len(wins) if wins else 0.0
        avg_loss = sum(losses) / len(losses) if losses else 0.0
        b = avg_win / avg_loss if avg_loss > 0 else (10.0 if avg_win > 0 else 1.0)
    f = (p * b - (1 - p)) / b if b > 0 else 0.0  # only losses in the window: no edge to size up
    f = min(max(f, 0.0), KELLY_CAP) / 2
    return KellyEstimate(win_rate=p, payoff=b, fraction=f, trades=len(trades))


@dataclass(frozen=True, slots=True)
class LotSize:
    lots: float
    risk_pct: float  # percent of balance actually at risk at the stop
    risk_money: float
    steps: tuple[str, ...]  # how the number was reached, for the decision log

    @property
    def ok(self) -> bool:
        return self.lots > 0


def size_position(
    *,
    balance: float,
    free_margin: float,
    price: float,
    stop_distance: float,
    spec: SymbolSpec,
    limits: RiskLimits,
    mode: RiskMode,
    kelly: KellyEstimate,
    regime_multiplier: float = 1.0,
    session_multiplier: float = 1.0,
    leverage: int = 100,
) -> LotSize:
    steps: list[str] = []
    if balance <= 0 or stop_distance <= 0 or price <= 0:
        return LotSize(0.0, 0.0, 0.0, ("no balance, price or stop distance",))
    if not mode.allows_entries:
        return LotSize(0.0, 0.0, 0.0, (f"mode {mode} allows no entries",))
    risk_pct = min(kelly.fraction * 100 * max(regime_multiplier, 0.0), limits.risk_per_trade_pct)
    steps.append(
        f"half-Kelly {kelly.fraction * 100:.2f}% (p={kelly.win_rate:.2f}, b={kelly.payoff:.2f}) × regime "
        f"{regime_multiplier:g} capped at {limits.risk_per_trade_pct:g}% → {risk_pct:.2f}%"
    )
    if regime_multiplier <= 0:
        return LotSize(0.0, 0.0, 0.0, (*steps, "the regime allows no risk"))
    money_per_lot = spec.money_per_price_unit(1.0) * stop_distance
    raw = balance * risk_pct / 100 / money_per_lot
    if risk_pct <= 0:  # spec §4.4: the Kelly lot is clamped to the band, so no edge means the minimum lot
        steps.append("no edge by Kelly → the band's minimum lot")
    else:
        steps.append(f"${balance * risk_pct / 100:,.2f} at risk over {stop_distance:.2f} → {raw:.4f} lots")
    lots = min(raw, limits.max_lot)
    if session_multiplier != 1:  # golden time's 1.2 too (the original's dead code), never above the band
        lots = min(lots * session_multiplier, limits.max_lot)
        steps.append(f"session × {session_multiplier:g}")
    if mode in (RiskMode.PROTECTED, RiskMode.RECOVERY):
        lots = min(lots, limits.min_lot)
        steps.append(f"{mode} → minimum lot")
    lots = max(lots, limits.min_lot)  # the band's floor: never below the account's minimum lot
    margin_per_lot = price * spec.contract_size / max(leverage, 1)
    max_by_margin = free_margin * 0.9 / margin_per_lot if margin_per_lot > 0 else 0.0
    if lots > max_by_margin:
        lots = max_by_margin
        steps.append(f"free margin ${free_margin:,.2f} caps at {max_by_margin:.4f}")
    snapped = spec.snap_volume(lots)
    steps.append(f"snapped to step {spec.volume_step:g}: {snapped:g}")
    if snapped <= 0:
        return LotSize(0.0, 0.0, 0.0, (*steps, "below the symbol minimum"))
    risk_money = money_per_lot * snapped
    if risk_money / balance * 100 > limits.risk_per_trade_pct * 1.5:
        return LotSize(
            0.0, 0.0, 0.0, (*steps, f"minimum lot risks {risk_money / balance * 100:.2f}% > 1.5 × limit")
        )
    return LotSize(snapped, risk_money / balance * 100, risk_money, tuple(steps))


def moved_stop_refusal(
    *,
    side_sign: int,
    price: float,
    planned_sl: float,
    placed_sl: float,
    planned_lots: float,
    placed_lots: float,
    spec: SymbolSpec,
    slack: float = 0.01,
) -> str | None:
    """Why a fill must not be kept because the broker placed its stop elsewhere; None when it may.

    The lot was sized for the planned stop; a broker that moved a refused stop further away (MT5 10016)
    without cutting the volume would take a bigger loss than the risk limit allows. Both risks are
    measured from the fill price, so slippage alone never refuses a fill.
    """
    if not planned_sl or placed_sl == planned_sl:
        return None
    if not placed_sl:
        return "the broker placed no stop loss"
    planned = (price - planned_sl) * side_sign * spec.money_per_price_unit(planned_lots)
    placed = (price - placed_sl) * side_sign * spec.money_per_price_unit(placed_lots)
    if placed <= planned * (1 + slack) + 0.005:
        return None
    return (
        f"the broker placed the stop at {placed_sl:.{spec.digits}f} instead of {planned_sl:.{spec.digits}f}: "
        f"${placed:,.2f} at risk, more than the ${planned:,.2f} the lot was sized for"
    )
