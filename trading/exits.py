"""Software exit rules (decision 6): the DOC's conditions, thresholds in ATR money units.

`PositionTracker` keeps what a rule needs of a position's history (profit samples taken every
`profit_sample_seconds`, the peak, ML samples, reversal warnings, the stall counter); the rules
themselves are pure functions of an `ExitContext` and return an `ExitVerdict`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from trading.domain import Position
from trading.parameters import StrategyParams


@dataclass(frozen=True, slots=True)
class ExitVerdict:
    name: str
    close: bool
    reason: str


@dataclass(slots=True)
class PositionTracker:
    """Per-ticket memory of a position between ticks (rebuilt after a restart from the next samples)."""

    ticket: int
    profits: deque[float] = field(default_factory=lambda: deque(maxlen=30))
    ml_against: deque[float] = field(default_factory=lambda: deque(maxlen=10))
    peak_profit: float = 0.0
    reversal_warnings: int = 0
    stall_count: int = 0
    last_sample: datetime | None = None

    def observe(
        self, profit: float, now: datetime, ml_against: float | None, params: StrategyParams, unit: float
    ) -> None:
        """Take a sample when the sample period has passed; update peak, warnings and stall count."""
        self.peak_profit = max(self.peak_profit, profit)
        due = (
            self.last_sample is None
            or (now - self.last_sample).total_seconds() >= params.profit_sample_seconds
        )
        if not due:
            return
        self.last_sample = now
        self.profits.append(profit)
        if ml_against is not None:
            self.ml_against.append(ml_against)
            if ml_against >= params.early_exit_ml and profit < 0:
                self.reversal_warnings += 1
            elif ml_against < 0.5:
                self.reversal_warnings = 0
        if stalled(self.profits, profit, params, unit):
            self.stall_count += 1
        else:
            self.stall_count = 0


def momentum(profits: deque[float] | list[float], scale: float) -> float:
    """clamp((p[-1] - p[-5]) / scale × 50, ±100) over the last ≤ 5 samples; 0 with fewer than 3."""
    recent = list(profits)[-5:]
    if len(recent) < 3 or scale <= 0:
        return 0.0
    return max(-100.0, min(100.0, (recent[-1] - recent[0]) / scale * 50))


def stalled(profits: deque[float], profit: float, params: StrategyParams, unit: float) -> bool:
    if len(profits) < params.stall_samples:
        return False
    last = list(profits)[-params.stall_samples :]
    return max(last) - min(last) < params.stall_range_atr * unit and profit < -params.stall_loss_atr * unit


def tp_trend_points(ml_for: list[float]) -> float:
    """The ML trend's share of `tp_probability` (0-20): how the last three ML samples moved for the position."""
    return max(0.0, min(20.0, (ml_for[-1] - ml_for[-3] + 0.3) / 0.6 * 20)) if len(ml_for) >= 3 else 10.0


def tp_probability(
    profit: float, tp_profit: float | None, mom: float, ml_for: list[float], hours: float
) -> float:
    """The DOC's take-profit probability score, 0-100 (50 when the TP profit is unknown)."""
    if not tp_profit or tp_profit <= 0:
        return 50.0
    progress = profit / tp_profit * 100
    score = (
        min(40.0, 0.4 * progress) + (mom + 100) / 200 * 30 + tp_trend_points(ml_for) - min(10.0, 2 * hours)
    )
    return max(0.0, min(100.0, score))


@dataclass(frozen=True, slots=True)
class ExitContext:
    position: Position
    now: datetime
    profit: float  # net floating P/L in account currency
    unit: float  # ATR money units: ATR × money per price unit for this volume
    balance: float
    params: StrategyParams
    tracker: PositionTracker
    ml_against: float | None  # ML probability of the opposite direction (None without a model)
    tp_profit: float | None  # money at the broker TP, when there is one
    daily_loss: float  # realised loss today (positive number)
    daily_limit: float  # money
    minutes_to_weekly_close: float | None

    @property
    def max_loss(self) -> float:
        return self.balance * self.params.max_loss_pct / 100

    @property
    def momentum(self) -> float:
        return momentum(self.tracker.profits, self.params.momentum_scale_atr * self.unit)

    @property
    def hours_open(self) -> float:
        return (self.now - self.position.open_time).total_seconds() / 3600

    @property
    def growing(self) -> bool:
        p = list(self.tracker.profits)
        return len(p) >= 2 and p[-1] > p[-2]


_HOLDS: dict[str, ExitVerdict] = {}


def _hold(name: str) -> ExitVerdict:
    # one immutable "hold" verdict per rule: the exits run on every step of an open position
    verdict = _HOLDS.get(name)
    if verdict is None:
        verdict = _HOLDS[name] = ExitVerdict(name, False, "")
    return verdict


