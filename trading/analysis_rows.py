"""What `AnalysisFrame.at` reads of each row, converted a chunk of rows at a time (`RowLists`).

Python floats read faster than numpy scalars, and the flash-crash, regime and session picks are
elementwise, so computed vectorised for the chunk they are the same as row by row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trading.live_analysis import INDICATOR_COLUMNS
from trading.parameters import StrategyParams
from trading.sessions import SessionInfo, sessions_at

_DEFAULTS = StrategyParams()


@dataclass(frozen=True, slots=True)
class RowLists:
    close: list[float]
    high: list[float]
    low: list[float]
    spread: list[float]
    indicators: list[tuple[float, ...]]  # each row's INDICATOR_COLUMNS (the tuple `BarRow` carries)
    crisis: list[bool]  # the regime's flash-crash override
    regime_state: list[int]  # argmax of the regime probabilities; -1 where not all finite (or no regime)
    regime_confidence: list[float]
    session: list[SessionInfo]  # `session_at` the bar's close

    @classmethod
    def of(
        cls,
        columns: dict[str, np.ndarray],
        regime_probs: np.ndarray | None,
        close_minutes: np.ndarray,
        flash_crash_pct: float = _DEFAULTS.flash_crash_pct,
        flash_crash_bars: int = _DEFAULTS.flash_crash_bars,
    ) -> RowLists:
        """`close_minutes`: each bar's close time in UTC minutes since the epoch."""
        close = np.asarray(columns["close"], dtype=np.float64)
        n = close.size
        if regime_probs is None:
            state, confidence = np.full(n, -1), np.zeros(n)
        else:
            probs = np.asarray(regime_probs)
            best = probs.argmax(axis=1) if n else np.zeros(0, dtype=np.int64)
            state = np.where(np.isfinite(probs).all(axis=1), best, -1)
            confidence = probs[np.arange(n), best].astype(np.float64)
        return cls(
            close=close.tolist(),
            high=columns["high"].tolist(),
            low=columns["low"].tolist(),
            spread=columns["spread"].tolist(),
            indicators=list(
                zip(
                    *(np.asarray(columns[k], dtype=np.float64).tolist() for k in INDICATOR_COLUMNS),
                    strict=True,
                )
            ),
            crisis=flash_crash_rows(close, flash_crash_pct, flash_crash_bars).tolist(),
            regime_state=state.tolist(),
            regime_confidence=confidence.tolist(),
            session=sessions_at(close_minutes),
        )


def flash_crash_rows(close: np.ndarray, pct: float, bars: int) -> np.ndarray:
    """Per row i, close_move_pct(close[: i + 1], bars) >= pct, for all rows at once."""
    out = np.zeros(close.size, dtype=bool)
    k = bars - 1  # the window's first close is k rows back
    if close.size > k:
        first, last = close[:-k], close[k:]
        with np.errstate(divide="ignore", invalid="ignore"):
            move = np.abs(last / first - 1) * 100
        out[k:] = (first > 0) & (move >= pct)
    return out
