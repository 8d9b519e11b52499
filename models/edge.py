"""How a trained model is judged out of sample: naive baselines, the EV gate's trades, the edge verdict.

Used by training (per fold and pooled) and by `evaluate` on any bars. A version goes live by itself
only when `edge_verdict` finds a demonstrated edge (see `models.training`'s module doc).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from models import metrics as M
from models.dataset import Dataset
from models.ev import EVGate
from trading.expected_value import CONTRACT_SIZE, expected_value_r

METRIC_KEYS = ("auc", "accuracy", "log_loss", "brier")
MIN_GATED_TRADES = 20  # fewer out-of-sample trades through the gate prove nothing either way
EDGE_T = 1.645  # one-sided 5 %: the gate's picks must beat taking every setup by this many standard errors


@dataclass(frozen=True, slots=True)
class BaselineRates:
    """What the naive baselines learned from the training rows."""

    win_rate: float  # base win rate of setups: the base-rate baseline predicts it for every row
    buy_win_rate: float  # per-side win rates: the side baseline
    sell_win_rate: float

    @classmethod
    def learn(cls, y: np.ndarray, side: np.ndarray) -> BaselineRates:
        def rate(mask: np.ndarray) -> float:
            return float(y[mask].mean()) if mask.any() else float(y.mean())

        return cls(float(y.mean()), rate(side > 0), rate(side < 0))

    def base_rate(self, n: int) -> np.ndarray:
        return np.full(n, self.win_rate)

    def by_side(self, side: np.ndarray) -> np.ndarray:
        return np.where(side > 0, self.buy_win_rate, self.sell_win_rate)


@dataclass(frozen=True)
class FoldResult:
    fold: int
    train_rows: int
    test_rows: int
    test_from: str
    test_to: str
    rounds: int
    metrics: dict[str, float]
    baselines: dict[str, dict[str, float]]
    trading: dict[str, Any]  # every setup vs the EV gate's picks on the test block
    ev_gate: dict[str, Any]


def clean_json(value: Any) -> Any:
    """NaN/inf -> None and numpy scalars -> Python, so the output is strict JSON."""
    if isinstance(value, dict):
        return {k: clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def rounded(d: dict[str, float], digits: int = 4) -> dict[str, float]:
    return {k: (round(v, digits) if isinstance(v, float) else v) for k, v in d.items()}


def score_with_baselines(
    p: np.ndarray, y: np.ndarray, side: np.ndarray, rates: BaselineRates
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    model = rounded(M.score(p, y))
    base = {
        "base_rate": rounded(M.score(rates.base_rate(len(y)), y)),
        "side_rate": rounded(M.score(rates.by_side(side), y)),
    }
    return model, base


def fold_mean(rows: list[dict[str, float]]) -> dict[str, float]:
    return rounded({k: float(np.nanmean([r[k] for r in rows])) for k in METRIC_KEYS})


def baseline_verdict(model: dict[str, float], baselines: dict[str, dict[str, float]]) -> tuple[bool, str]:
    """Does the model beat every baseline on AUC and log loss? Say it plainly either way."""
    best_auc = max((b["auc"] for b in baselines.values() if b["auc"] == b["auc"]), default=0.5)
    best_ll = min(b["log_loss"] for b in baselines.values())
    auc = model["auc"] if model["auc"] == model["auc"] else 0.5
    beats = auc > best_auc and model["log_loss"] < best_ll
    text = (
        f"model AUC {auc:.4f} vs best baseline {best_auc:.4f}; "
        f"log loss {model['log_loss']:.4f} vs {best_ll:.4f}: "
        + ("beats the naive baselines" if beats else "does NOT beat the naive baselines")
    )
    return beats, text


def trading_figures(take: np.ndarray, r: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Every setup vs the gate's picks: count, win rate, mean and total realised R."""

    def block(mask: np.ndarray) -> dict[str, Any]:
        n = int(mask.sum())
        return {
            "n": n,
            "win_rate": float(y[mask].mean()) if n else None,
            "mean_r": float(r[mask].mean()) if n else None,
            "total_r": float(r[mask].sum()),
        }

    every = np.ones(len(r), dtype=bool)
    out = {"all_setups": clean_json(rounded(block(every))), "ev_gate": clean_json(rounded(block(take)))}
    n = int(take.sum())
    # Welch-style t of (gated mean - all mean), the gated sample's standard error dominating
    se = float(r[take].std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan")
    out["t_vs_all"] = round((float(r[take].mean()) - float(r.mean())) / se, 3) if n > 1 and se > 0 else None
    return out


def folds_beaten(folds: list[FoldResult]) -> int:
    """Folds whose test block the model scored better than the base rate on both AUC and log loss."""
    return sum(
        1
        for f in folds
        if (
            f.metrics["auc"] == f.metrics["auc"]
            and f.metrics["auc"] > 0.5
            and f.metrics["log_loss"] < f.baselines["base_rate"]["log_loss"]
        )
    )


def edge_verdict(
    beats: bool,
    stat_text: str,
    trading: dict[str, Any],
    folds_won: int | None = None,
    n_folds: int | None = None,
) -> dict[str, Any]:
    """The activation rule: beat the baselines pooled *and* in most folds, and make the gate's picks pay,
    out of sample. (A pooled win carried by one or two folds is luck as often as skill.) Every check is
    named with its figures, and the verdict says which failed."""
    checks: list[dict[str, Any]] = [{"name": "baselines", "passed": beats, "detail": stat_text}]
    if folds_won is not None and n_folds:
        needed = n_folds // 2 + 1
        checks.append(
            {
                "name": "folds",
                "passed": folds_won >= needed,
                "detail": f"better than the base rate in {folds_won} of {n_folds} folds (needs {needed})",
            }
        )
    gated, every = trading["ev_gate"], trading["all_setups"]
    t = trading.get("t_vs_all")
    enough = gated["n"] >= MIN_GATED_TRADES
    checks.append(
        {
            "name": "gated trades",
            "passed": enough,
            "detail": f"{'' if enough else 'only '}{gated['n']} test setups passed the EV gate "
            f"(needs {MIN_GATED_TRADES})",
        }
    )
    if enough:
        positive = gated["mean_r"] is not None and gated["mean_r"] > 0
        checks.append(
            {
                "name": "gated trades pay",
                "passed": positive,
                "detail": f"EV-gated test trades make {gated['mean_r']:+.3f} R each (needs > 0)",
            }
        )
        checks.append(
            {
                "name": "better than all setups",
                "passed": t is not None and t > EDGE_T,
                "detail": f"{gated['mean_r']:+.3f} R vs all {every['n']} setups at {every['mean_r']:+.3f} R: "
                f"t {t if t is not None else 'n/a'} (needs > {EDGE_T})",
            }
        )
    demonstrated = all(c["passed"] for c in checks)
    failed = [c["detail"] for c in checks if not c["passed"]]
    if demonstrated:
        verdict = f"edge demonstrated out of sample (all {len(checks)} checks passed)"
    else:
        passed = [c["name"] for c in checks if c["passed"]]
        verdict = (
            "no demonstrated edge: failed: "
            + "; ".join(failed)
            + (f" (passed: {', '.join(passed)})" if passed else "")
        )
    pays = all(c["passed"] for c in checks if c["name"] not in ("baselines", "folds"))
    beats_all = all(c["passed"] for c in checks if c["name"] in ("baselines", "folds"))
    return {
        "demonstrated": demonstrated,
        "beats_baselines": beats_all,
        "gate_pays": pays,
        "folds_won": folds_won,
        "checks": checks,
        "verdict": verdict,
    }


def time_str(value: np.datetime64) -> str:
    return str(np.datetime_as_string(value, unit="m")) + "Z"


def commission_r(ds: Dataset, rows: np.ndarray, commission_per_lot: float) -> np.ndarray:
    return 2.0 * commission_per_lot / CONTRACT_SIZE / ds.risk[rows]


def gate_takes(
    gate: EVGate, p: np.ndarray, ds: Dataset, rows: np.ndarray, commission_per_lot: float
) -> np.ndarray:
    """Which rows the ML gates let through: EV > 0 after costs, p >= the fitted floor and >= the base rate."""
    cost = ds.cost_r[rows] + commission_r(ds, rows, commission_per_lot)
    return (expected_value_r(p, ds.reward_r[rows], cost) > 0) & (p >= gate.min_prob) & (p >= gate.base_rate)
