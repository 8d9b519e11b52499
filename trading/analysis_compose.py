"""The `MarketAnalysis` of one analysed row (`compose`): the regime, ML and market-quality views and the
indicators a frame's row (`trading.analyzer.AnalysisFrame`) or a live step (`trading.live_analysis`)
carries, composed the same way for both."""

from __future__ import annotations

import math
from datetime import timedelta
from functools import lru_cache

from trading.analysis import UNKNOWN_REGIME, MarketAnalysis, MLView, QualityView, RegimeView
from trading.domain import Side
from trading.live_analysis import INDICATOR_COLUMNS, BarRow
from trading.market_quality import ml_points, scored_quality
from trading.sessions import SessionInfo, session_at

REGIME_VIEWS = (
    RegimeView("low", 0, 0.0, 1.0, "TRADE"),
    RegimeView("medium", 1, 0.0, 1.0, "TRADE"),
    RegimeView("high", 2, 0.0, 0.5, "REDUCE"),
)
CRISIS_VIEW = RegimeView("crisis", 3, 1.0, 0.0, "SLEEP")
_M15 = timedelta(minutes=15)


def regime_view(state: int, confidence: float, crisis: bool) -> RegimeView:
    if crisis:
        return CRISIS_VIEW
    if state < 0:
        return UNKNOWN_REGIME
    base = REGIME_VIEWS[state]
    return RegimeView(base.name, base.label, confidence, base.lot_multiplier, base.recommendation)


def compose(
    row: BarRow,
    meta: bool,
    p_up: float | None,
    ml_gate: tuple[float, float | None, str],
    thresholds: tuple[float, float],
    model_version: str,
    strategy_edge: str,
    session: SessionInfo | None = None,
) -> MarketAnalysis:
    """The `MarketAnalysis` of one row, from a frame (`AnalysisFrame.at`, its runs of rows, which call it
    by position) or a step (`MarketAnalyzer`). `meta`: a meta-model scored the row's setup (`row.p_win`);
    else `p_up` is a direction model's. `session`: `session_at` the bar's close, when already known."""
    if session is None:
        session = session_at(row.time + _M15)
    setup = row.setup
    regime = regime_view(row.regime_state, row.regime_confidence, row.crisis)
    ml = None
    if meta:
        if setup is not None and math.isfinite(row.p_win):
            pw = row.p_win
            min_prob, base_rate, note = ml_gate
            ml = MLView(
                pw if setup.side is Side.BUY else 1.0 - pw, pw, setup.side, float(min_prob), base_rate, note
            )
    elif p_up is not None and math.isfinite(p_up):
        ml = MLView(p_up)
    quality = _quality_view(
        session.name,
        _quality_regime_name(regime),
        session.volatility,
        setup is not None,
        ml_points(ml.confidence if ml else 0.0),
        thresholds,
    )
    indicators = {k: v for k, v in zip(INDICATOR_COLUMNS, row.indicators, strict=True) if math.isfinite(v)}
    indicators["bar_range"] = row.high - row.low
    atr = indicators.get("atr_14") or 0.0
    return MarketAnalysis(
        bar_time=row.time,
        close=row.close,
        atr=float(atr),
        spread_points=int(row.spread),
        setup=setup,
        regime=regime,
        ml=ml,
        quality=quality,
        session=session,
        prev_setup_side=row.prev_setup.side if row.prev_setup else None,
        recent_closes=row.recent_closes,
        indicators=indicators,
        h1_bias=row.h1_bias,
        model_version=model_version,
        strategy_edge=strategy_edge,
    )


@lru_cache(maxsize=1024, typed=True)
def _quality_view(
    session: str,
    regime: str,
    volatility: str,
    has_smc_signal: bool,
    ml: float,
    thresholds: tuple[float, float],
) -> QualityView:
    """`market_quality` as the analysis carries it, by the ML confidence's points (`ml_points`): its few
    inputs repeat bar after bar, so each view is built once (it is frozen)."""
    q = scored_quality(session, regime, volatility, "", has_smc_signal, ml, thresholds[0], thresholds[1])
    return QualityView(q.score, q.level, q.threshold)


_QUALITY_REGIME_NAMES = {"low": "low_volatility", "medium": "medium_volatility", "high": "high_volatility"}


def _quality_regime_name(regime: RegimeView) -> str:
    return _QUALITY_REGIME_NAMES.get(regime.name, regime.name)
