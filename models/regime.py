"""HMM market regime: 3 volatility states (low / medium / high) with filtered, causal probabilities.

The model is hmmlearn's GaussianHMM fitted on eight scaled inputs computed from the bars alone
(spec §3). States are re-ordered after fitting by the mean of `volatility_20`, so label 0 is always
the calmest state and 2 the wildest, whatever seed or retrain produced them (decision 3).

Prediction never looks ahead: the probability of a state at bar t is the normalised forward
variable alpha_t, computed by our own forward pass from rows <= t only (no Viterbi, no smoothing).
A flash-crash move over the last five bars overrides the HMM with CRISIS (SLEEP, lot x0).
Parameters are saved as plain JSON, never pickled.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from numba import njit

from trading.analysis import close_move_pct
from trading.parameters import StrategyParams

REGIME_INPUTS: tuple[str, ...] = (
    "log_returns",
    "volatility_20",
    "volatility_100",
    "range_atr_ratio",
    "trend_strength",
    "rsi_deviation",
    "autocorr",
    "vol_regime",
)
VOLATILITY_INPUT = 1  # index of volatility_20: the states are ordered by its mean
N_STATES = 3
DEFAULT_SEEDS: tuple[int, ...] = tuple(42 + 17 * k for k in range(5))
MIN_FIT_ROWS = 200
FLASH_CRASH_PCT = StrategyParams().flash_crash_pct  # the default; the bot runs with the settings' value
FLASH_CRASH_BARS = StrategyParams().flash_crash_bars


@dataclass(frozen=True, slots=True)
class RegimeSpec:
    """What a regime means to the trader: name, label, lot multiplier and recommendation."""

    name: str
    label: int
    lot_multiplier: float
    recommendation: str  # TRADE | REDUCE | SLEEP


LOW = RegimeSpec("low", 0, 1.0, "TRADE")
MEDIUM = RegimeSpec("medium", 1, 1.0, "TRADE")
HIGH = RegimeSpec("high", 2, 0.5, "REDUCE")
CRISIS = RegimeSpec("crisis", 3, 0.0, "SLEEP")
UNKNOWN = RegimeSpec("unknown", -1, 0.5, "TRADE")
REGIMES: tuple[RegimeSpec, ...] = (LOW, MEDIUM, HIGH)


@dataclass(frozen=True, slots=True)
class RegimeReading:
    """The regime of one bar: volatility-ordered label, its filtered probability, and the trading advice."""

    spec: RegimeSpec
    confidence: float
    probabilities: tuple[float, ...]  # filtered P(low), P(medium), P(high)
    move_pct: float = 0.0  # |close move| over the flash-crash window, percent
    reason: str = ""

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def label(self) -> int:
        return self.spec.label

    @property
    def lot_multiplier(self) -> float:
        return self.spec.lot_multiplier

    @property
    def recommendation(self) -> str:
        return self.spec.recommendation

    def to_view(self) -> Any:
        """The engine's `RegimeView` record."""
        from trading.analysis import RegimeView

        return RegimeView(self.name, self.label, self.confidence, self.lot_multiplier, self.recommendation)


# --------------------------------------------------------------------------- inputs


def regime_inputs(bars: pl.DataFrame) -> pl.DataFrame:
    """The eight HMM inputs of spec §3, trailing windows only; warm-up rows are null (~113 bars)."""
    for col in ("high", "low", "close"):
        if col not in bars.columns:
            raise ValueError(f"regime inputs need column {col!r}")
    close, high, low = pl.col("close"), pl.col("high"), pl.col("low")
    prev = close.shift(1)
    tr = pl.max_horizontal(high - low, (high - prev).abs(), (low - prev).abs()).fill_null(high - low)
    diff = close.diff().fill_null(0.0)
    frame = bars.select(
        log_returns=(close / prev).log(),
        atr=tr.ewm_mean(alpha=1 / 14, adjust=False, min_samples=14),
        sma9=close.rolling_mean(9),
        sma21=close.rolling_mean(21),
        gain=diff.clip(lower_bound=0.0).rolling_mean(14),
        loss=(-diff).clip(lower_bound=0.0).rolling_mean(14),
        rng=high - low,
    )
    lr, atr = pl.col("log_returns"), pl.col("atr")
    rsi = (
        pl.when(pl.col("loss") == 0)
        .then(100.0)
        .otherwise(100.0 - 100.0 / (1.0 + pl.col("gain") / pl.col("loss")))
    )
    return frame.select(
        log_returns=lr,
        volatility_20=lr.rolling_std(20),
        volatility_100=lr.rolling_std(100),
        range_atr_ratio=pl.col("rng") / atr,
        trend_strength=(pl.col("sma9") - pl.col("sma21")).abs() / atr,
        rsi_deviation=(rsi - 50.0).abs() / 50.0,
        autocorr=(lr * lr.shift(1)).rolling_mean(20),
        vol_regime=(atr - atr.rolling_mean(100)) / atr.rolling_std(100),
    )


