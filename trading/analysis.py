"""The per-bar market picture the engine decides on, computed once per closed M15 bar and cached.

`MarketAnalysis` is what gates, exits, /market and the journal read; it carries small views of
the regime, ML signal and market quality so that the rules do not depend on model internals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import numpy as np

from trading.domain import Side
from trading.immutable import immutable


def close_move_pct(closes: Sequence[float] | np.ndarray, bars: int) -> float:
    """|last/first - 1| in % over the last `bars` closes (0 with fewer than 2): the flash-crash measure
    of the entry gate, the engine's emergency close and the regime's crisis override alike."""
    window = closes[-bars:]
    if len(window) < 2 or window[0] <= 0:
        return 0.0
    return float(abs(window[-1] / window[0] - 1) * 100)


class SetupLike(Protocol):
    """What the rules read of an SMC setup (trading.smc.SMCSetup satisfies it); read-only."""

    @property
    def side(self) -> Side: ...

    @property
    def entry(self) -> float: ...

    @property
    def stop_loss(self) -> float: ...

    @property
    def take_profit(self) -> float: ...

    @property
    def risk_reward(self) -> float: ...

    @property
    def confidence(self) -> float: ...

    @property
    def reason(self) -> str: ...


class SessionLike(Protocol):
    """What the rules read of a session (trading.sessions.SessionInfo satisfies it); read-only."""

    @property
    def name(self) -> str: ...

    @property
    def volatility(self) -> str: ...

    @property
    def multiplier(self) -> float: ...

    @property
    def allowed(self) -> bool: ...

    @property
    def reason(self) -> str: ...

    @property
    def is_golden(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class RegimeView:
    name: str  # "low" | "medium" | "high" | "crisis" | "unknown"
    label: int  # volatility-ordered: 0 low, 1 medium, 2 high, 3 crisis, -1 unknown
    confidence: float = 0.0
    lot_multiplier: float = 1.0
    recommendation: str = "TRADE"  # TRADE | REDUCE | SLEEP

    @property
    def dangerous(self) -> bool:
        return self.name in ("high", "crisis")


UNKNOWN_REGIME = RegimeView("unknown", -1, 0.0, 0.5, "TRADE")


@dataclass(frozen=True, slots=True)
class MLView:
    """The model's reading of the bar.

    A direction model gives `p_up` only. The meta-model scores the bar's setup: `p_win` is P(the
    setup's trade reaches its take-profit before its stop), for `side` only; `p_up` then carries the
    same number in up/down terms (p_win for a BUY, 1 − p_win for a SELL) for displays and the journal.
    """

    p_up: float
    p_win: float | None = None
    side: Side | None = None  # the setup side p_win was computed for
    min_prob: float = 0.0  # the probability floor fitted on the model's validation slice
    base_rate: float | None = None  # win rate of the model's training setups
    gate_note: str = ""  # the validation numbers behind the floor (shown by /filters)

    @property
    def is_meta(self) -> bool:
        return self.p_win is not None and self.side is not None

    @property
    def direction(self) -> Side:
        if self.side is not None:
            return self.side
        return Side.BUY if self.p_up >= 0.5 else Side.SELL

    @property
    def confidence(self) -> float:
        if self.p_win is not None:
            return self.p_win
        return max(self.p_up, 1 - self.p_up)

    def prob(self, side: Side) -> float:
        """P(side) of a direction model; the meta-model's P(win) for its setup's side (0 for the other
        side, on which it has no opinion)."""
        if self.p_win is not None and self.side is not None:
            return self.p_win if side is self.side else 0.0
        return self.p_up if side is Side.BUY else 1 - self.p_up


@dataclass(frozen=True, slots=True)
class QualityView:
    score: float
    level: str  # EXCELLENT | GOOD | MODERATE | POOR | AVOID
    threshold: float


@immutable
class MarketAnalysis:
    """One closed bar's analysis (`immutable`: one is composed for every bar)."""

    bar_time: datetime  # open time of the last closed bar (UTC)
    close: float
    atr: float
    spread_points: int
    setup: SetupLike | None
    regime: RegimeView
    ml: MLView | None
    quality: QualityView
    session: SessionLike
    prev_setup_side: Side | None = None  # the setup side on the bar before, for the confirmation gate
    recent_closes: tuple[float, ...] = ()  # last closes, oldest first, for the bar flash-crash check
    indicators: dict[str, float] = field(default_factory=dict)  # rsi_14, macd_hist, ema_9, ema_21, ...
    h1_bias: int = 0  # +1 bullish, -1 bearish, 0 neutral (optional gate)
    model_version: str = ""
    strategy_edge: str = ""  # the active model's out-of-sample verdict in words ("" = not known)

    @property
    def bar_close_time(self) -> datetime:
        from datetime import timedelta

        return self.bar_time + timedelta(minutes=15)
