"""The hold bands are conservative: on random positions, bar inputs, tracker histories and price paths,
every tick a band clears is one on which the position manager holds and no exit closes, judged by the
rules themselves (as `TradingEngine.judge` calls them). And a band is not empty: most quiet ticks clear.
The bands are folded from the rules' own declarations only (`trading.bounds`)."""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from trading.bounds import At
from trading.domain import Position, Side, SymbolSpec
from trading.exits import PositionTracker, evaluate_exits
from trading.hold_band import Band, Closes, bar_band, held_until, hold_band, scan_scalars, stop_moves
from trading.parameters import StrategyParams
from trading.position_inputs import Held, PositionInputs, held_at, urgency_score
from trading.position_manager import PMKind, manage_position
from trading.quiet_rows import scan_rows
from trading.tracker import highest_stall_count, lowest_momentum, momentum

P = StrategyParams()
SPEC = SymbolSpec()
T0 = datetime(2024, 3, 5, 9, 0, tzinfo=UTC)


def random_case(rng: random.Random) -> tuple[Position, PositionInputs, PositionTracker]:
    side = rng.choice([Side.BUY, Side.SELL])
    open_price = round(rng.uniform(1800, 2400), 2)
    atr = rng.choice([rng.uniform(0.3, 8.0), 0.0]) if rng.random() < 0.05 else rng.uniform(0.3, 8.0)
    volume = rng.choice([0.01, 0.02, 0.05, 0.1, 0.25])
    sl_dist = rng.uniform(-1.5, 4.0) * max(atr, 0.5)  # negative: a stop already moved past the entry
    sl = 0.0 if rng.random() < 0.1 else round(open_price - side.sign * sl_dist, 2)
    tp = 0.0 if rng.random() < 0.2 else round(open_price + side.sign * rng.uniform(1, 12) * max(atr, 0.5), 2)
    swap = rng.choice([0.0, 0.0, round(rng.uniform(-3, 1), 2)])
    pos = Position(1, "XAUUSD", side, volume, open_price, T0, sl=sl, tp=tp, swap=swap)
    mult = SPEC.money_per_price_unit(volume)
    unit = (atr if atr > 0 else P.min_sl_distance * 6) * mult
    ml = None if rng.random() < 0.3 else rng.random()
    closes = tuple(open_price + np.cumsum(np.random.default_rng(rng.randrange(1 << 30)).normal(0, 2, 25)))
    rsi = rng.uniform(5, 95)
    dangerous = rng.random() < 0.2
    bar_range = rng.uniform(0, 3) * max(atr, 0.5)
    inputs = PositionInputs(
        atr=atr if atr > 0 else P.min_sl_distance * 6,
        unit=unit,
        ml_against=ml,
        regime_dangerous=dangerous,
        rsi=rsi,
        closes=closes,
        last_bar_range=bar_range,
        tp_profit=abs(tp - open_price) * mult if tp else None,
        daily_loss=rng.uniform(0, 140),
        daily_limit=rng.choice([0.0, 150.0]),
        balance=5000.0,
        urgency=urgency_score(side, dangerous, ml, rsi, closes),
    )
    tracker = PositionTracker(1)
    for _ in range(rng.randrange(0, 30)):
        tracker.profits.append(rng.uniform(-3, 3) * unit)
    if ml is not None:
        for _ in range(rng.randrange(0, 10)):
            tracker.ml_against.append(min(1.0, max(0.0, ml + rng.uniform(-0.3, 0.3))))
    tracker.reversal_warnings = rng.randrange(0, 4)
    tracker.stall_count = rng.randrange(0, 5)
    tracker.peak_profit = max([0.0, *tracker.profits]) * rng.uniform(0.5, 1.5)
    return pos, inputs, tracker


def view(
    pos: Position,
    inputs: PositionInputs,
    tracker: PositionTracker,
    hours: float,
    *,
    stretch: bool = False,
    params: StrategyParams = P,
    momentum_floor: float = -100.0,
    stall_top: int | None = None,
) -> Held:
    """The rules' view for a band without the closes (both far away)."""
    profits = tracker.profits
    return Held(
        pos,
        inputs,
        params,
        tracker,
        hours,
        None,
        None,
        None if stretch else momentum(profits, params.momentum_scale_atr * inputs.unit),
        None if stretch else len(profits) >= 2 and profits[-1] > profits[-2],
        stretch,
        momentum_floor,
        stall_top,
    )


