"""Strategy against a baseline as a statistical statement: R per trade and fold returns, with a 95 % CI.

- R per trade: each trade's profit over the money it risked at entry (`OpenedTrade.risk_money`, or
  the stop distance times the volume). The difference of the strategy's and a baseline's mean R
  gets a percentile bootstrap interval (each sample resampled on its own, a fixed seed, so a report
  is reproducible).
- Fold returns: each fold traded on its own fresh account, the strategy's return minus the
  baseline's, paired by fold; a Student t interval over the folds (buy-and-hold has no stop, so it
  is compared this way only).

The verdict is worded from the interval: "beats" only when it lies wholly above zero, "does worse
than" only when wholly below, otherwise "does not beat … (within chance)".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from trading.domain import ClosedTrade
from trading.records import OpenedTrade

CONTRACT = 100.0  # ounces per lot of XAUUSD
BOOTSTRAP_SEED = 20240607
BOOTSTRAP_DRAWS = 4000
LEVEL = 0.95


def r_multiples(trades: Sequence[ClosedTrade], opened: Sequence[OpenedTrade]) -> np.ndarray:
    """Each closed trade's profit in units of what it risked at entry; trades without a known risk
    (no stop, no sized risk) are left out."""
    risk: dict[int, float] = {}
    for o in opened:
        money = (
            o.risk_money
            if o.risk_money > 0
            else abs(o.open_price - o.sl) * o.volume * CONTRACT
            if o.sl
            else 0.0
        )
        risk[o.ticket] = money
    out = [t.profit / risk[t.ticket] for t in trades if risk.get(t.ticket, 0.0) > 0]
    return np.asarray(out, dtype=float)


@dataclass(frozen=True, slots=True)
class Difference:
    """Strategy minus baseline: the point estimate and its 95 % interval (None: not enough data)."""

    unit: str  # "R per trade" or "% per fold"
    strategy: float | None
    baseline: float | None
    diff: float | None
    low: float | None
    high: float | None
    n_strategy: int
    n_baseline: int
    method: str  # "bootstrap" / "t" / why there is no interval

    @property
    def decided(self) -> str:
        if self.low is None or self.high is None:
            return "unknown"
        return "better" if self.low > 0 else "worse" if self.high < 0 else "within chance"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "decided": self.decided}


def _r(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), 4)


def bootstrap_diff(
    a: np.ndarray,
    b: np.ndarray,
    *,
    seed: int = BOOTSTRAP_SEED,
    draws: int = BOOTSTRAP_DRAWS,
    unit: str = "R per trade",
) -> Difference:
    """Mean of `a` minus mean of `b`, with a percentile bootstrap interval (two independent samples)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    ma = float(a.mean()) if a.size else None
    mb = float(b.mean()) if b.size else None
    if ma is None or mb is None or a.size < 2 or b.size < 2:
        diff = None if ma is None or mb is None else ma - mb
        why = f"too few trades for an interval ({a.size} vs {b.size})"
        return Difference(unit, _r(ma), _r(mb), _r(diff), None, None, int(a.size), int(b.size), why)
    rng = np.random.default_rng(seed)
    da = a[rng.integers(0, a.size, (draws, a.size))].mean(axis=1)
    db = b[rng.integers(0, b.size, (draws, b.size))].mean(axis=1)
    tail = (1 - LEVEL) / 2 * 100
    low, high = np.percentile(da - db, [tail, 100 - tail])
    return Difference(
        unit, _r(ma), _r(mb), _r(ma - mb), _r(low), _r(high), int(a.size), int(b.size), "bootstrap"
    )


def paired_t_diff(a: Sequence[float], b: Sequence[float], unit: str = "% per fold") -> Difference:
    """Mean of the paired differences a[i] - b[i] with a Student t interval."""
    from scipy.stats import t as student_t

    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    d = x - y
    if d.size < 2:
        diff = float(d.mean()) if d.size else None
        return Difference(
            unit,
            _r(float(x.mean()) if x.size else None),
            _r(float(y.mean()) if y.size else None),
            _r(diff),
            None,
            None,
            int(x.size),
            int(y.size),
            "one fold: no interval",
        )
    sd = float(d.std(ddof=1))
    half = float(student_t.ppf(0.5 + LEVEL / 2, d.size - 1)) * sd / math.sqrt(d.size)
    m = float(d.mean())
    return Difference(
        unit,
        _r(float(x.mean())),
        _r(float(y.mean())),
        _r(m),
        _r(m - half),
        _r(m + half),
        int(x.size),
        int(y.size),
        "t",
    )


def _fmt(x: float | None, unit: str) -> str:
    if x is None:
        return "n/a"
    return f"{x:+.2f}" if unit.startswith("R") else f"{x:+.2f} %"


