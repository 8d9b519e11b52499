"""Strategy minus baseline with a 95 % interval, and a verdict worded from the interval."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from research.compare import bootstrap_diff, paired_t_diff, r_multiples, wording
from trading.domain import ClosedTrade, Side
from trading.records import OpenedTrade

T0 = datetime(2025, 1, 2, tzinfo=UTC)


def _trade(ticket: int, profit: float) -> ClosedTrade:
    return ClosedTrade(ticket, "XAUUSD", Side.BUY, 0.02, 2000.0, 2001.0, T0, T0, profit, "tp")


def _opened(ticket: int, risk_money: float = 0.0, sl: float = 1995.0) -> OpenedTrade:
    return OpenedTrade(ticket, Side.BUY, 0.02, 2000.0, T0, sl, 2010.0, 0, "", risk_money=risk_money)


def test_r_multiples_use_the_sized_risk_or_else_the_stop_distance() -> None:
    trades = [_trade(1, 20.0), _trade(2, -10.0), _trade(3, 5.0)]
    opened = [_opened(1, risk_money=10.0), _opened(2), _opened(3, sl=0.0)]  # 3: no stop, no risk: left out
    assert r_multiples(trades, opened).tolist() == [2.0, -1.0]  # 2: $5 stop x 0.02 lot x 100 oz = $10


def test_the_bootstrap_is_reproducible_and_its_interval_holds_the_difference() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(0.1, 1, 200), rng.normal(0.0, 1, 150)
    d1, d2 = bootstrap_diff(a, b), bootstrap_diff(a, b)
    assert d1 == d2
    assert d1.low < d1.diff < d1.high
    assert d1.diff == pytest.approx(a.mean() - b.mean(), abs=1e-4)


def test_the_verdict_follows_the_interval() -> None:
    better = bootstrap_diff(
        np.full(50, 1.0) + np.linspace(0, 0.1, 50), np.full(50, -1.0) + np.linspace(0, 0.1, 50)
    )
    assert better.decided == "better" and wording("SMC-only", better).startswith(
        "beats SMC-only: difference +2.00"
    )
    worse = bootstrap_diff(np.linspace(-1.1, -0.9, 40), np.linspace(0.9, 1.1, 40))
    assert worse.decided == "worse" and wording("random", worse).startswith("does worse than random")
    rng = np.random.default_rng(3)
    same = bootstrap_diff(rng.normal(0, 1, 80), rng.normal(0, 1, 80))
    text = wording("SMC-only", same)
    assert same.decided == "within chance"
    assert text.startswith("does not beat SMC-only: difference ") and " R per trade, 95% CI " in text
    assert "within chance" in text


def test_too_few_trades_give_no_interval_and_say_so() -> None:
    d = bootstrap_diff(np.array([1.0]), np.array([0.5, -0.5, 1.0]))
    assert d.low is None and d.decided == "unknown" and "too few trades" in d.method
    assert "cannot be judged against SMC-only" in wording("SMC-only", d)
    none = bootstrap_diff(np.zeros(0), np.array([0.5, -0.5]))
    assert none.diff is None and "cannot be compared with random" in wording("random", none)


def test_paired_t_interval_over_folds() -> None:
    d = paired_t_diff([3.0, 4.0, 5.0], [2.0, 2.0, 2.0])  # differences 1, 2, 3: mean 2, sd 1
    assert d.diff == 2.0 and d.method == "t"
    assert d.high - d.diff == pytest.approx(4.302653 / 3**0.5, abs=1e-3)
    assert "percentage points per fold" in wording("buy-and-hold", d)
    assert paired_t_diff([1.0], [0.5]).low is None


def _run(profits: list[float], halted: bool = False):
    from types import SimpleNamespace

    trades = [_trade(k, p) for k, p in enumerate(profits)]
    opened = [_opened(k, risk_money=10.0) for k in range(len(profits))]
    equity = np.cumsum([5000.0, *profits])
    return SimpleNamespace(
        trades=trades, opened=opened, equity=equity, start_balance=5000.0, halts=[object()] if halted else []
    )


def test_fold_comparison_counts_a_halted_baseline_fold_by_fold_and_prints_in_80_columns() -> None:
    import io

    from rich.console import Console

    from research.compare import compare_folds
    from research.compare_report import print_fresh

    rng = np.random.default_rng(5)
    folds = [
        {
            "strategy": _run(list(rng.normal(1, 10, 30))),
            "smc_only": _run(list(rng.normal(0, 10, 40)), k == 1),
            "random": _run(list(rng.normal(0, 10, 25))),
            "buy_and_hold": _run([100.0 * (k - 1)]),
        }
        for k in range(3)
    ]
    fresh = compare_folds(
        folds, names={"smc_only": "SMC-only", "random": "random entries", "buy_and_hold": "buy-and-hold"}
    )
    assert [r["smc_only"]["halted"] for r in fresh["folds"]] == [False, True, False]
    assert (
        fresh["overall"]["smc_only"]["r_per_trade"]["n_baseline"] == 120
    )  # every fold counts, halted or not
    assert fresh["folds"][0]["buy_and_hold"]["return_pct"] == pytest.approx(-2.0)
    assert "r_per_trade" not in fresh["overall"]["buy_and_hold"]
    buf = io.StringIO()
    print_fresh(Console(file=buf, width=80), fresh)
    text = buf.getvalue()
    assert max(len(line) for line in text.splitlines()) <= 80 and "None" not in text
    assert "The strategy" in text and "SMC-only" in text and "*" in text
