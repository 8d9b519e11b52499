"""Forward statistics of a strategy and of a challenger against live: pure functions on closed trades.

Used by the bot (`/shadow`, the promotion check) and usable by research: no I/O, no Telegram. Every
figure is computed from `Outcome`s (close time, net profit, money risked at entry), so live trades
from the journal and a challenger's paper trades are measured by the same code. The difference to
live is paired by WIB day (both strategies saw the same market that day) and judged by a bootstrap
of the daily differences with a fixed seed, so the same trades always give the same verdict.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np

from trading.timezones import wib_date

BOOTSTRAP_SEED = 20_261_207
BOOTSTRAP_SAMPLES = 4_000
T_95 = 1.96  # normal quantile of a two-sided 95 % interval (the R expectancy's CI)


@dataclass(frozen=True, slots=True)
class Outcome:
    """One closed trade as the statistics see it. `risk` is the money at risk at entry (0: unknown)."""

    close_time: datetime
    profit: float
    risk: float = 0.0

    @property
    def r(self) -> float | None:
        return self.profit / self.risk if self.risk > 0 else None


@dataclass(frozen=True, slots=True)
class StrategyStats:
    trades: int
    wins: int
    win_rate: float | None
    profit_factor: float | None  # None: no losing trade (or no trade)
    net: float
    max_drawdown: float  # money, peak-to-trough of closed-trade equity
    max_drawdown_pct: float  # of the peak equity
    expectancy_r: float | None
    expectancy_r_ci: tuple[float, float] | None  # 95 %, None under 2 trades with a known risk


@dataclass(frozen=True, slots=True)
class PairedDifference:
    """Challenger minus live, per WIB day both were running."""

    days: int
    mean_per_day: float
    ci: tuple[float, float] | None  # 95 % bootstrap interval of the mean daily difference
    p_better: float | None  # bootstrap share of resampled means <= 0: small = the challenger is better
    strength: str  # "strong", "moderate", "weak", "none", or "too few days"


def strategy_stats(trades: Sequence[Outcome], start_balance: float) -> StrategyStats:
    profits = np.array([t.profit for t in trades], dtype=float)
    wins = int((profits > 0).sum())
    gross_win = float(profits[profits > 0].sum())
    gross_loss = float(-profits[profits < 0].sum())
    dd, dd_pct = max_drawdown(profits, start_balance)
    rs = np.array([r for t in trades if (r := t.r) is not None], dtype=float)
    return StrategyStats(
        trades=len(trades),
        wins=wins,
        win_rate=wins / len(trades) if trades else None,
        profit_factor=gross_win / gross_loss if gross_loss > 0 else None,
        net=round(float(profits.sum()), 2),
        max_drawdown=round(dd, 2),
        max_drawdown_pct=dd_pct,
        expectancy_r=float(rs.mean()) if rs.size else None,
        expectancy_r_ci=mean_ci(rs),
    )


def max_drawdown(profits: np.ndarray, start_balance: float) -> tuple[float, float]:
    """Largest peak-to-trough fall of balance over the closed trades, in money and % of that peak."""
    if profits.size == 0:
        return 0.0, 0.0
    equity = start_balance + np.concatenate([[0.0], np.cumsum(profits)])
    peaks = np.maximum.accumulate(equity)
    falls = peaks - equity
    i = int(falls.argmax())
    return float(falls[i]), float(falls[i] / peaks[i] * 100) if peaks[i] > 0 else 0.0


def mean_ci(values: np.ndarray) -> tuple[float, float] | None:
    """95 % normal-approximation interval of the mean; None for fewer than 2 values."""
    if values.size < 2:
        return None
    half = T_95 * float(values.std(ddof=1)) / math.sqrt(values.size)
    mean = float(values.mean())
    return mean - half, mean + half


def daily_pnl(trades: Iterable[Outcome]) -> dict[date, float]:
    out: dict[date, float] = {}
    for t in trades:
        day = wib_date(t.close_time)
        out[day] = out.get(day, 0.0) + t.profit
    return out


def paired_by_day(
    challenger: Sequence[Outcome],
    live: Sequence[Outcome],
    days: Sequence[date],
    seed: int = BOOTSTRAP_SEED,
    samples: int = BOOTSTRAP_SAMPLES,
) -> PairedDifference:
    """Challenger minus live on each of `days` (a day without trades counts 0 for that side)."""
    ours, theirs = daily_pnl(challenger), daily_pnl(live)
    diffs = np.array([ours.get(d, 0.0) - theirs.get(d, 0.0) for d in days], dtype=float)
    return judge_differences(diffs, seed, samples)


def judge_differences(
    diffs: np.ndarray, seed: int = BOOTSTRAP_SEED, samples: int = BOOTSTRAP_SAMPLES
) -> PairedDifference:
    if diffs.size < 2:
        return PairedDifference(
            int(diffs.size), float(diffs.mean()) if diffs.size else 0.0, None, None, "too few days"
        )
    rng = np.random.default_rng(seed)
    means = diffs[rng.integers(0, diffs.size, size=(samples, diffs.size))].mean(axis=1)
    low, high = (float(x) for x in np.percentile(means, [2.5, 97.5]))
    p_better = float((means <= 0).mean())
    return PairedDifference(
        int(diffs.size), float(diffs.mean()), (low, high), p_better, strength_of(p_better)
    )


def strength_of(p_better: float) -> str:
    """Words for how sure the bootstrap is that the challenger is better (or worse: 1 - p)."""
    p = min(p_better, 1 - p_better)
    if p <= 0.01:
        return "strong"
    if p <= 0.05:
        return "moderate"
    if p <= 0.20:
        return "weak"
    return "none"


def trading_days(first: date, last: date, trades: Iterable[Outcome] = ()) -> list[date]:
    """Monday to Friday from first to last, plus any other day a trade closed on (WIB dates: the
    market's early Saturday hours). A day without trades counts 0 for that side."""
    span = [date.fromordinal(first.toordinal() + k) for k in range(max((last - first).days, -1) + 1)]
    traded = {wib_date(t.close_time) for t in trades}
    return sorted({d for d in span if d.weekday() < 5} | {d for d in traded if first <= d <= last})


@dataclass(frozen=True, slots=True)
class PromotionRule:
    """When a challenger has earned a proposal to replace live (defaults documented in README)."""

    min_trades: int = 30  # the challenger's own closed trades
    min_days: int = 10  # trading days paired with live
    max_p: float = 0.05  # bootstrap P(challenger not better than live per day)


def promotion_reason(stats: StrategyStats, diff: PairedDifference, rule: PromotionRule) -> str | None:
    """Why the challenger should replace live, or None while it has not earned it."""
    if stats.trades < rule.min_trades or diff.days < rule.min_days:
        return None
    if diff.p_better is None or diff.ci is None or diff.p_better > rule.max_p or diff.mean_per_day <= 0:
        return None
    if stats.net <= 0:
        return None  # better than a losing live strategy is not yet a reason to trade it
    return (
        f"{stats.trades} trades over {diff.days} days, {diff.mean_per_day:+.2f}/day better than live "
        f"(95% {diff.ci[0]:+.2f}…{diff.ci[1]:+.2f}, P(not better) {diff.p_better:.3f}, {diff.strength})"
    )
