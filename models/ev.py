"""Expected value of a setup in R at the model's win probability, and the probability floor fitted on validation.

A trade risks 1 R (entry to stop) to win R = reward / risk; spread and commission cost
`costs_r` = (spread + 2 x commission per lot / contract size) / risk on every trade. At win
probability p the expected value is  EV = p·R − (1 − p)·1 − costs_r, positive above the break-even
probability (1 + costs_r) / (1 + R). A time-limit exit loses less than 1 R, so EV is a floor.

On top of EV > 0 the gate needs p >= `min_prob`, a floor fitted on the validation slice of the
training walk-forward (never on the reported test slice): the smallest floor on a grid that
maximises the realised R of the validation setups it lets through. Where no floor makes the
validation setups profitable, the fit says so and `min_prob` is 1 (no entries).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

CONTRACT_SIZE = 100.0  # XAUUSD ounces per lot
PROB_GRID = tuple(round(x, 2) for x in np.arange(0.0, 0.81, 0.01))
MIN_VALID_TRADES = 10


def costs_r(
    risk: np.ndarray | float,
    spread_price: np.ndarray | float,
    commission_per_lot: float = 0.0,
    contract_size: float = CONTRACT_SIZE,
) -> np.ndarray:
    """Spread plus the round-trip commission, in R (price units over the stop distance)."""
    risk = np.asarray(risk, dtype=np.float64)
    cost = np.asarray(spread_price, dtype=np.float64) + 2.0 * commission_per_lot / contract_size
    return np.where(risk > 0, cost / np.where(risk > 0, risk, 1.0), np.inf)


def expected_value_r(
    p: np.ndarray | float, reward_r: np.ndarray | float, cost_r: np.ndarray | float
) -> np.ndarray:
    """EV = p·R − (1 − p) − costs, in R."""
    p = np.asarray(p, dtype=np.float64)
    return p * np.asarray(reward_r, dtype=np.float64) - (1.0 - p) - np.asarray(cost_r, dtype=np.float64)


def setup_cost_r(
    risk: float, spread_price: float, commission_per_lot: float = 0.0, contract_size: float = CONTRACT_SIZE
) -> float:
    """`costs_r` of one setup in plain floats (the same operations in the same order: the same number)."""
    cost = spread_price + 2.0 * commission_per_lot / contract_size
    return float(cost / risk) if risk > 0 else math.inf


def setup_ev_r(p: float, reward_r: float, cost_r: float) -> float:
    """`expected_value_r` of one setup in plain floats."""
    return float(p * reward_r - (1.0 - p) - cost_r)


def break_even_prob(reward_r: float, cost_r: float) -> float:
    return (1.0 + cost_r) / (1.0 + reward_r)


@dataclass(frozen=True, slots=True)
class EVGate:
    """The fitted floor and the validation numbers behind it (shown by /filters and stored with the model)."""

    min_prob: float  # 1.0 = no floor made the validation setups profitable
    base_rate: float  # win rate of all training setups
    fitted: bool  # False: no profitable floor on the validation slice
    valid_setups: int
    valid_trades: int  # validation setups the floor and EV > 0 let through
    valid_win_rate: float
    valid_mean_r: float  # realised R per trade let through, after costs
    valid_all_mean_r: float  # realised R per validation setup when every one is taken
    commission_per_lot: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EVGate:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})

    def describe(self) -> str:
        if not self.fitted:
            return (
                f"no floor made the {self.valid_setups} validation setups profitable "
                f"(all taken: {self.valid_all_mean_r:+.2f} R each)"
            )
        return (
            f"floor {self.min_prob:.2f} fitted on {self.valid_setups} validation setups: "
            f"{self.valid_trades} taken, {self.valid_win_rate:.0%} won, {self.valid_mean_r:+.2f} R each "
            f"(all: {self.valid_all_mean_r:+.2f} R); base win rate {self.base_rate:.0%}"
        )


def fit_ev_gate(
    p: np.ndarray,
    realised_r: np.ndarray,
    reward_r: np.ndarray,
    cost_r: np.ndarray,
    win: np.ndarray,
    base_rate: float,
    *,
    commission_r: np.ndarray | float = 0.0,
    commission_per_lot: float = 0.0,
    grid: tuple[float, ...] = PROB_GRID,
    min_trades: int = MIN_VALID_TRADES,
) -> EVGate:
    """The floor on `grid` with the largest total realised R (net of commission) on the validation rows.

    `realised_r` already pays the spread (the barrier buys at the ask, sells at the bid); the
    commission is subtracted here. Ties go to the lower floor (more trades, less variance of the pick).
    """
    p, realised_r = np.asarray(p, float), np.asarray(realised_r, float)
    net = realised_r - np.asarray(commission_r, float)
    # EV > 0 after costs, and the model must not rate the setup below the average training setup
    ev_ok = (expected_value_r(p, reward_r, cost_r) > 0) & (p >= base_rate)
    n = len(p)
    all_mean = float(net.mean()) if n else float("nan")
    best: tuple[float, float, np.ndarray] | None = None
    for floor in grid:
        take = ev_ok & (p >= floor)
        if take.sum() < min_trades:
            continue
        total = float(net[take].sum())
        if best is None or total > best[1] + 1e-12:
            best = (float(floor), total, take)
    if best is None or best[1] <= 0:
        return EVGate(
            1.0, float(base_rate), False, n, 0, float("nan"), float("nan"), all_mean, commission_per_lot
        )
    floor, _, take = best
    return EVGate(
        floor,
        float(base_rate),
        True,
        n,
        int(take.sum()),
        float(np.asarray(win)[take].mean()),
        float(net[take].mean()),
        all_mean,
        commission_per_lot,
    )