def bar(pos: Position, inputs: PositionInputs, params: StrategyParams = P) -> Band | None:
    return bar_band(view(pos, inputs, PositionTracker(1), 0.0, stretch=True, params=params))


def holds(
    pos: Position,
    price: float,
    now: datetime,
    inputs: PositionInputs,
    tracker: PositionTracker,
    params: StrategyParams = P,
    closes: tuple[datetime, datetime] | None = None,
) -> bool:
    """`TradingEngine.judge` on one tick: the tracker observes, then both rule sets."""
    profit = (
        round((price - pos.open_price) * pos.side.sign * SPEC.money_per_price_unit(pos.volume), 2) + pos.swap
    )
    tracker.observe(profit, now, inputs.ml_against, params, inputs.unit)
    daily, weekly = (900.0, 3000.0) if closes is None else ((c - now).total_seconds() / 60 for c in closes)
    v = held_at(pos, inputs, params, tracker, now, daily, weekly)
    at = At(profit, price, (price - pos.open_price) * pos.side.sign, tracker.peak_profit)
    return manage_position(v, at).kind is PMKind.HOLD and evaluate_exits(v, at) is None


def path(rng: random.Random, pos: Position, inputs: PositionInputs, n: int) -> np.ndarray:
    scale = inputs.atr * rng.choice([0.05, 0.3, 1.0])
    start = pos.open_price + rng.uniform(-4, 6) * inputs.atr * pos.side.sign
    return np.round(start + np.cumsum(np.random.default_rng(rng.randrange(1 << 30)).normal(0, scale, n)), 2)


def scan(pos: Position, prices: np.ndarray, tracker: PositionTracker, band: Band) -> int:
    """The first tick the band does not clear (`prices.size`: none), by the backtest's own scan."""
    stepped = np.ones(prices.size, dtype=np.bool_)
    scalars = scan_scalars(
        pos.open_price,
        float(pos.side.sign),
        SPEC.money_per_price_unit(pos.volume),
        pos.swap,
        tracker.peak_profit,
        band,
    )
    table = np.array([(pos.side is Side.BUY, *scalars)], dtype=np.float64)
    stop, _best = scan_rows(prices, prices, stepped, 0, prices.size, table)
    return int(stop)


def judge_path(
    pos: Position,
    prices: np.ndarray,
    times: list[datetime],
    cleared_to: int,
    inputs: PositionInputs,
    tracker: PositionTracker,
    closes: tuple[datetime, datetime] | None = None,
) -> tuple[int, int]:
    """Judge the path tick by tick until a rule acts: every tick before `cleared_to` (those the band
    cleared) must hold. Returns how many ticks were cleared and how many held."""
    cleared = quiet = 0
    for i, (price, now) in enumerate(zip(prices.tolist(), times, strict=True)):
        ok = holds(pos, price, now, inputs, tracker, closes=closes)
        if i < cleared_to:
            assert ok, (i, cleared_to, pos, inputs, price)
            cleared += 1
        if not ok:
            break
        quiet += 1
    return cleared, quiet


@pytest.mark.parametrize("seed", range(4))
def test_a_sample_band_clears_only_ticks_on_which_every_rule_holds(seed: int) -> None:
    rng = random.Random(seed)
    cleared = quiet = 0
    for _ in range(1500):
        pos, inputs, tracker = random_case(rng)
        tracker.last_sample = T0 + timedelta(hours=1)  # no sample due on the ticks below
        now = T0 + timedelta(hours=1, seconds=20)
        base = bar(pos, inputs)
        if base is None:
            continue
        band = hold_band(base, view(pos, inputs, tracker, 1.01))
        prices = path(rng, pos, inputs, 12)
        k = 0 if band is None else scan(pos, prices, tracker, band)
        c, q = judge_path(pos, prices, [now] * prices.size, k, inputs, tracker)
        cleared, quiet = cleared + c, quiet + q
    assert cleared > 0.5 * quiet  # a band is not a refusal: most quiet ticks clear


