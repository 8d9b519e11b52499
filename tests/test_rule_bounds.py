"""Each exit and position-manager rule is defined once, as the bounds it declares (`trading.bounds`):
every rule in the lists declares them, its verdict is those bounds checked against the tick, the rules
said to read only the bar do, strict comparisons are exact, and the backtest's hold band is folded from
the declarations alone (a rule added without bounds fails; one added with bounds moves the band)."""

from __future__ import annotations

import math
import random
from dataclasses import replace
from datetime import timedelta

import pytest

import trading.exits as exits
import trading.position_manager as position_manager
from tests.test_hold_band import T0, P, random_case, view
from trading.bounds import (
    Always,
    At,
    AtLeast,
    AtMost,
    Bound,
    DrawsDown,
    GivesBack,
    LossReaches,
    MoveAtLeast,
    Rule,
    Within,
    above,
    below,
    first_fired,
    rule,
)
from trading.exits import EXIT_RULES, evaluate_exits
from trading.hold_band import OPEN, Band, Closes, bar_band, fold, held_until, hold_band
from trading.position_inputs import Held, held_at
from trading.position_manager import PM_RULES, PMKind, manage_position

KINDS = (AtMost, AtLeast, Within, MoveAtLeast, GivesBack, DrawsDown, LossReaches, Always)


def random_views(seed: int, n: int) -> list[Held]:
    """Views at random instants (open 0-9 h, the closes 0-5 h away or unknown), live and stretch."""
    rng = random.Random(seed)
    views = []
    for _ in range(n):
        pos, inputs, tracker = random_case(rng)
        now = T0 + timedelta(minutes=rng.uniform(0, 540))
        daily = None if rng.random() < 0.1 else rng.uniform(0, 300)
        weekly = None if daily is None else daily + rng.choice([0, 0, 1440, 4320])
        live = held_at(pos, inputs, P, tracker, now, daily, weekly)
        views.append(live)
        if daily is not None and weekly is not None:
            closes = Closes.seen(int(now.timestamp() * 1000), daily, weekly)
            assert closes is not None
            views.append(
                held_until(pos, inputs, P, tracker, int(now.timestamp() * 1000), closes, stretch=True)
            )
    return views


def test_every_rule_in_the_lists_declares_bounds_of_a_known_kind() -> None:
    names = [r.__name__ for r in (*EXIT_RULES, *PM_RULES)]
    assert len(set(names)) == len(names) == 16
    declared = {name: 0 for name in names}
    for v in random_views(1, 400):
        for r in (*EXIT_RULES, *PM_RULES):
            assert isinstance(r, Rule), r
            bounds = r.declare(v)
            assert isinstance(bounds, tuple)
            for b in bounds:
                assert isinstance(b, KINDS), (r, b)
                declared[r.__name__] += 1
    assert all(declared.values()), declared  # every rule declares a bound somewhere


def test_the_verdicts_are_the_first_declared_bound_that_fires() -> None:
    """`evaluate_exits` and `manage_position` are the rules' declarations checked in order, nothing else."""
    rng = random.Random(2)
    fired: set[str] = set()
    for v in random_views(3, 300):
        if v.stretch:
            continue
        for _ in range(20):
            profit = round(rng.uniform(-4, 5) * v.unit, 2)
            move = profit / max(v.unit, 1e-9) * v.inputs.atr
            price = v.position.open_price + move * v.position.side.sign
            at = At(profit, price, move, max(profit, v.tracker.peak_profit))
            verdict = evaluate_exits(v, at)
            expect = next(
                ((r.__name__, f) for r in EXIT_RULES if (f := first_fired(r.declare(v), v, at)) is not None),
                None,
            )
            if expect is None:
                assert verdict is None
            else:
                assert verdict is not None and (verdict.name, verdict.reason) == (expect[0], expect[1].reason)
            action = manage_position(v, at)
            expect_pm = next(
                ((r, f) for r in PM_RULES if (f := first_fired(r.declare(v), v, at)) is not None), None
            )
            if expect_pm is None:
                assert action.kind is PMKind.HOLD
            else:
                r, f = expect_pm
                assert (action.name, action.reason, action.new_sl) == (r.__name__, f.reason, f.new_sl)
                assert action.kind is (PMKind.MOVE_SL if r.moves_stop else PMKind.CLOSE)
            fired.update(x for x in (verdict and verdict.name, action.name) if x and x != "hold")
    assert len(fired) >= 10, fired


