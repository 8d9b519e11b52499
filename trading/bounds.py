"""What an exit or position-manager rule fires on, declared once: the rule reads what is fixed between
profit samples (the bar's inputs, the tracker, the clock) and returns `Bound`s; its live verdict is those
bounds checked against the tick (`first_fired`), and the backtest's hold band is folded from the same
bounds (`trading.hold_band`).

A bound names what it fires on: profit <= x, profit >= x, lo <= profit < hi, a favourable move >= x, a
running peak given back, a loss bringing a running total to a limit, or whatever the price. A rule whose
verdict reads more than that (the TP probability score, the stop's distance, the trailing stop's new
level) declares a bound that covers its verdict and decides the rest in `then`, on the ticks the bound hits.

What a rule may assume of its view (`trading.position_inputs.Held`), so that a band folded from its
declaration holds: in a stretch (`Held.stretch`) the tracker may take any samples, so a rule reading
them declares what covers all they may bring; and a stretch's view reads the clock at its last tick, so
a rule on the clock must only tighten as time runs (its bounds later cover its bounds earlier).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

from trading.immutable import immutable
from trading.parameters import StrategyParams


class View(Protocol):
    """What a bound reads of the rule's view (`trading.position_inputs.Held`, which imports this module:
    the rules' own functions take `Held` itself, so the callables below name the view `Any`)."""

    @property
    def params(self) -> StrategyParams: ...


class At(NamedTuple):
    """The tick a rule is judged on."""

    profit: float  # net floating P/L in account money
    price: float  # the price the position would close at
    move: float  # the price move in the position's favour since the entry
    peak: float  # the running peak profit (the tracker's, this tick included)


class Fired(NamedTuple):
    reason: str
    new_sl: float = 0.0  # for a rule that moves the stop


Then = Callable[[Any, At], "Fired | None"]


@immutable(kw_only=True)
class Bound:
    """A region of ticks a rule fires on. `why` is the reason, `str.format`ted with the tick (profit,
    loss, peak, move, price), the rule's view `v` and its parameters `p` only when it fires; `then`, when
    given, decides on the ticks the bound hits (the bound then covers the verdict) and words the reason
    itself. `immutable`: rules declare bounds on every step, and a bound is never changed once declared."""

    why: str = ""
    then: Then | None = None

    def hit(self, at: At) -> bool:
        raise NotImplementedError

    def fired(self, v: View, at: At) -> Fired | None:
        if self.then is not None:
            return self.then(v, at)
        reason = self.why.format(
            profit=at.profit, loss=-at.profit, peak=at.peak, move=at.move, price=at.price, v=v, p=v.params
        )
        return Fired(reason, self.new_sl())

    def new_sl(self) -> float:
        return 0.0


@immutable
class AtMost(Bound):
    """profit <= x (`below` for profit < x)."""

    x: float

    def hit(self, at: At) -> bool:
        return at.profit <= self.x


@immutable
class AtLeast(Bound):
    """profit >= x (`above` for profit > x)."""

    x: float

    def hit(self, at: At) -> bool:
        return at.profit >= self.x


@immutable
class Within(Bound):
    """lo <= profit < hi."""

    lo: float
    hi: float

    def hit(self, at: At) -> bool:
        return self.lo <= at.profit < self.hi


@immutable
class MoveAtLeast(Bound):
    """A favourable price move >= x; `stop` the new stop it sets (for a rule that moves the stop)."""

    x: float
    stop: float = 0.0

    def hit(self, at: At) -> bool:
        return at.move >= self.x

    def new_sl(self) -> float:
        return self.stop


@immutable
class GivesBack(Bound):
    """The running peak above `arm` and the profit below `keep` × peak."""

    arm: float
    keep: float

    def hit(self, at: At) -> bool:
        return at.peak > self.arm and at.profit < self.keep * at.peak


@immutable
class DrawsDown(Bound):
    """The running peak above `arm` and more than `share` of it given back."""

    arm: float
    share: float

    def hit(self, at: At) -> bool:
        return at.peak > self.arm and (at.peak - at.profit) / at.peak > self.share

    @property
    def keep(self) -> float:
        return 1 - self.share


@immutable
class LossReaches(Bound):
    """A loss that brings `spent` (a running total of losses) to `limit`."""

    spent: float
    limit: float

    def hit(self, at: At) -> bool:
        return at.profit < 0 and self.spent + -at.profit >= self.limit


@immutable
class Always(Bound):
    """Fires whatever the price."""

    def hit(self, at: At) -> bool:
        return True


Bounds = tuple[Bound, ...]
Declare = Callable[[Any], Bounds]


class Rule:
    """A rule: its name, the bounds it declares for a view of the position, whether those read only what
    is fixed for the bar (the inputs, the stop: `per_bar`, so the backtest folds them once a bar),
    whether it moves the stop rather than closing (`moves_stop`), and whether its bounds read the
    position's stop (`reads_stop`: by default a rule that moves it; a rule fixed for the bar that does
    not keeps its bounds for the bar's inputs across the stop's moves)."""

    def __init__(
        self, declare: Declare, *, per_bar: bool, moves_stop: bool = False, reads_stop: bool | None = None
    ) -> None:
        self.declare = declare
        self.per_bar = per_bar
        self.moves_stop = moves_stop
        self.reads_stop = moves_stop if reads_stop is None else reads_stop
        self.__name__ = declare.__name__
        self.__doc__ = declare.__doc__

    def __repr__(self) -> str:
        return f"Rule({self.__name__})"


def rule(
    *, per_bar: bool = False, moves_stop: bool = False, reads_stop: bool | None = None
) -> Callable[[Declare], Rule]:
    """Declare a rule: `@rule()` over a function from the view to its bounds."""
    return lambda declare: Rule(declare, per_bar=per_bar, moves_stop=moves_stop, reads_stop=reads_stop)


def first_fired(bounds: Bounds, v: View, at: At) -> Fired | None:
    """The first of a rule's bounds that fires on the tick (in the order the rule declared them)."""
    for bound in bounds:
        if bound.hit(at):
            fired = bound.fired(v, at)
            if fired is not None:
                return fired
    return None


def below(x: float, why: str, then: Then | None = None) -> AtMost:
    """profit < x, exactly (the float just under x)."""
    return AtMost(math.nextafter(x, -math.inf), why=why, then=then)


def above(x: float, why: str, then: Then | None = None) -> AtLeast:
    """profit > x, exactly (the float just over x)."""
    return AtLeast(math.nextafter(x, math.inf), why=why, then=then)