@pytest.mark.parametrize("seed", range(4))
def test_a_stretch_band_holds_across_the_samples_taken_in_the_stretch(seed: int) -> None:
    rng = random.Random(100 + seed)
    cleared = quiet = 0
    for _ in range(700):
        pos, inputs, tracker = random_case(rng)
        tracker.last_sample = T0 + timedelta(hours=1) - timedelta(seconds=rng.randrange(0, 60))
        base = bar(pos, inputs)
        if base is None:
            continue
        n = 60  # 15 minutes of ticks 15 s apart: 15 samples
        band = hold_band(base, view(pos, inputs, tracker, 1.3, stretch=True))
        prices = path(rng, pos, inputs, n)
        k = 0 if band is None else scan(pos, prices, tracker, band)
        times = [T0 + timedelta(hours=1, seconds=15 * i) for i in range(n)]
        c, q = judge_path(pos, prices, times, k, inputs, tracker)
        cleared, quiet = cleared + c, quiet + q
    assert cleared > 0.3 * quiet


@pytest.mark.parametrize("seed", range(4))
def test_a_stretch_band_for_the_samples_it_takes_holds_across_them(seed: int) -> None:
    """The samples a stretch takes are known from its prices: a band for the lowest momentum and the
    highest stall count they bring (`lowest_momentum`, `highest_stall_count`; `Held.momentum_floor`,
    `Held.stall_top`) clears only ticks on which every rule holds, and more than the band for any."""
    rng = random.Random(300 + seed)
    cleared = plain = stalled_ = 0
    for _ in range(700):
        pos, inputs, tracker = random_case(rng)
        tracker.last_sample = T0 + timedelta(hours=1) - timedelta(seconds=rng.randrange(0, 60))
        base = bar(pos, inputs)
        if base is None:
            continue
        n = 60
        prices = path(rng, pos, inputs, n)
        times = [T0 + timedelta(hours=1, seconds=15 * i) for i in range(n)]
        # the samples the ticks bring, and the momentum after each (the tracker as judging leaves it)
        seen = PositionTracker(1, deque(tracker.profits, maxlen=30), last_sample=tracker.last_sample)
        scale = P.momentum_scale_atr * inputs.unit
        seen.stall_count = tracker.stall_count
        momenta, stalls, samples = [momentum(seen.profits, scale)], [seen.stall_count], []
        for price, now in zip(prices.tolist(), times, strict=True):
            before = seen.last_sample
            holds(pos, price, now, inputs, seen)
            if seen.last_sample != before:  # a sample taken
                momenta.append(momentum(seen.profits, scale))
                stalls.append(seen.stall_count)
                samples.append(seen.profits[-1])
        floor = lowest_momentum(tracker.profits, samples, scale)
        assert floor == min(momenta)
        stall_top = highest_stall_count(tracker, samples, P, inputs.unit)
        assert stall_top == max(stalls)
        stalled_ += stall_top > tracker.stall_count
        stretch = view(pos, inputs, tracker, 1.3, stretch=True)
        band = hold_band(base, replace(stretch, momentum_floor=floor, stall_top=stall_top))
        k = 0 if band is None else scan(pos, prices, tracker, band)
        any_band = hold_band(base, stretch)
        plain += 0 if any_band is None else scan(pos, prices, tracker, any_band)
        c, _q = judge_path(pos, prices, times, k, inputs, tracker)
        cleared += c
    assert cleared > plain  # the band for the samples is wider
    assert stalled_ > 5  # stalls were counted in some stretches


@pytest.mark.parametrize("seed", range(3))
def test_a_stop_move_judged_on_the_bar_view_is_one_the_manager_makes(seed: int) -> None:
    """`stop_moves` on the view of the bar's inputs (the tracker and clock blank) is True only on ticks
    where the position manager, judged as the engine judges it, does not hold."""
    rng = random.Random(400 + seed)
    moved = 0
    for _ in range(400):
        pos, inputs, tracker = random_case(rng)
        bar_view = view(pos, inputs, PositionTracker(1), 0.0, stretch=True)
        now = T0 + timedelta(hours=rng.uniform(0, 9))
        prices = path(rng, pos, inputs, 20).tolist()
        base = bar(pos, inputs)
        if base is not None and math.isfinite(base.move_hi):  # the cents around the move bound
            edge = pos.open_price + pos.side.sign * base.move_hi
            prices += np.round(edge + pos.side.sign * np.arange(-0.03, 0.06, 0.01), 2).tolist()
        for price in prices:
            move = (price - pos.open_price) * pos.side.sign
            profit = round(move * SPEC.money_per_price_unit(pos.volume), 2) + pos.swap
            tracker.observe(profit, now, inputs.ml_against, P, inputs.unit)
            at = At(profit, price, move, tracker.peak_profit)
            if stop_moves(bar_view, at):
                moved += 1
                live = held_at(pos, inputs, P, tracker, now, 900.0, 3000.0)
                assert manage_position(live, at).kind is not PMKind.HOLD, (pos, inputs, price)
    assert moved > 100