def test_rules_said_to_read_the_bar_only_declare_the_same_for_any_tracker_or_clock() -> None:
    views = random_views(4, 300)
    by_bar: dict[tuple[int, float], list[Held]] = {}
    for v in views:
        by_bar.setdefault((id(v.inputs), v.position.sl), []).append(v)
    rng = random.Random(5)
    for v in views:
        other = held_at(
            v.position, v.inputs, P, random_case(rng)[2], T0 + timedelta(hours=rng.uniform(0, 9)), 10.0, 20.0
        )
        for r in (*EXIT_RULES, *PM_RULES):
            if r.per_bar:
                assert r.declare(v) == r.declare(other), r


def test_rules_fixed_for_the_bar_not_said_to_read_the_stop_declare_the_same_for_any_stop() -> None:
    """`Held.declare` keeps their bounds across the stop's moves (`Rule.reads_stop`), so they must not read it."""
    rng = random.Random(6)
    fixed = [r for r in (*EXIT_RULES, *PM_RULES) if r.per_bar]
    assert {r.__name__ for r in fixed if r.reads_stop} == {"breakeven", "trailing_stop"}
    for v in random_views(7, 300):
        pos = v.position
        for sl in (0.0, round(pos.open_price + rng.uniform(-20, 20), 2)):
            moved = replace(v, position=replace(pos, sl=sl), bar=None)
            for r in fixed:
                if not r.reads_stop:
                    assert r.declare(v) == r.declare(moved), r


def test_a_view_keeps_the_bar_bounds_of_a_rule_not_reading_the_stop_across_its_moves() -> None:
    """The kept bounds are those the rule declares for the moved stop; a rule reading the stop declares
    again for it."""
    rng = random.Random(8)
    fixed = [r for r in (*EXIT_RULES, *PM_RULES) if r.per_bar]
    for v in random_views(9, 200):
        for r in fixed:
            v.declare(r)
        moved = replace(
            v, position=replace(v.position, sl=round(v.position.sl + rng.uniform(-3, 3), 2)), bar=None
        )
        for r in fixed:
            assert moved.declare(r) == r.declare(moved), r
            if not r.reads_stop:
                assert moved.declare(r) is v.declare(r), r  # kept, not declared again


def test_strict_bounds_are_exact() -> None:
    for x in (0.0, -12.34, 7.1, 1e-3):
        lt, gt = below(x, ""), above(x, "")
        just_under, just_over = math.nextafter(x, -math.inf), math.nextafter(x, math.inf)
        assert not lt.hit(At(x, 0, 0, 0)) and lt.hit(At(just_under, 0, 0, 0))
        assert not gt.hit(At(x, 0, 0, 0)) and gt.hit(At(just_over, 0, 0, 0))


def test_fold_by_kind() -> None:
    band = fold(
        [
            AtMost(-20.0),
            AtMost(-30.0),
            LossReaches(140.0, 150.0),
            AtLeast(40.0),
            AtLeast(25.0),
            Within(5.0, 15.0),
            Within(20.0, 30.0),
            Within(1.0, 2.0),  # a third gap: the second slot covers both
            Within(3.0, 3.0),  # empty
            MoveAtLeast(6.0),
            MoveAtLeast(4.0, 1.0),
            GivesBack(30.0, 0.6),
            DrawsDown(30.0, 0.3),
        ]
    )
    assert band == Band(-10.0, 25.0, 5.0, 15.0, 1.0, 30.0, 4.0, 30.0, 0.6, 30.0, 0.7)
    assert fold([AtMost(-1.0), Always()]) is None
    assert fold([]) == OPEN


def _live_view() -> Held:
    pos, inputs, tracker = random_case(random.Random(7))
    while inputs.unit <= 0:
        pos, inputs, tracker = random_case(random.Random(8))
    return view(pos, inputs, tracker, 1.0)


