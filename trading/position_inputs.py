"""What the position manager and the exits read of an open position: `PositionInputs`, what only a new
analysis, risk state, balance or stop can change (computed once a bar, the engine caches it, read on
every tick); and `Held`, the rules' view of the position at one instant or for a stretch of ticks."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from trading.analysis import MarketAnalysis
from trading.bounds import At, Bounds, Fired, Rule, first_fired
from trading.domain import Position, Side, SymbolSpec
from trading.immutable import immutable
from trading.parameters import StrategyParams
from trading.risk.modes import RiskLimits, RiskState, limit_use
from trading.tracker import PositionTracker, momentum, warns

BarBounds = dict[Rule | tuple[Rule, float], Bounds]  # by rule, and by stop too for one reading it


@immutable
class PositionInputs:
    """The inputs the rules read of a position, fixed for the bar (built for each position on each bar:
    `immutable`, its `memo` dict filled as the rules declare)."""

    atr: float  # the bar's ATR (a fallback of 6 minimum stop distances before the first analysis)
    unit: float  # ATR in money for the position's volume
    ml_against: float | None  # the model's probability of the opposite side
    regime_dangerous: bool
    rsi: float | None
    closes: tuple[float, ...]  # the last bars' closes, oldest first
    last_bar_range: float
    tp_profit: float | None  # the profit at the take-profit (None without one)
    daily_loss: float
    daily_limit: float
    balance: float
    urgency: int  # the position manager's urgency score (`urgency_score`)
    # the bounds the rules fixed for the bar declared, kept with the bar's inputs (`Held.declare`): by
    # the entry, volume and side, for the parameters they were declared with
    memo: dict[tuple[float, float, bool], tuple[StrategyParams, BarBounds]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def bar_bounds(self, pos: Position, params: StrategyParams) -> BarBounds:
        """The bounds the rules fixed for the bar have declared for `pos` with these inputs and
        `params`, by rule, and by rule and stop for a rule reading the stop (`Rule.reads_stop`: only
        those declare again when the stop moves), filled as they declare them."""
        key = (pos.open_price, pos.volume, pos.side is Side.BUY)  # (an enum hashes slowly)
        known = self.memo.get(key)
        if known is None or known[0] is not params:
            known = self.memo[key] = (params, {})
        return known[1]


def urgency_score(
    side: Side, regime_dangerous: bool, ml_against: float | None, rsi: float | None, closes: Sequence[float]
) -> int:
    """The position manager's urgency: a dangerous regime, the model against, RSI stretched for the
    position, and the trend and momentum of the last closes against it."""
    score = 3 if regime_dangerous else 0
    if ml_against is not None and ml_against > 0.75:
        score += 2
    if rsi is not None and ((side is Side.BUY and rsi > 75) or (side is Side.SELL and rsi < 25)):
        score += 2
    if len(closes) >= 20:
        ma5, ma20 = sum(closes[-5:]) / 5, sum(closes[-20:]) / 20
        trend = 1 if ma5 > ma20 * 1.001 else -1 if ma5 < ma20 * 0.999 else 0
        roc = (closes[-1] / closes[-6] - 1) * 100 if len(closes) >= 6 and closes[-6] > 0 else 0.0
        mom = 1 if roc > 0.3 else -1 if roc < -0.3 else 0
        if trend == -side.sign and mom == -side.sign:
            score += 3
    return score


def position_inputs(
    pos: Position,
    a: MarketAnalysis | None,
    state: RiskState,
    balance: float,
    params: StrategyParams,
    limits: RiskLimits,
    spec: SymbolSpec,
) -> PositionInputs:
    atr = a.atr if a and a.atr > 0 else params.min_sl_distance * 6
    unit = atr * spec.money_per_price_unit(pos.volume)
    ml_against = a.ml.prob(pos.side.opposite) if a and a.ml else None
    tp_profit = abs(pos.tp - pos.open_price) * spec.money_per_price_unit(pos.volume) if pos.tp else None
    use = limit_use(state, limits, balance)
    dangerous = bool(a and a.regime.dangerous)
    rsi = a.indicators.get("rsi_14") if a else None
    closes = a.recent_closes if a else ()
    return PositionInputs(
        atr=atr,
        unit=unit,
        ml_against=ml_against,
        regime_dangerous=dangerous,
        rsi=rsi,
        closes=closes,
        last_bar_range=float(a.indicators.get("bar_range", 0.0)) if a else 0.0,
        tp_profit=tp_profit,
        daily_loss=use.daily_loss,
        daily_limit=use.daily_limit,
        balance=balance,
        urgency=urgency_score(pos.side, dangerous, ml_against, rsi, closes),
    )


@dataclass(slots=True)
class Held:
    """What the rules read of an open position, fixed between two profit samples (a plain dataclass: a
    view is built on every step, and never changed but for its `bar` lookup): at one instant
    (`stretch` False: the rules' live verdict), or for a stretch of ticks up to the clock given, across
    which the tracker may take samples (`stretch` True: momentum and growth are None, any (the momentum
    at least `momentum_floor`, the stall count at most `stall_top`, when the samples are known), and
    the rules declare the bounds that hold whatever those samples bring: the backtest's hold band)."""

    position: Position
    inputs: PositionInputs
    params: StrategyParams
    tracker: PositionTracker
    hours_open: float
    minutes_to_daily_close: float | None
    minutes_to_weekly_close: float | None
    momentum: float | None  # of the tracker's profit samples (None: any at or above `momentum_floor`)
    growing: bool | None  # the last profit sample above the one before (None: either)
    stretch: bool = False
    momentum_floor: float = -100.0  # the lowest momentum of a stretch's samples (-100: any)
    stall_top: int | None = None  # the highest stall count a stretch's samples bring (None: any)
    # the bar's declared bounds (`PositionInputs.bar_bounds`), looked up on the view's first `declare`
    bar: BarBounds | None = field(default=None, compare=False, repr=False)

    @property
    def unit(self) -> float:
        return self.inputs.unit

    @property
    def max_loss(self) -> float:
        """The most a trade may lose, in money (`max_loss_pct` of the balance)."""
        return self.inputs.balance * self.params.max_loss_pct / 100

    @property
    def loss_limit(self) -> float:
        """The loss `max_loss` closes at: `max_loss_frac` of `max_loss`."""
        return self.params.max_loss_frac * self.max_loss

    @property
    def minutes_to_close(self) -> float:
        """Minutes to the nearer of the daily and weekly closes (inf: neither known)."""
        return min(
            (m for m in (self.minutes_to_daily_close, self.minutes_to_weekly_close) if m is not None),
            default=float("inf"),
        )

    def declare(self, rule: Rule) -> Bounds:
        """The rule's bounds for this view; a rule fixed for the bar (`Rule.per_bar`) declares them once
        for the bar's inputs (and the position's stop, when it reads it)."""
        if not rule.per_bar:
            return rule.declare(self)
        bar = self.bar
        if bar is None:
            bar = self.bar = self.inputs.bar_bounds(self.position, self.params)
        key = (rule, self.position.sl) if rule.reads_stop else rule
        bounds = bar.get(key)
        if bounds is None:
            bounds = bar[key] = rule.declare(self)
        return bounds

    def first_to_fire(self, rules: Iterable[Rule], at: At) -> tuple[Rule, Fired] | None:
        """The first of `rules` (in their order) whose bounds fire on the tick, and what it fired."""
        for rule in rules:
            bounds = self.declare(rule)
            if not bounds:  # (most rules declare nothing most of the time)
                continue
            fired = first_fired(bounds, self, at)
            if fired is not None:
                return rule, fired
        return None

    def momentum_below(self, level: float) -> bool:
        """Whether the momentum is (in a stretch: may be) below `level`."""
        if self.momentum is None:
            return self.momentum_floor < level
        return self.momentum < level

    def stalls_reach(self, count: int) -> bool:
        """Whether, in a stretch, a sample may bring the stall count to `count`."""
        return self.stretch and (self.stall_top is None or self.stall_top >= count)

    def warnings_reach(self, count: int) -> bool:
        """Whether the reversal warnings have reached `count` (in a stretch: may reach it, when the
        model is sure enough of the other side that the samples count warnings)."""
        if self.tracker.reversal_warnings >= count:
            return True
        ml = self.inputs.ml_against
        return self.stretch and ml is not None and warns(ml, self.params)


def held_at(
    pos: Position,
    inputs: PositionInputs,
    params: StrategyParams,
    tracker: PositionTracker,
    now: datetime,
    minutes_to_daily_close: float | None,
    minutes_to_weekly_close: float | None,
) -> Held:
    """The rules' view of `pos` at `now` (the tracker has taken the tick's sample)."""
    profits = tracker.profits
    return Held(
        position=pos,
        inputs=inputs,
        params=params,
        tracker=tracker,
        hours_open=(now - pos.open_time).total_seconds() / 3600,
        minutes_to_daily_close=minutes_to_daily_close,
        minutes_to_weekly_close=minutes_to_weekly_close,
        momentum=momentum(profits, params.momentum_scale_atr * inputs.unit),
        growing=len(profits) >= 2 and profits[-1] > profits[-2],
    )
