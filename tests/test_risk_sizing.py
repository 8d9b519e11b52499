"""Lot sizing from risk, stop distance and the symbol's real tick value."""

from __future__ import annotations

import pytest

from trading.domain import SymbolSpec
from trading.risk.modes import RiskLimits, RiskMode
from trading.risk.sizing import kelly_estimate, size_position

SPEC = SymbolSpec()


def size(**kw):
    args = dict(
        balance=10_000.0,
        free_margin=10_000.0,
        price=2650.0,
        stop_distance=15.0,
        spec=SPEC,
        limits=RiskLimits(max_lot=1.0),
        mode=RiskMode.NORMAL,
        kelly=kelly_estimate([]),
    )
    args.update(kw)
    return size_position(**args)


def test_prior_kelly_gives_full_risk_per_trade():
    k = kelly_estimate([])
    assert k.fraction == pytest.approx(0.125)  # p .5, b 2 -> f* .25 -> half .125
    lot = size()
    # 1% of 10,000 = $100 over a $15 stop at $100 per lot per $1 -> 0.0666 -> 0.06
    assert lot.lots == 0.06
    assert lot.risk_money == pytest.approx(90.0)


def test_losing_history_gives_the_minimum_lot_and_crisis_none():
    k = kelly_estimate([-10.0] * 15 + [5.0] * 10)
    assert k.fraction == 0
    lot = size(kelly=k)
    assert lot.lots == 0.01 and "no edge" in lot.steps[1]  # spec §4.4: clamped to the band's minimum
    assert not size(regime_multiplier=0.0).ok


def test_golden_time_multiplier_applies_inside_the_band():
    assert size(session_multiplier=1.2, stop_distance=30.0).lots == 0.04  # 0.0333 × 1.2 = 0.04
    assert size(session_multiplier=1.2, limits=RiskLimits()).lots == 0.02  # the band's cap still holds


def test_band_cap_regime_session_and_mode():
    assert size(limits=RiskLimits()).lots == 0.02  # small-account band 0.01-0.02
    assert size(regime_multiplier=0.5).lots == 0.06  # half-Kelly 12.5% * .5 still above 1% cap
    assert size(session_multiplier=0.5).lots == 0.03
    assert size(mode=RiskMode.PROTECTED).lots == 0.01
    assert size(mode=RiskMode.RECOVERY).lots == 0.01
    assert not size(mode=RiskMode.STOPPED).ok
    assert not size(regime_multiplier=0.0).ok


def test_free_margin_caps_lots():
    # margin per lot = 2650*100/100 = 2650; 0.9 * 100 / 2650 = 0.034
    assert size(free_margin=100.0).lots == 0.03
    assert not size(free_margin=10.0).ok


def test_minimum_lot_too_risky_for_tiny_account():
    lot = size(balance=500.0, free_margin=500.0, stop_distance=15.0)
    # 0.01 lot risks $15 = 3% of 500 > 1.5 x 1%
    assert not lot.ok
    assert "1.5" in lot.steps[-1]


def test_bad_inputs_give_zero():
    assert not size(stop_distance=0).ok
    assert not size(balance=0).ok
