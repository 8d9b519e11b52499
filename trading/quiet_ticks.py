"""The backtest's exact shortcuts beside `MarketLoop`: runs of ticks on which an engine step would act
on nothing are taken in one go, and leave the engine as stepping them one by one would have.

`take_idle_ticks`: no position open, no flash-crash move possible, no WIB day roll (the rest of a bar).
`take_open_ticks`: positions open, the paper broker's stops not reached (`PaperBroker.quiet_ticks`), the
position manager holding and no exit closing: stretches the positions' hold bands clear
(`trading.hold_band`) in one scan, any other tick judged by the engine's own rules (`EnginePort.judge`).
The engine is reached only through `EnginePort`; the paper broker is this module's own.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Protocol

import numpy as np

from trading.bounds import At
from trading.broker.paper import PaperBroker
from trading.domain import AccountInfo, Position, Side, Tick
from trading.exits import ExitVerdict, PositionTracker
from trading.flash_crash import TickWindow
from trading.hold_band import Band, Closes, bar_band, stop_moves
from trading.parameters import StrategyParams
from trading.position_inputs import Held, PositionInputs
from trading.position_manager import PMAction, PMKind
from trading.quiet_rows import (
    Row,
    due_steps,
    record_steps,
    sample_due,
    scan_rows,
    step_table,
    window_steps,
    window_ticks,
)
from trading.risk.modes import ModeDecision, RiskLimits, RiskMode, RiskState, effective_mode
from trading.timezones import EPOCH, ONE_MS, at_ms, wib_date
from trading.tracker import highest_stall_count, lowest_momentum

_NO_SAMPLES = PositionTracker(0)  # the tracker of a view only the rules fixed for the bar read
_NONE_BEST = np.empty(0, dtype=np.int64)  # no best tick for any position (a scan that took none)


class EnginePort(Protocol):
    """What the shortcuts read and set on the engine (`trading.engine.TradingEngine`)."""

    params: StrategyParams
    limits: RiskLimits
    state: RiskState | None
    account: AccountInfo | None  # set to the account the last step taken would have read
    positions: dict[int, Position]  # the marked positions, likewise
    last_tick: Tick | None  # likewise
    flash_window: TickWindow  # the stepped ticks taken are added as a step adds them

    def closes_in_flight(self) -> bool: ...

    def approval_due(self) -> bool:
        """An approval is pending or about to be proposed (a step would act on it)."""
        ...

    def published_mode(self) -> ModeDecision: ...

    def position_inputs(self, pos: Position) -> PositionInputs: ...

    def tracker(self, ticket: int) -> PositionTracker: ...

    def minutes_to_closes(self, now: datetime) -> tuple[float | None, float | None]: ...

    def judge(
        self, pos: Position, price: float, profit: float, now: datetime
    ) -> tuple[PMAction, ExitVerdict | None]:
        """The position manager's action and the exits' verdict (the tracker takes the sample)."""
        ...


class QuietTicks:
    """The shortcuts for one engine on one paper broker (`MarketLoop`'s `skip_idle` and `skip_quiet`)."""

    def __init__(self, engine: EnginePort, broker: PaperBroker) -> None:
        self.engine = engine
        self.broker = broker
        # bar_band's cache: the inputs and stop it is for, the band, and the view it was folded from
        self._bands: dict[int, tuple[PositionInputs, float, Band | None, Held]] = {}

    def take_idle_ticks(
        self, times_ms: np.ndarray, bids: np.ndarray, asks: np.ndarray, last_step: int | None, step_ms: int
    ) -> bool:
        """Take ticks as seen without a step, when no step could act on them: no position (so no exit,
        stop or close to detect), no flash-crash move possible within them, no WIB day roll. Returns
        False (and changes nothing) when a step is needed; the caller then steps tick by tick. The
        flash-crash window ends up exactly as stepping would have left it (a step on the first tick of
        each `step_ms`, the last one in `last_step`, as `MarketLoop`)."""
        engine = self.engine
        if engine.positions or engine.closes_in_flight() or engine.state is None or times_ms.size == 0:
            return False
        if wib_date(at_ms(int(times_ms[-1]))) != engine.state.day:
            return False
        params, window = engine.params, engine.flash_window
        if params.gate_enabled("flash_crash_guard") and window.could_reach(
            bids, asks, params.flash_crash_pct
        ):
            return False
        span_ms = timedelta(seconds=params.flash_crash_window_seconds) // ONE_MS
        last = 0 if last_step is None else last_step
        kept = window_ticks(times_ms, step_ms, last, last_step is not None, span_ms)
        record_steps(window, times_ms, bids, asks, kept, span_ms)
        return True

    def bar_band(self, pos: Position) -> tuple[PositionInputs, Band | None, Held]:
        """The position's `hold_band.bar_band` for the current bar, and the view of the rules fixed for
        the bar it was folded from (`bar_view`): cached with the engine's `position_inputs`, which is
        keyed by the balance, and the stop (all those rules read of the position, whatever its marks)."""
        engine = self.engine
        fixed = engine.position_inputs(pos)
        cached = self._bands.get(pos.ticket)
        if cached is not None and cached[0] is fixed and cached[1] == pos.sl:
            return fixed, cached[2], cached[3]
        view = self.bar_view(pos, fixed)
        band = bar_band(view)
        self._bands[pos.ticket] = (fixed, pos.sl, band, view)
        return fixed, band, view

    def bar_view(self, pos: Position, inputs: PositionInputs) -> Held:
        """A view of the position for the rules fixed for the bar (`inputs` its `position_inputs`),
        which read neither the tracker nor the clock (a blank one of them)."""
        return Held(pos, inputs, self.engine.params, _NO_SAMPLES, 0.0, None, None, None, None, True)

    def take_open_ticks(
        self, times_ms: np.ndarray, bids: np.ndarray, asks: np.ndarray, last_step: int | None, step_ms: int
    ) -> tuple[int, int | None]:
        """Take, while positions are open, the leading ticks on which a step would act on nothing:
        the position manager holds, no exit closes, no flash crash, no day roll, no mode change, no
        approval to expire. What a step records of a quiet tick (the tracker's samples and peak, the
        flash-crash window, the marked positions and account, the last tick) ends up as stepping
        would have left it. The caller has already cut the ticks at the first one the paper broker
        could act on (`quiet_ticks`). Stretches the positions' hold bands clear (`hold_band`) are
        taken in one go; any other tick is judged by the same rules the step runs (`judge`).
        Returns how many ticks were taken (the broker left at the last of them) and the step second
        reached; the first tick not taken is then stepped as usual. A step runs on the first tick of
        each `step_ms` (as `MarketLoop`)."""
        engine, broker = self.engine, self.broker
        state, account = engine.state, engine.account
        n = int(times_ms.size)
        if (
            n == 0
            or not engine.positions
            or engine.closes_in_flight()
            or state is None
            or account is None
            or engine.approval_due()
        ):
            return 0, last_step
        if wib_date(at_ms(int(times_ms[-1]))) != state.day:
            return 0, last_step
        first = at_ms(int(times_ms[0]))
        if (
            effective_mode(state, engine.limits, account.balance, first).mode
            is not engine.published_mode().mode
        ):
            return 0, last_step
        live = broker.positions_now()
        if sorted(engine.positions) != [p.ticket for p in live]:
            return 0, last_step
        if len(self._bands) > 4 * len(live):  # the closed positions' bands
            self._bands = {t: b for t, b in self._bands.items() if t in engine.positions}
        take = _OpenTake(self, times_ms, bids, asks, last_step, step_ms, live)
        rows = take.build_rows()
        if rows and take.moves_stop(0):  # the first step moves a stop (a trailing stop in a run)
            return take.finish(0)
        i, banded = 0, rows and not take.could_crash()
        while i < n:
            if banded:
                i, banded = take.banded(i)
                if i >= n or take.moves_stop(i):
                    break
            if not take.one(i):
                break
            i += 1
        return take.finish(i)


class _OpenTake:
    """One `QuietTicks.take_open_ticks` call: its ticks, taken one by one (`one`) or in stretches
    the hold bands clear (`banded`), and the step's records left as stepping would (`finish`)."""

    def __init__(
        self,
        quiet: QuietTicks,
        times_ms: np.ndarray,
        bids: np.ndarray,
        asks: np.ndarray,
        last_step: int | None,
        step_ms: int,
        live: list[Position],
    ) -> None:
        engine = quiet.engine
        assert engine.state is not None
        self.quiet, self.engine, self.broker = quiet, engine, quiet.broker
        self.times, self.bids, self.asks = times_ms, bids, asks
        self.last_step, self.step_ms, self.live = last_step, step_ms, live
        self.stepped_at = -1  # the last tick a step ran on
        self._stepped: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self.rows: list[Row] = []  # the positions as `banded` scans them (`build_rows`)
        params = engine.params
        self.guard = params.gate_enabled("flash_crash_guard")
        self.window = timedelta(seconds=params.flash_crash_window_seconds)
        self.cooldown = (
            engine.state.cooldown_until if engine.published_mode().mode is RiskMode.COOLDOWN else None
        )
        self.held = [(p, p.side is Side.BUY, p.swap) for p in live]

    # -------------------------------------------------------------- tick by tick
    def one(self, i: int) -> bool:
        """Take tick `i` if a step would act on nothing (judged by the rules themselves)."""
        engine, window = self.engine, self.engine.flash_window
        t = int(self.times[i])
        second = t // self.step_ms
        if second == self.last_step:
            return True
        now = at_ms(t)
        if self.cooldown is not None and now >= self.cooldown:
            return False
        bid, ask = float(self.bids[i]), float(self.asks[i])
        mid = (bid + ask) / 2
        horizon = now - self.window
        if self.guard and window.move_with(mid, horizon) >= engine.params.flash_crash_pct:
            return False
        broker = self.broker
        for pos, buy, swap in self.held:
            price = bid if buy else ask
            action, verdict = engine.judge(pos, price, broker.profit_at(pos, price) + swap, now)
            if action.kind is not PMKind.HOLD or verdict is not None:
                return False
        window.append(now, mid)
        window.trim(horizon)
        self.last_step, self.stepped_at = second, i
        return True

    # -------------------------------------------------------------- in stretches
    def moves_stop(self, i: int) -> bool:
        """Whether the step on tick `i` (the first, or where `banded` stopped) moves a position's stop
        (`stop_moves`, tried where the move reaches its bar band's bound): its position manager does
        not hold, so the tick is left to the step rather than judged here and again there."""
        stepped: bool | None = None  # whether a step runs on tick `i`, asked once a move reaches
        for row in self.rows:
            price = float(row.prices[i])
            move = (price - row.pos.open_price) * row.sign
            if move < row.base.move_hi - 1e-9:
                continue
            if stepped is None:
                stepped = self._stepped_at(i)
            if not stepped:
                return False
            profit = self.broker.profit_at(row.pos, price) + row.swap
            at = At(profit, price, move, max(row.tracker.peak_profit, profit))
            if stop_moves(row.view, at):
                return True
        return False

    def _stepped_at(self, i: int) -> bool:
        """Whether a step runs on tick `i` (`_steps`; the first tick's without the table, which a call
        that ends there, as when its first step moves a stop, never needs)."""
        if self._stepped is None and i == 0:
            last = self.last_step
            return last is None or int(self.times[0]) // self.step_ms != last
        return bool(self._steps()[0][i])

    def could_crash(self) -> bool:
        """Whether a flash crash is possible within the call's ticks (judged on all of them with the
        guard's window, as `take_idle_ticks`): bands are then not used."""
        return self.guard and self.engine.flash_window.could_reach(
            self.bids, self.asks, self.engine.params.flash_crash_pct
        )

    def build_rows(self) -> bool:
        """The positions' rows (`self.rows`) for `banded`; False (and none) when a position's bar band
        cannot be given."""
        # the bar's inputs, the stop and the trackers do not change within the call: rows for all of it
        engine, broker = self.engine, self.broker
        for pos, buy, swap in self.held:
            inputs, base, view = self.quiet.bar_band(pos)
            if base is None:
                self.rows.clear()
                return False
            self.rows.append(
                Row(
                    pos,
                    self.bids if buy else self.asks,
                    swap,
                    broker.spec.money_per_price_unit(pos.volume),
                    float(pos.side.sign),
                    engine.tracker(pos.ticket),
                    inputs,
                    base,
                    view,
                )
            )
        return True

    def banded(self, start: int) -> tuple[int, bool]:
        """Take the ticks from `start` the positions' hold bands clear, a sample period at a time
        (each sample taken by the position's tracker as a step would). Returns the first tick not
        taken and whether bands are worth trying again after it (not while the closes are unknown or
        one is about to pass)."""
        engine, times = self.engine, self.times
        params = engine.params
        stepped, steps, step_times = self._steps()
        first_ms = int(times[start])
        closes = Closes.seen(first_ms, *engine.minutes_to_closes(at_ms(first_ms)))
        if closes is None or first_ms >= closes.until_ms:  # the closes unknown, or one about to pass
            return start, False
        until = min(
            closes.until_ms,
            math.inf if self.cooldown is None else (self.cooldown - EPOCH) // ONE_MS,
        )
        rows = self.rows
        cut = int(times.searchsorted(until, side="left"))
        if cut <= start:
            return start, True
        period = params.profit_sample_seconds * 1000
        i = self._stretch(start, cut, rows, period, closes)
        if i == cut:
            return cut, True
        # no band narrowed from the bar's clears a tick the bar's band does not (the stretch's did, up
        # to `i`): the windows stop before the first such tick
        limit = self._scan(rows, [row.base for row in rows], i, cut)[0]
        committed = i  # `_stretch` records the ticks it takes itself
        while i < limit:
            end = limit
            for row in rows:
                due = sample_due(row.tracker, period)
                if stepped[i] and int(times[i]) >= due:  # the sample a step would take here
                    self._sample(row, i)
                    due = sample_due(row.tracker, period)
                k = int(step_times.searchsorted(due, side="left"))
                if k < steps.size:
                    end = min(end, max(int(steps[k]), i + 1))
            # the clock at the window's last tick: the rules on the clock only tighten as it runs
            bands = [r.band(params, int(times[end - 1]), closes, stretch=False) for r in rows]
            stop, best = self._scan(rows, bands, i, end)
            self._raise_peaks(rows, best)
            if stop < end:
                self._commit(committed, stop)
                return stop, True
            i = end
        if committed < limit:
            self._commit(committed, limit)
        return limit, True

    def _stretch(self, start: int, limit: int, rows: list[Row], period: int, closes: Closes) -> int:
        """Take the ticks from `start` that the positions' stretch bands (valid across profit samples)
        clear in one scan each; the samples in them are then taken as steps would have. Returns the
        first tick not taken. The bands are those for the samples steps would take up to `limit`
        (known from their prices: their lowest momentum and highest stall count, whichever of them
        are taken, so whatever tick the scan stops at)."""
        times, params = self.times, self.engine.params
        end_ms = int(times[limit - 1])
        samples = [self._samples_due(row, limit, period) for row in rows]
        bands = [
            row.band(
                params,
                end_ms,
                closes,
                stretch=True,
                momentum_floor=lowest_momentum(
                    row.tracker.profits, profits, params.momentum_scale_atr * row.inputs.unit
                ),
                stall_top=highest_stall_count(row.tracker, profits, params, row.inputs.unit),
            )
            for row, (_taken, profits) in zip(rows, samples, strict=True)
        ]
        stop, best = self._scan(rows, bands, start, limit)
        if stop == start:
            return start
        for row, (taken, profits) in zip(rows, samples, strict=True):  # the samples before `stop`
            n = int(taken.searchsorted(stop))
            if n:
                row.tracker.take_samples(
                    profits[:n],
                    at_ms(int(times[taken[n - 1]])),
                    row.inputs.ml_against,
                    params,
                    row.inputs.unit,
                )
        self._raise_peaks(rows, best)
        self._commit(start, stop)
        return stop

    def _samples_due(self, row: Row, limit: int, period: int) -> tuple[np.ndarray, list[float]]:
        """The stepped ticks before `limit` on which steps would take the position's profit samples
        (all ticks before them taken), and those samples."""
        _stepped, steps, step_times = self._steps()
        taken, prices = due_steps(
            steps, step_times, row.prices, sample_due(row.tracker, period), period, limit
        )
        if taken.size == 0:
            return taken, []
        return taken, [p + row.swap for p in self.broker.profits_at(row.pos, prices.tolist())]

    def _sample(self, row: Row, j: int) -> None:
        """The profit sample a step on tick `j` takes on the position's tracker."""
        broker, params = self.broker, self.engine.params
        now = at_ms(int(self.times[j]))
        row.tracker.observe(
            broker.profit_at(row.pos, float(row.prices[j])) + row.swap,
            now,
            row.inputs.ml_against,
            params,
            row.inputs.unit,
        )

    def _scan(
        self, rows: list[Row], bands: list[Band | None], start: int, end: int
    ) -> tuple[int, np.ndarray]:
        """The first tick of [start, end) some position's band does not clear (`end`: none), scanned
        with the trackers' peaks as they are (so before any of them changes, as `hold_band.scan_band`),
        and each position's best stepped tick before it (-1: none) for `_raise_peaks`."""
        known = [band for band in bands if band is not None]
        if len(known) < len(bands):
            return start, _NONE_BEST
        table = np.array(
            [row.scan_row(band) for row, band in zip(rows, known, strict=True)], dtype=np.float64
        )
        stop, best = scan_rows(self.bids, self.asks, self._steps()[0], start, end, table)
        return int(stop), best

    def _raise_peaks(self, rows: list[Row], best: np.ndarray) -> None:
        """Each tracker's peak as steps on the stepped ticks `_scan` passed would have left it: the
        profit at the best price among them (profit rises with the price moving for the position)."""
        broker = self.broker
        for row, j in zip(rows, best.tolist(), strict=False):
            if j < 0:
                return
            row.tracker.peak_profit = max(
                row.tracker.peak_profit, broker.profit_at(row.pos, float(row.prices[j])) + row.swap
            )

    def _steps(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Which ticks a step runs on (the first of each step second), their indices and times. Valid
        from any tick reached: the ticks before it were all taken, so the last step's second is the
        previous tick's."""
        if self._stepped is None:
            last = self.last_step
            self._stepped = step_table(
                self.times, self.step_ms, 0 if last is None else last, last is not None
            )
        return self._stepped

    def _commit(self, start: int, stop: int) -> None:
        """Record the stepped ticks of [start, stop) as steps would: the flash-crash window, the step."""
        _stepped, steps, step_times = self._steps()
        span_ms = self.window // ONE_MS
        first, end = window_steps(steps, step_times, start, stop, span_ms)
        if first == end:
            return
        record_steps(self.engine.flash_window, self.times, self.bids, self.asks, steps[first:end], span_ms)
        last = int(steps[end - 1])
        self.last_step, self.stepped_at = int(self.times[last]) // self.step_ms, last

    def finish(self, taken: int) -> tuple[int, int | None]:
        """Leave what the last step saw (its tick, the marked positions and account), and the broker at
        the last tick taken; the ticks taken."""
        engine, broker, j = self.engine, self.broker, self.stepped_at
        if j >= 0:
            tick = self._tick(j)
            broker.set_quiet_tick(tick)  # (the caller's ticks are those `quiet_ticks` counted)
            engine.last_tick = tick
            engine.account = broker.account_now()
            for p in broker.positions_now():
                engine.positions[p.ticket] = p
        if taken and j != taken - 1:  # ticks after the last step: seen by the broker alone
            broker.set_quiet_tick(self._tick(taken - 1))
        return taken, self.last_step

    def _tick(self, j: int) -> Tick:
        return Tick(at_ms(int(self.times[j])), float(self.bids[j]), float(self.asks[j]))