@pytest.mark.parametrize(("count", "ticks", "closes_at"), [(3, 60, 5), (0, 16, None)])
def test_a_stretch_band_stops_at_the_stall_its_samples_count(
    count: int, ticks: int, closes_at: int | None
) -> None:
    """In a flat loss beyond `stall_loss_atr`, each sample counts a stall: a band for the samples a
    stretch takes stops before the one that closes, and clears a stretch whose samples cannot."""
    pos = Position(1, "XAUUSD", Side.BUY, 0.01, 2000.0, T0, sl=1990.0)
    inputs = PositionInputs(2.0, 2.0, None, False, 50.0, (), 0.0, None, 0.0, 0.0, 5000.0, 0)
    tracker = PositionTracker(1, deque([-3.0] * 9, maxlen=30), stall_count=count)
    tracker.last_sample = T0 + timedelta(hours=1) - timedelta(seconds=45)
    prices = np.full(ticks, 1997.0)  # a $3 loss, beyond the 1.25 ATR ($2.50) of `stall_loss_atr`
    times = [T0 + timedelta(hours=1, seconds=15 * i) for i in range(ticks)]
    samples = [-3.0] * len(range(1, ticks, 4))  # a sample every fourth tick from the second
    top = highest_stall_count(tracker, samples, P, inputs.unit)
    base = bar(pos, inputs)
    assert base is not None
    band = hold_band(base, view(pos, inputs, tracker, 1.3, stretch=True, stall_top=top))
    assert band is not None
    k = scan(pos, prices, tracker, band)
    cleared, quiet = judge_path(pos, prices, times, k, inputs, tracker)
    assert quiet == (ticks if closes_at is None else closes_at)  # the second sample closes
    assert cleared == (ticks if closes_at is None else 0)


def test_no_band_without_an_atr_unit() -> None:
    pos = Position(1, "XAUUSD", Side.BUY, 0.01, 2000.0, T0, sl=1995.0)
    inputs = PositionInputs(
        atr=0.0,
        unit=0.0,
        ml_against=None,
        regime_dangerous=False,
        rsi=50.0,
        closes=(),
        last_bar_range=0.0,
        tp_profit=None,
        daily_loss=0.0,
        daily_limit=0.0,
        balance=5000.0,
        urgency=0,
    )
    assert bar(pos, inputs) is None


def test_a_stalled_tracker_has_no_band() -> None:
    pos = Position(1, "XAUUSD", Side.BUY, 0.01, 2000.0, T0, sl=1995.0)
    inputs = PositionInputs(
        atr=2.0,
        unit=2.0,
        ml_against=None,
        regime_dangerous=False,
        rsi=50.0,
        closes=(),
        last_bar_range=0.0,
        tp_profit=None,
        daily_loss=0.0,
        daily_limit=0.0,
        balance=5000.0,
        urgency=0,
    )
    base = bar(pos, inputs)
    assert base is not None and not math.isinf(base.lo)
    tracker = PositionTracker(1, profits=deque([-1.0] * 10, maxlen=30), stall_count=P.stall_count_to_close)
    assert hold_band(base, view(pos, inputs, tracker, 1.0)) is None
    assert hold_band(base, view(pos, inputs, tracker, 1.0, stretch=True)) is None


