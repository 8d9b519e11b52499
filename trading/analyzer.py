"""Builds the per-bar `MarketAnalysis` from closed bars: features, SMC, session, regime, ML, quality.

Live, dry-run and backtest call the same `MarketAnalyzer` on the latest `window` closed bars, so
a backtest decides exactly as the live loop would. Models are injected (any object with the
small protocols below); without them the regime is "unknown" and ML is absent (SMC-only).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

import numpy as np
import polars as pl

from models.confidence import market_quality
from trading import features, smc
from trading.analysis import UNKNOWN_REGIME, MarketAnalysis, MLView, QualityView, RegimeView
from trading.domain import Side
from trading.sessions import session_at

INDICATOR_COLUMNS = ("rsi_14", "atr_14", "macd_hist", "ema_9", "ema_21", "bb_upper", "bb_lower")
H1_WEIGHTS = (0.25, 0.20, 0.20, 0.20, 0.15)


class RegimeSource(Protocol):
    def latest(self, bars: pl.DataFrame) -> Any:  # -> object with .to_view() -> RegimeView
        ...


class SignalSource(Protocol):
    version: str

    def p_up_latest(self, feature_frame: pl.DataFrame) -> float | None:
        """Calibrated P(up) for the last row, or None when the row lacks inputs."""
        ...


@dataclass(slots=True)
class _PrevSetup:
    bar_time: object
    side: Side | None


class MarketAnalyzer:
    def __init__(
        self,
        regime: RegimeSource | None = None,
        signal: SignalSource | None = None,
        window: int = 200,
        with_h1_bias: bool = False,
        min_threshold: float = 0.60,
        max_threshold: float = 0.85,
    ) -> None:
        if window < 60:
            raise ValueError(f"analysis window must be at least 60 bars, got {window}")
        self.regime = regime
        self.signal = signal
        self.window = window
        self.with_h1_bias = with_h1_bias
        self.min_threshold = min_threshold
        self.max_threshold = max_threshold
        self._prev: _PrevSetup | None = None
        self.last_smc: pl.DataFrame | None = None  # for /chart overlays
        self.last_features: pl.DataFrame | None = None

    def __call__(self, bars: pl.DataFrame) -> MarketAnalysis:
        if bars.height < 2:
            raise ValueError("need at least 2 closed bars to analyse")
        w = bars.tail(self.window) if bars.height > self.window else bars
        feats = features.compute_features(w)
        structure = smc.analyze(w)
        setup = smc.signal(structure)
        self.last_smc, self.last_features = structure, feats
        bar_time = w["time"][-1]
        prev_side = self._previous_side(w)
        self._prev = _PrevSetup(bar_time, setup.side if setup else None)

        last = feats.row(-1, named=True)
        atr = _finite(last.get("atr_14")) or _finite(structure["atr"][-1]) or 0.0
        session = session_at(bar_time + _M15)
        regime_view: RegimeView = self.regime.latest(w).to_view() if self.regime else UNKNOWN_REGIME
        ml = None
        version = ""
        if self.signal is not None:
            p = self.signal.p_up_latest(feats)
            version = self.signal.version
            if p is not None and np.isfinite(p):
                ml = MLView(float(p))
        q = market_quality(
            session=session.name, regime=_quality_regime_name(regime_view), volatility=session.volatility,
            has_smc_signal=setup is not None, ml_confidence=ml.confidence if ml else 0.0,
            min_threshold=self.min_threshold, max_threshold=self.max_threshold,
        )
        indicators = {k: float(last[k]) for k in INDICATOR_COLUMNS if _finite(last.get(k)) is not None}
        indicators["bar_range"] = float(last["high"] - last["low"])
        return MarketAnalysis(
            bar_time=bar_time,
            close=float(last["close"]),
            atr=float(atr),
            spread_points=int(last["spread"]),
            setup=setup,
            regime=regime_view,
            ml=ml,
            quality=QualityView(q.score, q.level, q.threshold),
            session=session,
            prev_setup_side=prev_side,
            recent_closes=tuple(w["close"].tail(25).to_list()),
            indicators=indicators,
            h1_bias=h1_bias(w) if self.with_h1_bias else 0,
            model_version=version,
        )

    def _previous_side(self, w: pl.DataFrame) -> Side | None:
        """The setup side of the bar before: remembered when the calls are consecutive, else recomputed."""
        prev_time = w["time"][-2]
        if self._prev is not None and self._prev.bar_time == prev_time:
            return self._prev.side
        before = smc.signal(smc.analyze(w.head(w.height - 1)))
        return before.side if before else None


_M15 = timedelta(minutes=15)


def _finite(x: object) -> float | None:
    try:
        v = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return v if np.isfinite(v) else None


def _quality_regime_name(regime: RegimeView) -> str:
    return {"low": "low_volatility", "medium": "medium_volatility", "high": "high_volatility"}.get(
        regime.name, regime.name
    )


def h1_bias(m15: pl.DataFrame) -> int:
    """The CODE's 5-indicator H1 score: +1 bullish (≥ 0.3), -1 bearish (≤ -0.3), 0 neutral."""
    h1 = (
        m15.sort("time")
        .group_by_dynamic("time", every="1h", closed="left", label="left")
        .agg(
            pl.col("open").first(), pl.col("high").max(), pl.col("low").min(), pl.col("close").last(),
            pl.col("tick_volume").sum(), pl.col("spread").last(), pl.col("real_volume").sum(),
        )
    )
    if h1.height < 30:
        return 0
    f = features.compute_features(h1).row(-1, named=True)
    closes = h1["close"].to_numpy()
    votes = (
        np.sign(f["close"] - f["ema_21"]),
        np.sign(f["ema_9"] - f["ema_21"]),
        1.0 if f["rsi_14"] > 55 else -1.0 if f["rsi_14"] < 45 else 0.0,
        np.sign(f["macd_hist"]),
        np.sign(np.sum(np.sign(np.diff(closes[-6:])))),
    )
    score = float(sum(w * v for w, v in zip(H1_WEIGHTS, votes, strict=True) if np.isfinite(v)))
    return 1 if score >= 0.3 else -1 if score <= -0.3 else 0