def test_the_band_is_folded_from_the_declarations_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    v = _live_view()
    base = bar_band(v)
    assert base is not None and hold_band(base, v) is not None
    # no rules, no bounds: the band clears everything
    monkeypatch.setattr(exits, "EXIT_RULES", ())
    monkeypatch.setattr(position_manager, "PM_RULES", ())
    assert bar_band(v) == OPEN and hold_band(OPEN, v) == OPEN

    # a new rule's bounds move the band, per bar or per view
    @rule(per_bar=True)
    def new_floor(_v: Held) -> tuple[Bound, ...]:
        return (AtMost(-7.0, why="new floor"), MoveAtLeast(3.0, why="new move"))

    @rule()
    def new_cap(_v: Held) -> tuple[Bound, ...]:
        return (AtLeast(9.0, why="new cap"),)

    monkeypatch.setattr(exits, "EXIT_RULES", (new_floor, new_cap))
    base = bar_band(v)
    assert base == OPEN._replace(lo=-7.0, move_hi=3.0)
    assert hold_band(base, v) == OPEN._replace(lo=-7.0, move_hi=3.0, hi=9.0)
    # and its verdict is its bounds
    verdict = evaluate_exits(v, At(10.0, 0.0, 0.0, 10.0))
    assert verdict is not None and (verdict.name, verdict.reason) == ("new_cap", "new cap")


def test_a_rule_without_declared_bounds_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    v = _live_view()

    def verdict_only(_v: Held) -> bool:  # a rule written the old way: a verdict, no bounds
        return False

    monkeypatch.setattr(exits, "EXIT_RULES", (*EXIT_RULES, verdict_only))
    with pytest.raises(TypeError, match="declares no bounds"):
        bar_band(v)


def test_a_bound_of_a_kind_the_band_does_not_know_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    class Odd(Bound):
        __slots__ = ()

        def hit(self, at: At) -> bool:
            return at.profit == 13.0

    @rule(per_bar=True)
    def odd(_v: Held) -> tuple[Bound, ...]:
        return (Odd(why="odd"),)

    monkeypatch.setattr(position_manager, "PM_RULES", (*PM_RULES, odd))
    with pytest.raises(TypeError, match="no band for a bound of kind Odd"):
        bar_band(_live_view())


def test_covering_bounds_lose_no_verdict() -> None:
    """Where a rule's bound only covers its verdict (`then` decides), the verdict is still the rule's
    plain formula: the trailing stop (the bound's edge derived from the stop) on a cent grid, and the
    TP-probability exit (the bound's top derived from the score) on random views."""
    from trading.exits import tp_probability
    from trading.position_manager import stop_improves, trailing_stop

    rng = random.Random(9)
    trails = lows = 0
    for v in random_views(10, 200):
        if v.stretch or v.inputs.atr <= 0:
            continue
        pos, p, atr = v.position, v.params, v.inputs.atr
        step = p.trail_step_atr * atr
        if v.inputs.last_bar_range > p.impulse_range_atr * atr:
            step = min(step, p.impulse_step_atr * atr)
        bounds = trailing_stop.declare(v)
        for cents in range(0, int(6 * atr * 100), 7):
            move = cents / 100
            price = round(pos.open_price + pos.side.sign * move, 2)
            move = (price - pos.open_price) * pos.side.sign
            plain = move >= p.trail_start_atr * atr and stop_improves(
                pos, round(price - pos.side.sign * step, 2)
            )
            fired = first_fired(bounds, v, At(0.0, price, move, 0.0))
            assert (fired is not None) == plain, (pos, price)
            trails += plain
        # the TP-probability branch: at or above its floor, a close exactly when the score is low
        a = p.tp_probability_atr * v.unit
        for _ in range(30):
            profit = round(rng.uniform(0.5, 3) * a, 2)
            at = At(profit, 0.0, 0.0, 0.0)  # no peak: the peak protection stays out
            prob = tp_probability(
                profit,
                v.inputs.tp_profit,
                v.momentum or 0.0,
                [1 - x for x in v.tracker.ml_against],
                v.hours_open,
            )
            low = profit >= a and prob < p.tp_probability_below
            got = first_fired(
                tuple(b for b in exits.smart_take_profit.declare(v) if isinstance(b, Within)), v, at
            )
            assert (got is not None) == low, (profit, prob)
            lows += low
    assert trails > 100 and lows > 20, (trails, lows)  # both verdicts are met, not only holds