@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
@pytest.mark.parametrize("impulse", [False, True])
def test_the_move_bound_is_tight_at_the_trailing_stop_and_breakeven_edges(side: Side, impulse: bool) -> None:
    """On a fine price grid across the edges where breakeven and the trailing stop start to move the
    stop, every cleared price holds and the first price that moves the stop is within a cent of the bound."""
    atr, open_price = 2.0, 2000.0
    # the default take-profit rules close at 3.3 ATR of profit, before a 4-ATR trail starts: lift them
    params = replace(
        P,
        tp_hard_atr=50.0,
        tp_momentum_atr=50.0,
        tp_probability_atr=50.0,
        tp_peak_atr=50.0,
        pm_protect_atr=50.0,
    )
    for sl_offset in (-3.0, -1.0, 0.5, 2.0, 5.0):  # the stop behind the entry, at it, past it
        pos = Position(
            1, "XAUUSD", side, 0.01, open_price, T0, sl=round(open_price - side.sign * sl_offset, 2)
        )
        inputs = PositionInputs(
            atr=atr,
            unit=atr,
            ml_against=None,
            regime_dangerous=False,
            rsi=50.0,
            closes=(),
            last_bar_range=(2.0 if impulse else 0.5) * atr,
            tp_profit=None,
            daily_loss=0.0,
            daily_limit=0.0,
            balance=1e6,
            urgency=0,
        )
        base = bar(pos, inputs, params)
        assert base is not None
        band = hold_band(base, view(pos, inputs, PositionTracker(1), 0.5, params=params))
        assert band is not None
        moves = np.round(np.arange(0, 14, 0.01), 2)
        prices = np.round(open_price + side.sign * moves, 2)
        first_act = next(
            (
                i
                for i, p in enumerate(prices.tolist())
                if not holds(pos, p, T0 + timedelta(minutes=5), inputs, PositionTracker(1), params)
            ),
            None,
        )
        cleared = [scan(pos, prices[i : i + 1], PositionTracker(1), band) == 1 for i in range(prices.size)]
        for i, ok in enumerate(cleared):
            if ok:
                assert holds(
                    pos, float(prices[i]), T0 + timedelta(minutes=5), inputs, PositionTracker(1), params
                ), (side, sl_offset, prices[i])
        if first_act is not None:
            assert not any(cleared[first_act : first_act + 1])
            assert all(cleared[: max(0, first_act - 2)]), (side, sl_offset, first_act)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("kind", ["stretch", "sample"])
def test_the_clock_rules_hold_until_their_next_phase(seed: int, kind: str) -> None:
    """Positions open 0-9 h with the daily and weekly closes 0-5 h away: a band for a stretch (or a
    sample period) with the clock at its last tick, cut a minute before the nearer close
    (`Closes.until_ms`), clears only ticks on which every rule holds."""
    rng = random.Random(200 + seed)
    cleared = quiet = 0
    for _ in range(700):
        pos, inputs, tracker = random_case(rng)
        start = T0 + timedelta(minutes=rng.uniform(0, 540))
        pos = replace(pos, open_time=T0)
        tracker.last_sample = start - timedelta(seconds=rng.randrange(0, 60)) if kind == "stretch" else start
        daily = start + timedelta(minutes=rng.uniform(0, 300))
        weekly = daily + timedelta(days=rng.choice([0, 0, 1, 3]))
        start_ms = int(start.timestamp() * 1000)
        closes = Closes.seen(
            start_ms, (daily - start).total_seconds() / 60, (weekly - start).total_seconds() / 60
        )
        base = bar(pos, inputs)
        assert closes is not None
        if base is None:
            continue
        n = 60 if kind == "stretch" else 4  # a sample band holds until the next sample
        times = [start + timedelta(seconds=15 * i) for i in range(n)]
        limit = sum(1 for t in times if t.timestamp() * 1000 < closes.until_ms)
        band = None
        if limit:
            end_ms = int(times[limit - 1].timestamp() * 1000)
            held = held_until(pos, inputs, P, tracker, end_ms, closes, stretch=kind == "stretch")
            band = hold_band(base, held)
        prices = path(rng, pos, inputs, n)
        k = 0 if band is None else min(limit, scan(pos, prices, tracker, band))
        open_ticks = sum(1 for t in times if t < min(daily, weekly))  # then the market is closed
        c, q = judge_path(
            pos, prices[:open_ticks], times[:open_ticks], k, inputs, tracker, closes=(daily, weekly)
        )
        cleared, quiet = cleared + c, quiet + q
    assert cleared > 0.2 * quiet