def _input_matrix(bars: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(X, valid): raw inputs with NaN->0 and +-inf->+-3, and the mask of rows without nulls."""
    raw = regime_inputs(bars)
    table = raw.select(
        pl.all().fill_null(0.0), pl.any_horizontal(pl.all().is_null()).alias("_null")
    )  # one pass
    valid = ~table["_null"].to_numpy().astype(bool)
    x = table.drop("_null").to_numpy().astype(np.float64)
    x = np.nan_to_num(x, nan=0.0, posinf=3.0, neginf=-3.0)
    return x, valid


# --------------------------------------------------------------------------- forward filter


@njit(cache=True)
def _forward_filter(log_emission: np.ndarray, log_start: np.ndarray, log_trans: np.ndarray) -> np.ndarray:
    """Normalised forward variables in log space: row t uses observations 0..t only."""
    n, k = log_emission.shape
    out = np.empty((n, k))
    for t in range(n):
        if t == 0:
            for j in range(k):
                out[0, j] = log_start[j] + log_emission[0, j]
            _normalise(out[0])
        else:
            forward_row(out[t - 1], log_emission[t], log_trans, out[t])
    return out


@njit(cache=True)
def forward_row(prev: np.ndarray, log_emission: np.ndarray, log_trans: np.ndarray, out: np.ndarray) -> None:
    """One row of the forward filter after the first, into `out`: from the previous row's normalised
    log forward variables and this row's log emissions."""
    k = prev.shape[0]
    for j in range(k):
        m = -np.inf
        for i in range(k):
            v = prev[i] + log_trans[i, j]
            if v > m:
                m = v
        s = 0.0
        for i in range(k):
            s += math.exp(prev[i] + log_trans[i, j] - m)
        out[j] = m + math.log(s) + log_emission[j]
    _normalise(out)


@njit(cache=True)
def _normalise(row: np.ndarray) -> None:
    """Subtract the row's log-sum-exp in place, so its probabilities sum to 1."""
    m = -np.inf
    for j in range(row.shape[0]):
        if row[j] > m:
            m = row[j]
    s = 0.0
    for j in range(row.shape[0]):
        s += math.exp(row[j] - m)
    norm = m + math.log(s)
    for j in range(row.shape[0]):
        row[j] -= norm


def _diag_log_likelihood(x: np.ndarray, means: np.ndarray, variances: np.ndarray) -> np.ndarray:
    """log N(x | mean_k, diag var_k) for every row and state: (n, k)."""
    diff = x[:, None, :] - means[None, :, :]
    return -0.5 * (
        np.log(2 * np.pi * variances).sum(axis=1)[None, :] + (diff**2 / variances[None]).sum(axis=2)
    )


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class RegimeModel:
    """A fitted 3-state HMM, states already in volatility order (index == label)."""

    startprob: np.ndarray  # (3,)
    transmat: np.ndarray  # (3, 3)
    means: np.ndarray  # (3, 8) in scaled units
    variances: np.ndarray  # (3, 8) diagonal covariances
    scaler_mean: np.ndarray  # (8,)
    scaler_scale: np.ndarray  # (8,)
    seed: int = 0
    score: float = 0.0
    n_train: int = 0
    flash_crash_pct: float = FLASH_CRASH_PCT
    _last: tuple[pl.DataFrame, np.ndarray] | None = field(default=None, init=False, repr=False, compare=False)

    # ----- fitting
    @classmethod
    def fit(
        cls, bars: pl.DataFrame, seeds: tuple[int, ...] = DEFAULT_SEEDS, n_iter: int = 500
    ) -> RegimeModel:
        """Fit one HMM per seed and keep the best by log-likelihood with degenerate-state penalties."""
        from hmmlearn.hmm import GaussianHMM

        if not seeds:
            raise ValueError("regime fit needs at least one seed")
        x, valid = _input_matrix(bars)
        x = x[valid]
        if len(x) < MIN_FIT_ROWS:
            raise ValueError(f"regime fit needs >= {MIN_FIT_ROWS} usable rows, got {len(x)}")
        mean = x.mean(axis=0)
        scale = x.std(axis=0)
        scale[scale == 0] = 1.0
        xs = (x - mean) / scale

        best: tuple[float, Any, int] | None = None
        for seed in seeds:
            hmm = GaussianHMM(
                n_components=N_STATES,
                covariance_type="diag",
                min_covar=1e-2,
                n_iter=n_iter,
                tol=1e-4,
                random_state=seed,
                init_params="smc",
                params="stmc",
            )
            hmm.transmat_ = np.full((N_STATES, N_STATES), 0.05) + np.eye(N_STATES) * 0.85
            try:
                hmm.fit(xs)
                loglik = float(hmm.score(xs))
            except (ValueError, np.linalg.LinAlgError):
                continue
            # Viterbi here is only a fit diagnostic (state shares); prediction uses the forward filter.
            score = loglik + _degeneracy_penalty(hmm.predict(xs), _diag(hmm), hmm.transmat_)
            if best is None or score > best[0]:
                best = (score, hmm, seed)
        if best is None:
            raise ValueError("regime fit failed for every seed")
        score, hmm, seed = best
        order = np.argsort(hmm.means_[:, VOLATILITY_INPUT])
        return cls(
            startprob=hmm.startprob_[order].copy(),
            transmat=hmm.transmat_[np.ix_(order, order)].copy(),
            means=hmm.means_[order].copy(),
            variances=_diag(hmm)[order].copy(),
            scaler_mean=mean,
            scaler_scale=scale,
            seed=int(seed),
            score=float(score),
            n_train=len(xs),
        )

    # ----- prediction
    def filtered_probabilities(self, bars: pl.DataFrame) -> np.ndarray:
        """(n, 3) filtered P(state | bars <= t); NaN rows where the inputs are still warming up.

        Read-only. The last frame's answer is kept: the live analyzer's regime view and the meta-model's
        regime feature read the same bars (the same frame object) in one bar's analysis."""
        last = self._last
        if last is not None and last[0] is bars:
            return last[1]
        probs = self._filtered_probabilities(bars)
        probs.flags.writeable = False
        object.__setattr__(self, "_last", (bars, probs))  # one reference swap: safe to read from any thread
        return probs

    def _filtered_probabilities(self, bars: pl.DataFrame) -> np.ndarray:
        x, valid = _input_matrix(bars)
        probs = np.full((len(x), N_STATES), np.nan)
        if not valid.any():
            return probs
        xs = (x - self.scaler_mean) / self.scaler_scale
        log_em = _diag_log_likelihood(xs, self.means, self.variances)
        log_em[~valid] = 0.0  # no observation: the chain only moves by the transition matrix
        with np.errstate(divide="ignore"):
            log_start, log_trans = np.log(self.startprob), np.log(self.transmat)
        filtered = np.exp(_forward_filter(log_em, log_start, log_trans))
        probs[valid] = filtered[valid]
        return probs

    def filtered_labels(self, bars: pl.DataFrame) -> np.ndarray:
        """Volatility-ordered label per row (0 low, 1 medium, 2 high; -1 warm-up), causal."""
        probs = self.filtered_probabilities(bars)
        labels = np.full(len(probs), -1, dtype=np.int8)
        ok = ~np.isnan(probs[:, 0])
        labels[ok] = probs[ok].argmax(axis=1)
        return labels

    def latest(self, bars: pl.DataFrame) -> RegimeReading:
        """The regime of the last bar of `bars`, with the flash-crash override on top."""
        move = float(flash_crash_move_pct(bars["close"].to_numpy()))
        probs = self.filtered_probabilities(bars)
        if len(probs) == 0 or np.isnan(probs[-1, 0]):
            reading = RegimeReading(UNKNOWN, 0.0, (1 / 3,) * 3, move, "not enough bars for the regime inputs")
        else:
            p = probs[-1]
            k = int(p.argmax())
            reading = RegimeReading(REGIMES[k], float(p[k]), tuple(float(v) for v in p), move)
        if move >= self.flash_crash_pct:
            return RegimeReading(
                CRISIS,
                1.0,
                reading.probabilities,
                move,
                f"flash crash: {move:.2f}% over the last {FLASH_CRASH_BARS} bars",
            )
        return reading

    # ----- persistence
    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "gaussian_hmm_diag",
            "inputs": list(REGIME_INPUTS),
            "states": [r.name for r in REGIMES],
            "startprob": self.startprob.tolist(),
            "transmat": self.transmat.tolist(),
            "means": self.means.tolist(),
            "variances": self.variances.tolist(),
            "scaler_mean": self.scaler_mean.tolist(),
            "scaler_scale": self.scaler_scale.tolist(),
            "seed": self.seed,
            "score": self.score,
            "n_train": self.n_train,
            "flash_crash_pct": self.flash_crash_pct,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RegimeModel:
        if data.get("inputs") != list(REGIME_INPUTS):
            raise ValueError(
                f"regime model inputs {data.get('inputs')} do not match the code {list(REGIME_INPUTS)}"
            )
        arr = {
            k: np.asarray(data[k], dtype=np.float64)
            for k in ("startprob", "transmat", "means", "variances", "scaler_mean", "scaler_scale")
        }
        k, d = N_STATES, len(REGIME_INPUTS)
        shapes = {
            "startprob": (k,),
            "transmat": (k, k),
            "means": (k, d),
            "variances": (k, d),
            "scaler_mean": (d,),
            "scaler_scale": (d,),
        }
        for name, shape in shapes.items():
            if arr[name].shape != shape:
                raise ValueError(f"regime model {name} has shape {arr[name].shape}, expected {shape}")
        if (arr["variances"] <= 0).any() or (arr["scaler_scale"] <= 0).any():
            raise ValueError("regime model has non-positive variances or scales")
        return cls(
            **arr,
            seed=int(data.get("seed", 0)),
            score=float(data.get("score", 0.0)),
            n_train=int(data.get("n_train", 0)),
            flash_crash_pct=float(data.get("flash_crash_pct", FLASH_CRASH_PCT)),
        )

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load(cls, path: str | Path) -> RegimeModel:
        return cls.from_dict(json.loads(Path(path).read_text()))

    def summary(self) -> dict[str, Any]:
        """Figures for reports: state shares come from `state_shares`, this is the fit itself."""
        return {
            "seed": self.seed,
            "score": round(self.score, 3),
            "n_train": self.n_train,
            "transmat_diag": [round(float(v), 4) for v in np.diag(self.transmat)],
            "volatility_20_mean_scaled": [round(float(v), 4) for v in self.means[:, VOLATILITY_INPUT]],
        }


def _diag(hmm: Any) -> np.ndarray:
    return np.diagonal(hmm.covars_, axis1=1, axis2=2) if hmm.covars_.ndim == 3 else np.asarray(hmm.covars_)


def _degeneracy_penalty(states: np.ndarray, variances: np.ndarray, transmat: np.ndarray) -> float:
    """Spec §3: punish near-empty states, exploding covariances and flickering transitions."""
    shares = np.bincount(states, minlength=N_STATES) / max(len(states), 1)
    penalty = 0.0
    if shares.min() < 0.03:
        penalty -= 10_000
    elif shares.min() < 0.15:
        penalty -= 500
    if variances.max() > 100:
        penalty -= 5_000
    diag = np.diag(transmat)
    if diag.min() < 0.50:
        penalty -= 3_000
    elif diag.min() < 0.70:
        penalty -= 1_000
    return penalty + 100 * float(diag.mean())


def flash_crash_move_pct(closes: np.ndarray, bars: int = FLASH_CRASH_BARS) -> float:
    """|last close / first close - 1| in percent over the last `bars` closes (0 with fewer than 2)."""
    return close_move_pct(np.asarray(closes, dtype=np.float64), bars)


def state_shares(labels: np.ndarray) -> dict[str, float]:
    """Share of rows in each regime, ignoring warm-up rows (-1)."""
    ok = labels[labels >= 0]
    counts = np.bincount(ok, minlength=N_STATES) if len(ok) else np.zeros(N_STATES)
    total = max(int(counts.sum()), 1)
    return {r.name: round(float(counts[r.label]) / total, 4) for r in REGIMES}
