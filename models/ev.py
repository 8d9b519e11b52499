"""The probability floor of the EV gate, fitted on validation. The EV and cost arithmetic it uses has no
fitted state and lives with the gate (`trading.expected_value`).

On top of EV > 0 the gate needs p >= `min_prob`, a floor fitted on the validation slice of the
training walk-forward (never on the reported test slice): the smallest floor on a grid that
maximises the realised R of the validation setups it lets through. Where no floor makes the
validation setups profitable, the fit says so and `min_prob` is 1 (no entries).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from trading.expected_value import expected_value_r

PROB_GRID = tuple(round(x, 2) for x in np.arange(0.0, 0.81, 0.01))
MIN_VALID_TRADES = 10


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