def smart_take_profit(c: ExitContext) -> ExitVerdict:
    p, u, profit, mom = c.params, c.unit, c.profit, c.momentum
    if profit >= p.tp_hard_atr * u:
        return ExitVerdict(
            "smart_take_profit", True, f"hard TP: profit ${profit:.2f} ≥ {p.tp_hard_atr:.2f} ATR"
        )
    if profit >= p.tp_momentum_atr * u and mom < p.tp_momentum_below:
        return ExitVerdict("smart_take_profit", True, f"momentum TP: ${profit:.2f} with momentum {mom:.0f}")
    peak = c.tracker.peak_profit
    if peak > p.tp_peak_atr * u and profit < p.tp_peak_keep * peak:
        return ExitVerdict(
            "smart_take_profit",
            True,
            f"peak protection: ${profit:.2f} < {p.tp_peak_keep:.0%} of peak ${peak:.2f}",
        )
    if profit >= p.tp_probability_atr * u:
        ml_for = [1 - x for x in c.tracker.ml_against]
        prob = tp_probability(profit, c.tp_profit, mom, ml_for, c.hours_open)
        if prob < p.tp_probability_below:
            return ExitVerdict("smart_take_profit", True, f"TP probability {prob:.0f}% with ${profit:.2f}")
    return _hold("smart_take_profit")


def early_exit(c: ExitContext) -> ExitVerdict:
    p, u = c.params, c.unit
    if (
        p.early_exit_min_atr * u <= c.profit < p.early_exit_max_atr * u
        and c.momentum < p.early_exit_momentum
        and c.ml_against is not None
        and c.ml_against >= p.early_exit_ml
    ):
        return ExitVerdict(
            "early_exit", True, f"small profit ${c.profit:.2f} reversing (ML {c.ml_against:.0%} against)"
        )
    return _hold("early_exit")


def early_cut(c: ExitContext) -> ExitVerdict:
    p = c.params
    if c.profit < 0 and c.momentum < p.early_cut_momentum and -c.profit >= p.early_cut_loss_frac * c.max_loss:
        return ExitVerdict("early_cut", True, f"loss ${-c.profit:.2f} with momentum {c.momentum:.0f}")
    return _hold("early_cut")


def ml_reversal(c: ExitContext) -> ExitVerdict:
    p, u, loss = c.params, c.unit, -c.profit
    if (
        c.ml_against is not None
        and c.ml_against >= p.reversal_ml
        and loss > p.reversal_loss_frac * c.max_loss
        and loss > p.reversal_min_loss_atr * u
    ):
        return ExitVerdict("ml_reversal", True, f"ML {c.ml_against:.0%} against with loss ${loss:.2f}")
    if c.tracker.reversal_warnings >= p.reversal_warnings and loss > p.reversal_warning_loss_atr * u:
        return ExitVerdict(
            "ml_reversal", True, f"{c.tracker.reversal_warnings} reversal warnings, loss ${loss:.2f}"
        )
    return _hold("ml_reversal")


def max_loss(c: ExitContext) -> ExitVerdict:
    limit = c.params.max_loss_frac * c.max_loss
    if c.profit <= -limit:
        return ExitVerdict(
            "max_loss",
            True,
            f"loss ${-c.profit:.2f} ≥ ${limit:.2f} ({c.params.max_loss_frac:.0%} of max loss)",
        )
    return _hold("max_loss")


def stall(c: ExitContext) -> ExitVerdict:
    if c.tracker.stall_count >= c.params.stall_count_to_close:
        return ExitVerdict("stall", True, f"stalled in loss for {c.tracker.stall_count} samples")
    return _hold("stall")


def daily_limit(c: ExitContext) -> ExitVerdict:
    if c.profit < 0 and c.daily_limit > 0 and c.daily_loss + -c.profit >= c.daily_limit:
        return ExitVerdict(
            "daily_limit", True, f"today's loss ${c.daily_loss:.2f} + ${-c.profit:.2f} reaches the limit"
        )
    return _hold("daily_limit")


def weekend(c: ExitContext) -> ExitVerdict:
    m = c.minutes_to_weekly_close
    if m is None or m > c.params.weekend_minutes_before_close:
        return _hold("weekend")
    if c.profit > 0 or -c.profit < c.params.weekend_small_loss_atr * c.unit:
        return ExitVerdict("weekend", True, f"{m:.0f} min to the weekly close, P/L ${c.profit:.2f}")
    return _hold("weekend")


def time_limit(c: ExitContext) -> ExitVerdict:
    p, u, h = c.params, c.unit, c.hours_open
    if h >= p.time_hard_hours:
        return ExitVerdict("time_limit", True, f"open {h:.1f} h ≥ {p.time_hard_hours:g} h")
    if h >= p.time_mid_hours and (c.profit < p.time_mid_profit_atr * u or c.momentum < 0):
        return ExitVerdict("time_limit", True, f"open {h:.1f} h with ${c.profit:.2f}")
    if h >= p.time_soft_hours and c.profit < p.time_soft_profit_atr * u and not c.growing:
        return ExitVerdict("time_limit", True, f"open {h:.1f} h, ${c.profit:.2f} and not growing")
    return _hold("time_limit")


ExitRule = Callable[[ExitContext], ExitVerdict]

EXIT_RULES: tuple[ExitRule, ...] = (
    smart_take_profit,
    early_exit,
    early_cut,
    ml_reversal,
    max_loss,
    stall,
    daily_limit,
    weekend,
    time_limit,
)


def evaluate_exits(ctx: ExitContext) -> ExitVerdict | None:
    """The first rule that closes, in priority order, or None to hold."""
    for rule in EXIT_RULES:
        verdict = rule(ctx)
        if verdict.close:
            return verdict
    return None
