"""Will a risk change act? Said where the trader makes it (/risk, the approval card).

Risk per trade is one of three limits on the lot: the half-Kelly fraction of the recent trades, the
account's lot band (MIN_LOT..MAX_LOT in .env) and free margin. Raising the percentage does nothing
visible when the band's MAX_LOT or half-Kelly already holds the lot lower; these lines say which rule
acts first and what the trader would have to change.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from handlers.fmt import usd
from trading.risk.modes import RiskLimits
from trading.risk.sizing import kelly_estimate

if TYPE_CHECKING:
    from trading.analysis import MarketAnalysis
    from trading.engine import TradingEngine

TYPICAL_STOP = 10.0  # $ of gold price: an M15 SMC stop is a few dollars to about $15 away


def lot_for(balance: float, pct: float, stop_distance: float, contract_size: float) -> float:
    """The lot that risks `pct` % of the balance at a stop `stop_distance` away (before any cap)."""
    return balance * pct / 100 / (contract_size * stop_distance) if stop_distance > 0 else 0.0


def percent_effect(
    pct: float,
    limits: RiskLimits,
    balance: float | None,
    *,
    stop_distance: float | None,
    recent_profits: Sequence[float],
    contract_size: float = 100.0,
    prior_payoff: float = 2.0,
    stop_label: str = "the last setup's stop",
) -> list[str]:
    """Lines that say why a risk per trade of `pct` % will (not) show in the lots; [] when it simply acts."""
    if not balance or balance <= 0:
        return []
    notes: list[str] = []
    kelly = kelly_estimate(list(recent_profits), prior_payoff)
    kelly_pct = kelly.fraction * 100
    if kelly_pct < pct:
        notes.append(
            f"Half-Kelly on the last {kelly.trades} trades allows {kelly_pct:.2f}% now, so sizing "
            f"uses that until the results improve; {pct:g}% is the ceiling"
        )
    # the stop distance above which MAX_LOT no longer caps the lot at this percentage
    wanted_money = balance * pct / 100
    free_stop = wanted_money / (contract_size * limits.max_lot)
    if stop_distance and stop_distance > 0:
        wanted = lot_for(balance, pct, stop_distance, contract_size)
        if wanted > limits.max_lot + 1e-9:
            at_cap = limits.max_lot * contract_size * stop_distance / balance * 100
            notes.append(
                f"Lots are capped at {limits.max_lot:g} by the lot band (MAX_LOT in .env): with "
                f"{stop_label} {stop_distance:.2f} away, {pct:g}% would be {wanted:.2f} lot; "
                f"{limits.max_lot:g} lot risks {at_cap:.2f}%"
            )
    elif free_stop > TYPICAL_STOP:
        notes.append(
            f"Lots are capped at {limits.max_lot:g} by the lot band (MAX_LOT in .env): {pct:g}% "
            f"({usd(wanted_money)}) is reached only with a stop at least {free_stop:.2f} away"
        )
    return notes


def stop_distance_of(analysis: MarketAnalysis | None) -> tuple[float | None, str]:
    """A representative stop distance: the last setup's, else one ATR (an SMC stop is about that far);
    nothing before the first analysis."""
    if analysis is None:
        return None, ""
    setup = analysis.setup
    if setup is not None and abs(float(setup.entry) - float(setup.stop_loss)) > 0:
        return abs(float(setup.entry) - float(setup.stop_loss)), "the last setup's stop"
    atr = float(analysis.atr or 0.0)
    return (atr, "a stop one ATR") if atr > 0 else (None, "")


def risk_notes(new_pct: float, engine: TradingEngine) -> list[str]:
    """`percent_effect` for the engine as it is now (balance, limits, last setup, recent results)."""
    snap = engine.snapshot()
    balance = snap.account.balance if snap.account else snap.risk.day_start_balance
    distance, label = stop_distance_of(snap.analysis)
    return percent_effect(
        new_pct,
        snap.limits,
        balance,
        stop_distance=distance,
        stop_label=label,
        recent_profits=list(engine.recent_profits),
        contract_size=float(engine.spec.contract_size or 100.0),
    )
