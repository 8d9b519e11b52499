"""Daily returns and the Sharpe ratio: one definition, used by the reports, the search and the statistics."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from research import overfitting
from trading.backtest import compute_metrics
from trading.returns import annual_sharpe, annual_sortino, daily_returns, sharpe

T0 = datetime(2025, 3, 3, 9, tzinfo=UTC)


def test_daily_returns_take_each_days_last_equity() -> None:
    times = [T0, T0 + timedelta(hours=3), T0 + timedelta(days=1), T0 + timedelta(days=2, hours=1)]
    equity = np.array([100.0, 110.0, 99.0, 108.9])
    assert daily_returns(times, equity) == pytest.approx([99 / 110 - 1, 108.9 / 99 - 1])
    assert daily_returns(times[:1], equity[:1]).size == 0


def test_sharpe_by_hand_and_its_annual_and_downside_forms() -> None:
    r = np.array([0.01, -0.02, 0.03, 0.0])
    by_hand = r.mean() / r.std(ddof=1)
    assert sharpe(r) == pytest.approx(by_hand)
    assert annual_sharpe(r) == pytest.approx(by_hand * math.sqrt(252))
    assert annual_sortino(r) == pytest.approx(r.mean() / 0.02 * math.sqrt(252))
    assert sharpe(np.array([0.01])) == 0.0 == sharpe(np.zeros(5)) == annual_sortino(np.array([0.01, 0.02]))
    assert overfitting.sharpe is sharpe  # the statistics use the same definition


def test_the_report_metrics_use_it() -> None:
    times = [T0 + timedelta(days=k) for k in range(6)]
    equity = np.array([5000.0, 5050.0, 4990.0, 5100.0, 5080.0, 5200.0])
    m = compute_metrics([], [], times, equity, 5000.0)
    assert m["sharpe"] == pytest.approx(round(annual_sharpe(daily_returns(times, equity)), 4))
    assert m["sortino"] == pytest.approx(round(annual_sortino(daily_returns(times, equity)), 4))