def wording(name: str, d: Difference) -> str:
    """'does not beat SMC-only: difference -0.03 R per trade, 95 % CI -0.11…+0.05'."""
    unit = d.unit if d.unit.startswith("R") else "percentage points per fold"
    if d.diff is None:
        return f"cannot be compared with {name} in {d.unit}: {d.method}"
    if d.low is None or d.high is None:
        return f"cannot be judged against {name}: difference {_fmt(d.diff, 'R')} {unit}, {d.method}"
    verb = {"better": "beats", "worse": "does worse than", "within chance": "does not beat"}[d.decided]
    tail = " (the interval holds zero: within chance)" if d.decided == "within chance" else ""
    return (
        f"{verb} {name}: difference {_fmt(d.diff, 'R')} {unit}, {LEVEL:.0%} CI "
        f"{_fmt(d.low, 'R')}…{_fmt(d.high, 'R')}{tail}"
    )


# ------------------------------------------------------------------------------------ folds


def _summary(result: Any) -> dict[str, Any]:
    r = r_multiples(result.trades, result.opened)
    net = float(sum(t.profit for t in result.trades))
    end = float(result.equity[-1]) if result.equity.size else result.start_balance
    return {
        "trades": len(result.trades),
        "net_profit": round(net, 2),
        "return_pct": round((end / result.start_balance - 1) * 100, 4) if result.start_balance > 0 else None,
        "mean_r": _r(float(r.mean())) if r.size else None,
        "r_trades": int(r.size),
        "halted": bool(result.halts),
    }


def compare_folds(
    folds: Sequence[dict[str, Any]],
    baselines: Sequence[str] = ("smc_only", "random", "buy_and_hold"),
    names: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Each fold's fresh-account runs ({"strategy": result, "smc_only": result, ...}) compared per fold
    and overall: R per trade (bootstrap) for baselines with stops, fold return (paired t) for all."""
    names = names or {}
    rows = []
    pooled: dict[str, list[np.ndarray]] = {k: [] for k in ("strategy", *baselines)}
    returns: dict[str, list[float]] = {k: [] for k in ("strategy", *baselines)}
    for k, runs in enumerate(folds):
        row: dict[str, Any] = {"fold": k + 1}
        for name in ("strategy", *baselines):
            res = runs[name]
            row[name] = _summary(res)
            pooled[name].append(r_multiples(res.trades, res.opened))
            returns[name].append(row[name]["return_pct"] or 0.0)
        rs = pooled["strategy"][-1]
        for name in baselines:
            if name != "buy_and_hold":
                row[name]["strategy_minus_r"] = bootstrap_diff(rs, pooled[name][-1]).to_dict()
        rows.append(row)
    overall: dict[str, Any] = {}
    verdicts = []
    all_r = {k: np.concatenate(v) if v else np.zeros(0) for k, v in pooled.items()}
    for name in baselines:
        entry: dict[str, Any] = {"fold_return": paired_t_diff(returns["strategy"], returns[name]).to_dict()}
        label = names.get(name, name)
        if name != "buy_and_hold":
            d = bootstrap_diff(all_r["strategy"], all_r[name])
            entry["r_per_trade"] = d.to_dict()
            verdicts.append(wording(label, d))
        else:
            verdicts.append(wording(label, paired_t_diff(returns["strategy"], returns[name])))
        overall[name] = entry
    return {
        "folds": rows,
        "overall": overall,
        "verdicts": verdicts,
        "strategy_r": {
            "mean": _r(float(all_r["strategy"].mean())) if all_r["strategy"].size else None,
            "trades": int(all_r["strategy"].size),
        },
        "method": f"{LEVEL:.0%} CI; R per trade: percentile bootstrap, {BOOTSTRAP_DRAWS} draws, seed "
        f"{BOOTSTRAP_SEED}; fold returns: paired Student t over the folds; every fold on a fresh "
        "account",
    }


def versus_baselines(
    strategy: Any, runs: dict[str, Any], names: dict[str, str] | None = None
) -> dict[str, Any]:
    """One run's strategy against the baselines with stops (SMC-only, random) in R per trade."""
    names = names or {"smc_only": "SMC-only", "random": "random entries"}
    rs = r_multiples(strategy.trades, strategy.opened)
    out: dict[str, Any] = {
        "strategy_mean_r": _r(float(rs.mean())) if rs.size else None,
        "r_trades": int(rs.size),
        "r_per_trade": {},
        "verdicts": [],
    }
    for name in ("smc_only", "random"):
        if name in runs:
            d = bootstrap_diff(rs, r_multiples(runs[name].trades, runs[name].opened))
            out["r_per_trade"][name] = d.to_dict()
            out["verdicts"].append(wording(names.get(name, name), d))
    return out
