"""Expected value of a setup in R at a win probability, and its costs in R: arithmetic with no fitted state,
read by the EV gate (`trading.gates`) and by the training that fits its floor (`models.ev`).

A trade risks 1 R (entry to stop) to win R = reward / risk; spread and commission cost
`costs_r` = (spread + 2 x commission per lot / contract size) / risk on every trade. At win
probability p the expected value is  EV = p·R − (1 − p)·1 − costs_r, positive above the break-even
probability (1 + costs_r) / (1 + R). A time-limit exit loses less than 1 R, so EV is a floor.
"""

from __future__ import annotations

import math

import numpy as np

CONTRACT_SIZE = 100.0  # XAUUSD ounces per lot


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
