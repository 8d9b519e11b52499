"""Does the chosen parameter set survive? The hold-out and search-statistics verdict, the grid
neighbours a robustness check trades, and the CSCV block count for the overfitting probability."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from trading.numbers import signed_usd
from trading.parameters import ParamRange


def neighbours(
    values: dict[str, float], space: dict[str, ParamRange]
) -> list[tuple[str, float, dict[str, float]]]:
    """One grid step down and up of each parameter (inside its range): (name, new value, values)."""
    out = []
    for name, r in space.items():
        for delta in (-r.step, r.step):
            v = round(values[name] + delta, 10)
            if r.low - 1e-9 <= v <= r.high + 1e-9:
                out.append((name, v, {**values, name: v}))
    return out


@dataclass(slots=True)
class Verdict:
    survives: bool
    reasons: list[str] = field(default_factory=list)  # why not, in words


def verdict(
    holdout: dict[str, dict[str, Any]], dsr: float, pbo: float | None, min_dsr: float = 0.95
) -> Verdict:
    """The chosen set survives only if, on the hold-out, it beats every baseline and the defaults and
    has a positive Sharpe, and the search statistics say the fold result is not luck or overfitting."""
    v = Verdict(True)
    chosen = holdout["chosen"]
    for name, m in holdout.items():
        if name != "chosen" and chosen["net_profit"] <= m["net_profit"]:
            v.reasons.append(
                f"on the hold-out it makes {signed_usd(chosen['net_profit'])}, not more than "
                f"{name.replace('_', ' ')} ({signed_usd(m['net_profit'])})"
            )
    if (chosen.get("sharpe") or 0.0) <= 0:
        v.reasons.append(f"its hold-out Sharpe is {chosen.get('sharpe') or 0.0:.2f}, not positive")
    if not (dsr >= min_dsr):
        v.reasons.append(
            f"the deflated Sharpe ratio is {dsr:.2f} < {min_dsr:.2f}: the fold Sharpe is within "
            "what the best of this many skill-less trials would show"
        )
    if pbo is not None and pbo >= 0.5:
        v.reasons.append(f"the probability of backtest overfitting is {pbo:.0%} (≥ 50%)")
    v.survives = not v.reasons
    return v


def cscv_blocks(n_obs: int, wanted: int = 8) -> int | None:
    """The even number of CSCV blocks the observations allow (at least 2 observations a block)."""
    b = min(wanted, n_obs // 2)
    b -= b % 2
    return b if b >= 2 else None
