"""Each open position on each step: the position manager's action and the exits' verdict at the
tick's price (`judge`), carried out (`_manage`: a close, a stop moved); and what they read that only
changes once a bar (`position_inputs`), the position's memory (`tracker`), the minutes to the closes.

`PositionWatch` is a part of `TradingEngine` (a mixin: it reads and sets the engine's own state). Its
public methods are also what the backtest's shortcuts call (`trading.quiet_ticks.EnginePort`).
"""

from __future__ import annotations

import logging
import math
from datetime import datetime
from typing import NamedTuple

from trading.bounds import At
from trading.broker.base import BrokerError, ConnectionLost
from trading.domain import Position, Tick
from trading.engine_host import EngineHost, JudgeKey
from trading.events import EventKind
from trading.exits import ExitVerdict, PositionTracker, evaluate_exits
from trading.position_inputs import PositionInputs, held_at, position_inputs
from trading.position_manager import PMAction, PMKind, manage_position
from trading.position_records import with_stops
from trading.risk.modes import start_cooldown
from trading.sessions import market_status

log = logging.getLogger("trading.engine")


def market_minutes(now: datetime) -> tuple[float | None, float | None]:
    """Minutes to the next daily and weekly close (None while the market is closed)."""
    status = market_status(now)
    return status.minutes_to_daily_close, status.minutes_to_weekly_close


class _OpenSession(NamedTuple):
    """The close instants (epoch seconds) `market_status` gave at `seen`, an instant the market was
    open: it stays open until that daily close (no break within a session), both closes the same."""

    seen: float
    daily: float
    weekly: float


_session = _OpenSession(math.inf, -math.inf, -math.inf)  # one tuple, swapped whole: safe across threads


def open_market_minutes(now: datetime) -> tuple[float | None, float | None]:
    """`market_minutes`, the same floats, with `market_status` asked once a session rather than on
    every call: its minutes are (close - now) / 60 from the close instants, which are fixed from the
    instant it is seen open until the daily close."""
    global _session
    ts = now.timestamp()
    known = _session
    if known.seen <= ts < known.daily and now.tzinfo is not None:
        return (known.daily - ts) / 60, (known.weekly - ts) / 60
    status = market_status(now)
    to_daily, to_weekly = status.minutes_to_daily_close, status.minutes_to_weekly_close
    if to_daily is not None and to_weekly is not None:
        # the weekly close is 17:00 New York, a whole second: recovered exactly from its minutes
        _session = _OpenSession(ts, status.next_close_utc.timestamp(), float(round(ts + to_weekly * 60)))
    return to_daily, to_weekly


def same_inputs(old: JudgeKey, new: JudgeKey) -> bool:
    """Whether `position_inputs` gives the same for both keys: the same analysis, risk state,
    parameters, limits and side (by identity: a new object on each change) and the same numbers (by
    value: a stop move rebuilds the position's take-profit, a sync the balance, unchanged)."""
    a, state, balance, params, limits, volume, tp, open_price, side = old
    return (
        new[0] is a
        and new[1] is state
        and new[3] is params
        and new[4] is limits
        and new[8] is side
        and new[2] == balance
        # (a zero balance's sign too: a reason prints -0.00)
        and (balance != 0.0 or math.copysign(1.0, balance) == math.copysign(1.0, new[2]))
        and new[5] == volume
        and new[6] == tp
        and new[7] == open_price
    )


class PositionWatch(EngineHost):
    """Judging and managing the open positions of `TradingEngine`."""

    async def _manage(self, pos: Position, tick: Tick, now: datetime) -> None:
        assert self.state is not None
        self.positions[pos.ticket] = pos
        action, verdict = self.judge(pos, tick.price_to_close(pos.side), pos.profit + pos.swap, now)
        if action.kind is PMKind.CLOSE:
            await self._close(pos, action.name, action.reason, by="position_manager")
            return
        if action.kind is PMKind.MOVE_SL:
            await self._move_sl(pos, action.new_sl, f"{action.name}: {action.reason}")
        if verdict is not None:
            await self._close(pos, verdict.name, verdict.reason, by="exit_rules")
            if verdict.name == "daily_limit":
                self.state = start_cooldown(self.state, self.limits, now, "daily limit close")
                await self._save_state()

    def position_inputs(self, pos: Position) -> PositionInputs:
        """What `judge` reads that only a new analysis, risk state, balance or stop can change (once
        per bar; the same object until then)."""
        assert self.state is not None and self.account is not None
        a, state, balance = self.analysis, self.state, self.account.balance
        key = (a, state, balance, self.params, self.limits, pos.volume, pos.tp, pos.open_price, pos.side)
        cached = self._judge_inputs.get(pos.ticket)
        if cached is None or not same_inputs(cached[0], key):
            fixed = position_inputs(pos, a, state, balance, self.params, self.limits, self.spec)
            cached = self._judge_inputs[pos.ticket] = (key, fixed)
        return cached[1]

    def tracker(self, ticket: int) -> PositionTracker:
        tracker = self.trackers.get(ticket)
        if tracker is None:  # not setdefault: a tracker (two deques) built on every step only to be dropped
            tracker = self.trackers[ticket] = PositionTracker(ticket)
        return tracker

    def minutes_to_closes(self, now: datetime) -> tuple[float | None, float | None]:
        return self.market_clock(now) if self.market_clock else open_market_minutes(now)

    def judge(
        self, pos: Position, price: float, profit: float, now: datetime
    ) -> tuple[PMAction, ExitVerdict | None]:
        """The position manager's action and the exits' verdict for `pos` at `price` (its tracker
        takes the sample; taking it twice at the same moment changes nothing). Pure otherwise: the
        exits read nothing a stop move changes, so both are judged before either is carried out."""
        fixed = self.position_inputs(pos)
        tracker = self.tracker(pos.ticket)
        tracker.observe(profit, now, fixed.ml_against, self.params, fixed.unit)
        view = held_at(pos, fixed, self.params, tracker, now, *self.minutes_to_closes(now))
        at = At(profit, price, (price - pos.open_price) * pos.side.sign, tracker.peak_profit)
        return manage_position(view, at), evaluate_exits(view, at)

    async def _move_sl(self, pos: Position, new_sl: float, reason: str) -> None:
        try:
            await self.broker.modify_position(pos.ticket, new_sl, pos.tp)
        except ConnectionLost:
            raise
        except BrokerError as exc:
            log.warning("SL move on %s to %.2f refused: %s", pos.ticket, new_sl, exc)
            return
        now = self.clock()
        self.positions[pos.ticket] = with_stops(pos, new_sl, pos.tp)
        await self.recorder.record_sl_change(pos.ticket, now, new_sl, pos.tp, reason)
        self._publish(
            EventKind.SL_MOVED,
            f"#{pos.ticket} SL → {new_sl:.2f} ({reason})",
            ticket=pos.ticket,
            sl=new_sl,
            old_sl=pos.sl,
            reason=reason,
        )
