"""Overfitting statistics for a search over strategy variants (pure numpy + the normal distribution).

- Deflated Sharpe ratio (Bailey & López de Prado, "The Deflated Sharpe Ratio", 2014): the
  probability that the true Sharpe ratio is above the best one expected from `n_trials` variants
  with no skill, given the sample's length, skewness and kurtosis.
- Probability of backtest overfitting by combinatorially symmetric cross-validation (Bailey,
  Borwein, López de Prado & Zhu, "The Probability of Backtest Overfitting", 2015): how often the
  variant that is best in-sample ranks in the lower half out-of-sample.

Sharpe ratios here are per observation (not annualised) unless a name says otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations
from statistics import NormalDist

import numpy as np

from trading.returns import sharpe  # the one definition (trading.returns)

EULER_GAMMA = 0.5772156649015329
_N = NormalDist()


def moments(returns: np.ndarray) -> tuple[float, float]:
    """(skewness, kurtosis) with kurtosis NOT in excess (3 for a normal); (0, 3) when undefined."""
    r = np.asarray(returns, dtype=float)
    if r.size < 3:
        return 0.0, 3.0
    d = r - r.mean()
    m2 = float(np.mean(d**2))
    if m2 <= 0:
        return 0.0, 3.0
    return float(np.mean(d**3) / m2**1.5), float(np.mean(d**4) / m2**2)


def probabilistic_sharpe(
    sr: float, sr_benchmark: float, n_obs: int, skew: float = 0.0, kurt: float = 3.0
) -> float:
    """P(true SR > sr_benchmark) for an observed per-observation `sr` over `n_obs` observations."""
    if n_obs < 2:
        return float("nan")
    var = 1.0 - skew * sr + (kurt - 1.0) / 4.0 * sr**2
    if var <= 0:
        return float("nan")
    return _N.cdf((sr - sr_benchmark) * math.sqrt(n_obs - 1) / math.sqrt(var))


def expected_max_sharpe(n_trials: int, sr_variance: float, sr_mean: float = 0.0) -> float:
    """The Sharpe ratio the best of `n_trials` skill-less variants is expected to show (the DSR's SR0)."""
    if n_trials < 2 or sr_variance <= 0:
        return sr_mean
    z1 = _N.inv_cdf(1.0 - 1.0 / n_trials)
    z2 = _N.inv_cdf(1.0 - 1.0 / (n_trials * math.e))
    return sr_mean + math.sqrt(sr_variance) * ((1.0 - EULER_GAMMA) * z1 + EULER_GAMMA * z2)


@dataclass(frozen=True, slots=True)
class DeflatedSharpe:
    sharpe: float  # observed, per observation
    benchmark: float  # SR0: expected maximum of n_trials skill-less variants
    n_obs: int
    n_trials: int
    skew: float
    kurt: float
    probability: float  # the DSR: P(true SR > SR0)


def deflated_sharpe(returns: np.ndarray, n_trials: int, trial_sharpes: np.ndarray) -> DeflatedSharpe:
    """DSR of the chosen variant's `returns`, deflated for `n_trials` variants whose per-observation
    Sharpe ratios (on the same observations) are `trial_sharpes`."""
    r = np.asarray(returns, dtype=float)
    srs = np.asarray(trial_sharpes, dtype=float)
    srs = srs[np.isfinite(srs)]
    var = float(srs.var(ddof=1)) if srs.size > 1 else 0.0
    sr = sharpe(r)
    skew, kurt = moments(r)
    sr0 = expected_max_sharpe(n_trials, var)
    return DeflatedSharpe(
        sr, sr0, int(r.size), n_trials, skew, kurt, probabilistic_sharpe(sr, sr0, r.size, skew, kurt)
    )


@dataclass(frozen=True, slots=True)
class PBOResult:
    pbo: float  # share of splits where the in-sample best is below the out-of-sample median
    n_splits: int
    blocks: int
    logits: tuple[float, ...]  # λ per split: logit of the in-sample best's out-of-sample relative rank


def _block_sharpes(m: np.ndarray) -> np.ndarray:
    """Per-column Sharpe of a (T, N) block of returns."""
    if m.shape[0] < 2:
        return np.zeros(m.shape[1])
    sd = m.std(axis=0, ddof=1)
    mean = m.mean(axis=0)
    return np.where(sd > 0, mean / np.where(sd > 0, sd, 1.0), 0.0)


def cscv_pbo(returns: np.ndarray, blocks: int = 8, metric=_block_sharpes) -> PBOResult:
    """PBO of the (T observations × N variants) `returns` matrix, cut into `blocks` (even) row blocks.

    For every way of choosing half of the blocks as in-sample (the rest, in order, out-of-sample),
    the variant with the best in-sample `metric` is ranked out-of-sample among all N; its relative
    rank ω = rank / (N + 1) gives λ = ln(ω / (1 − ω)), and PBO is the share of splits with λ ≤ 0.
    Ties in rank are averaged.
    """
    m = np.asarray(returns, dtype=float)
    if m.ndim != 2 or m.shape[1] < 2:
        raise ValueError("CSCV needs a (observations × variants) matrix with at least 2 variants")
    if blocks < 2 or blocks % 2:
        raise ValueError(f"CSCV needs an even number of blocks >= 2 (got {blocks})")
    if m.shape[0] < blocks:
        raise ValueError(f"{m.shape[0]} observations are too few for {blocks} blocks")
    parts = np.array_split(np.arange(m.shape[0]), blocks)
    n = m.shape[1]
    logits = []
    for chosen in combinations(range(blocks), blocks // 2):
        is_rows = np.concatenate([parts[i] for i in chosen])
        oos_rows = np.concatenate([parts[i] for i in range(blocks) if i not in chosen])
        best = int(np.argmax(metric(m[is_rows])))
        oos = metric(m[oos_rows])
        rank = float(np.sum(oos < oos[best]) + 1 + 0.5 * (np.sum(oos == oos[best]) - 1))  # 1 = worst
        omega = rank / (n + 1)
        logits.append(math.log(omega / (1 - omega)))
    lam = np.asarray(logits)
    return PBOResult(float(np.mean(lam <= 0)), len(logits), blocks, tuple(float(x) for x in lam))
