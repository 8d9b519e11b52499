"""Scheduled reports (spec §1.1 items 3-5): the 30-minute market update, the hourly analysis and
the daily summary with its equity chart.

`market_update` and `hourly_analysis` are pure functions of an `EngineSnapshot` (and the recent
decisions); `daily_summary` reads the journal, so it is async, and draws its chart in a worker
thread. All return Telegram HTML in the notification layout of bot.messages; the scheduler sends
market updates and hourly reports silently.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Protocol

from bot.messages import (
    DEFAULT_SYMBOL,
    code,
    compose,
    esc,
    fmt_duration,
    pct,
    plural,
    price,
    section,
    signed,
    usd,
)
from handlers.clock import uptime as wall_uptime
from trading.analysis import MLView
from trading.timezones import fmt_wib, to_wib, utc_now

if TYPE_CHECKING:
    from bot.store import EquitySnapshot, Journal, TradeRecord
    from trading.engine import EngineSnapshot


class DecisionLike(Protocol):
    """trading.records.Decision and bot.store.DecisionRecord both fit."""

    @property
    def bar_time(self) -> datetime: ...
    @property
    def action(self) -> str: ...
    @property
    def reason(self) -> str: ...
    @property
    def p_up(self) -> float | None: ...
    @property
    def gates(self) -> Sequence[Any]: ...


# ---------------------------------------------------------------------------------------- pieces


def _ml_threshold(ml: MLView, quality_threshold: float) -> float:
    """The bar the model's number must reach: the meta-model's own P(win) floor (fitted on its
    validation slice, as the EV gate reads it), else the direction model's dynamic threshold."""
    return ml.min_prob if ml.is_meta else quality_threshold


def _ml_line(snapshot: EngineSnapshot) -> str:
    a = snapshot.analysis
    if a is None or a.ml is None:
        return "ML: <i>no model</i>"
    thr = _ml_threshold(a.ml, a.quality.threshold)
    side = a.ml.direction
    conf = a.ml.confidence
    icon = "⚪" if conf < thr else ("🟢" if str(side) == "BUY" else "🔴")
    if a.ml.is_meta:
        return f"ML: {icon} P(win) {code(pct(conf))} for the {code(side)} setup / floor {code(pct(thr))}"
    return f"ML: {icon} {code(side)} {code(pct(conf))} / thr {code(pct(thr))}"


def _ready(snapshot: EngineSnapshot) -> bool:
    """READY: the model's number at or above its threshold (the meta-model's fitted floor) and quality not AVOID."""
    a = snapshot.analysis
    if a is None or a.ml is None:
        return False
    return a.ml.confidence >= _ml_threshold(a.ml, a.quality.threshold) and a.quality.level.upper() != "AVOID"


def _trend(indicators: dict[str, float]) -> str:
    e9, e21 = indicators.get("ema_9"), indicators.get("ema_21")
    if e9 is None or e21 is None:
        return "NEUTRAL"
    return "UPTREND" if e9 > e21 else "DOWNTREND"


def _bias(h1: int) -> str:
    return {1: "BULLISH", -1: "BEARISH"}.get(h1, "NEUTRAL")


def position_lines(snapshot: EngineSnapshot, limit: int = 5) -> list[str]:
    """`#t BUY 0.01 +$1.23 (SL x / TP y) 1h 05m` for up to `limit` positions, then "+n more"."""
    lines = []
    for p in snapshot.positions[:limit]:
        age = fmt_duration((snapshot.time - p.open_time).total_seconds())
        lines.append(
            f"#{esc(p.ticket)} {esc(p.side)} {code(f'{p.volume:g}')} {code(signed(p.profit + p.swap))} "
            f"SL {code(price(p.sl))} TP {code(price(p.tp))} · {esc(age)}"
        )
    if len(snapshot.positions) > limit:
        lines.append(f"… and {len(snapshot.positions) - limit} more")
    return lines


def _risk_items(snapshot: EngineSnapshot) -> list[str]:
    r, limits, mode = snapshot.risk, snapshot.limits, snapshot.mode
    daily_limit = r.day_start_balance * limits.daily_loss_pct / 100
    return [
        f"Mode: {code(mode.mode)} ({esc(mode.reason)})" if mode.reason else f"Mode: {code(mode.mode)}",
        f"Daily Loss: {code(usd(r.daily_loss()))} / {code(usd(daily_limit))} | Streak {code(f'{r.consecutive_losses}L')}",
        f"Today: {esc(plural(r.daily_trades, 'trade'))} ({esc(r.daily_wins)} won), {code(signed(r.daily_realized))}",
        "⏸ <b>Paused</b>" if snapshot.paused else "",
    ]


# ---------------------------------------------------------------------------------------- 30-minute


def market_update(snapshot: EngineSnapshot, symbol: str = DEFAULT_SYMBOL) -> str:
    """The 30-minute market update: price, spread, session, regime, setup, ML vs threshold,
    quality, risk, and the open positions with their P/L."""
    a = snapshot.analysis
    header = "📊 <b>MARKET UPDATE</b>"
    if a is None:
        return compose(
            header,
            "<i>No analysis yet: waiting for the first closed M15 bar.</i>",
            section("Risk", _risk_items(snapshot)),
            time=snapshot.time,
        )
    setup = a.setup
    setup_line = (
        f"SMC: {code(setup.side)} ({code(pct(setup.confidence))}) {esc(setup.reason)}"
        if setup
        else "SMC: <i>no setup</i>"
    )
    blocks = [
        section(
            "Price",
            [
                f"{esc(symbol)}: {code(price(a.close))} (bar {esc(fmt_wib(a.bar_close_time))})",
                f"ATR: {code(f'{a.atr:.2f}')} | Spread: {code(f'{a.spread_points} pts')}",
            ],
        ),
        section(
            "Signal",
            [
                _ml_line(snapshot),
                setup_line,
                f"Quality: {code(a.quality.level.upper())} ({code(f'{a.quality.score:.0f}')})",
                f"Trend: {code(_trend(a.indicators))} | H1: {code(_bias(a.h1_bias))}",
            ],
        ),
        section(
            "Market",
            [
                f"Regime: {code(a.regime.name)} ({esc(a.regime.recommendation)})",
                f"Session: {esc(a.session.name)}"
                + ("" if a.session.allowed else f" ⛔ {esc(a.session.reason)}"),
                f"Status: {'✅ READY' if _ready(snapshot) else '⛔ WAIT'}",
                f"Last bar: {decision_line(snapshot.last_decision)}"
                if snapshot.last_decision is not None
                else "",
            ],
        ),
        section("Risk", _risk_items(snapshot)),
        section(f"Positions ({len(snapshot.positions)})", position_lines(snapshot)),
    ]
    return compose(header, *blocks, time=snapshot.time)


# ---------------------------------------------------------------------------------------- hourly


def _blocking_gate(decision: DecisionLike) -> Any | None:
    return next((g for g in decision.gates if g.blocked), None)


def decision_line(decision: DecisionLike) -> str:
    """`13:45 BUY enter` or `13:30 — skip: session (Asian session)`, bar close time in WIB."""
    from datetime import timedelta

    when = esc(to_wib(decision.bar_time + timedelta(minutes=15)).strftime("%H:%M"))
    side = getattr(decision, "side", None)
    side_s = esc(side) if side is not None else "—"
    p_up = f" p_up {code(pct(decision.p_up))}" if decision.p_up is not None else ""
    if decision.action == "enter":
        return f"{when} {side_s} ✅ <b>enter</b>{p_up}"
    gate = _blocking_gate(decision)
    if gate is not None:
        return f"{when} {side_s} ⛔ {code(gate.name)}: {esc(gate.reason)}{p_up}"
    return f"{when} {side_s} {esc(decision.action)}: {esc(decision.reason)}{p_up}"


def hourly_analysis(
    snapshot: EngineSnapshot,
    recent_decisions: Sequence[DecisionLike],
    symbol: str = DEFAULT_SYMBOL,
    started_wall: datetime | None = None,
) -> str:
    """The hourly report: account, positions, market, what the last 4 bars decided and which gate
    blocked, risk, and loop timing. Uptime is wall time since `started_wall` (the app's start); without
    it, the snapshot's own clock (the same as wall time on a live market)."""
    header = f"📊 <b>HOURLY</b> {esc(fmt_wib(snapshot.time))}"
    acc = snapshot.account
    account_items = []
    if acc is not None:
        account_items = [
            f"Bal: {code(usd(acc.balance))} | Eq: {code(usd(acc.equity))}",
            f"Float: {code(signed(acc.floating_pl))}",
            f"Day P/L: {code(signed(snapshot.risk.daily_realized))} ({esc(plural(snapshot.risk.daily_trades, 'trade'))})",
        ]
    a = snapshot.analysis
    market_items = []
    if a is not None:
        market_items = [
            f"{esc(symbol)}: {code(price(a.close))} | ATR {code(f'{a.atr:.2f}')} | Spread {code(a.spread_points)}",
            f"Session: {esc(a.session.name)} | Regime: {code(a.regime.name)}",
            _ml_line(snapshot),
            f"Quality: {code(a.quality.level.upper())} ({code(f'{a.quality.score:.0f}')}) → "
            f"{'✅ READY' if _ready(snapshot) else '⛔ WAIT'}",
        ]
    last = sorted(recent_decisions, key=lambda d: d.bar_time)[-4:]
    decision_items = [decision_line(d) for d in last] or ["<i>no closed bar decided yet</i>"]
    run_for = wall_uptime(started_wall) if started_wall is not None else snapshot.time - snapshot.started
    uptime = fmt_duration(run_for.total_seconds())
    bot_items = [f"Uptime: {code(uptime)}"]
    bot_items += [
        f"{esc(name)}: p50 {code(f'{p50:.1f} ms')} p99 {code(f'{p99:.1f} ms')}"
        for name, (p50, p99) in sorted(snapshot.timing.items())
    ]
    blocks = [
        section("Account", account_items),
        section(f"Positions ({len(snapshot.positions)})", position_lines(snapshot) or ["No positions"]),
        section("Market", market_items),
        section(f"Last {plural(len(last), 'bar')}" if len(last) > 1 else "Last bar", decision_items),
        section("Risk", _risk_items(snapshot)),
        section("Bot", bot_items),
    ]
    return compose(header, *blocks, time=snapshot.time, with_date=True)


# ---------------------------------------------------------------------------------------- daily


@dataclass(frozen=True, slots=True)
class DayReport:
    """A WIB day's closed trades and equity, read from the journal (trades oldest first)."""

    day: date
    trades: tuple[TradeRecord, ...]
    equity: tuple[EquitySnapshot, ...]
    start_balance: float | None
    end_balance: float | None

    @property
    def profits(self) -> list[float]:
        return [t.profit or 0.0 for t in self.trades]

    @property
    def wins(self) -> int:
        return sum(1 for p in self.profits if p > 0)

    @property
    def losses(self) -> int:
        return sum(1 for p in self.profits if p < 0)

    @property
    def net(self) -> float:
        return sum(self.profits)

    @property
    def gross_win(self) -> float:
        return sum(p for p in self.profits if p > 0)

    @property
    def gross_loss(self) -> float:
        return -sum(p for p in self.profits if p < 0)

    @property
    def win_rate(self) -> float | None:
        return self.wins / len(self.trades) if self.trades else None

    @property
    def profit_factor(self) -> float | None:
        """Gross win / gross loss; inf with wins and no losses; None with neither."""
        if self.gross_loss > 0:
            return self.gross_win / self.gross_loss
        return float("inf") if self.gross_win > 0 else None

    def best(self) -> TradeRecord | None:
        return max(self.trades, key=lambda t: t.profit or 0.0) if self.trades else None

    def worst(self) -> TradeRecord | None:
        return min(self.trades, key=lambda t: t.profit or 0.0) if self.trades else None

    def summary(self) -> Any:
        """The `bot.store.DailySummary` row for `journal.record_daily_summary` (balances 0 when unknown)."""
        from bot.store import DailySummary

        end = self.end_balance if self.end_balance is not None else 0.0
        start = self.start_balance if self.start_balance is not None else end - self.net
        return DailySummary(self.day, len(self.trades), self.wins, self.losses, self.net, start, end)


async def day_report(journal: Journal, day_wib: date, snapshot: EngineSnapshot | None = None) -> DayReport:
    """Read a WIB day from the journal. End balance: the day's last equity snapshot, else the live
    account when the snapshot is of that day; start balance: the risk state's day-start balance for
    that day, else the first snapshot's balance before any trade closed, else end minus the net."""
    from bot.store.journal import wib_day_bounds

    start, end = wib_day_bounds(day_wib)
    trades = [
        t for t in await journal.closed_trades(since=start) if t.close_time is not None and t.close_time < end
    ]
    trades.sort(key=lambda t: (t.close_time, t.id))
    equity = [s for s in await journal.equity_snapshots(since=start) if s.time < end]
    live = snapshot is not None and snapshot.account is not None and to_wib(snapshot.time).date() == day_wib
    end_balance: float | None = None
    if equity:
        end_balance = equity[-1].balance
    if live:
        end_balance = snapshot.account.balance  # type: ignore[union-attr]
    net = sum(t.profit or 0.0 for t in trades)
    start_balance: float | None = None
    if snapshot is not None and snapshot.risk.day == day_wib:
        start_balance = snapshot.risk.day_start_balance
    elif equity and (not trades or equity[0].time <= trades[0].close_time):  # type: ignore[operator]
        start_balance = equity[0].balance
    elif end_balance is not None:
        start_balance = end_balance - net
    return DayReport(day_wib, tuple(trades), tuple(equity), start_balance, end_balance)


def _trade_row(t: TradeRecord) -> str:
    p = t.profit or 0.0
    icon = "✅" if p > 0 else ("❌" if p < 0 else "➖")
    return f"{icon} #{esc(t.ticket)} {esc(t.side)}: {code(signed(p))}"


def daily_summary_html(report: DayReport, now: datetime) -> str:
    """The daily report text; `now` is the time on its clock line."""
    net = report.net
    icon = "🎉" if net > 0 else ("📉" if net < 0 else "➖")
    header = f"{icon} <b>DAILY REPORT</b> {esc(report.day.isoformat())}"
    if not report.trades:
        result = [
            f"Bal Start: {code(usd(report.start_balance))}",
            f"Bal End: {code(usd(report.end_balance))}",
        ]
        return compose(
            header, f"No trades on {esc(report.day.isoformat())}.", section("Result", result), time=now
        )
    pnl_pct = f" ({net / report.start_balance:+.2%})" if report.start_balance else ""
    pf = report.profit_factor
    pf_s = "∞" if pf == float("inf") else ("—" if pf is None else f"{pf:.2f}")
    best, worst = report.best(), report.worst()
    result = [
        f"P/L: <b>{esc(signed(net))}</b>{esc(pnl_pct)}",
        f"Gross Win: {code(signed(report.gross_win))} | Gross Loss: {code(signed(-report.gross_loss))}",
        f"Bal Start: {code(usd(report.start_balance))}",
        f"Bal End: {code(usd(report.end_balance))}",
    ]
    stats = [
        f"Total: {code(len(report.trades))} | Wins {code(report.wins)} | Losses {code(report.losses)}",
        f"Win Rate: {code(pct(report.win_rate, 1))}",
        f"Profit Factor: {code(pf_s)} | Avg/Trade: {code(signed(net / len(report.trades)))}",
        f"Best: {_trade_row(best)}" if best is not None else "",
        f"Worst: {_trade_row(worst)}" if worst is not None and worst is not best else "",
    ]
    recent = [_trade_row(t) for t in report.trades[-5:]]
    return compose(
        header, section("Result", result), section("Stats", stats), section("Recent Trades", recent), time=now
    )


def _chart(report: DayReport) -> bytes:
    from charts.equity import equity_chart

    title = f"Equity {report.day.isoformat()} (WIB)"
    if report.equity:
        return equity_chart(
            [s.time for s in report.equity],
            [s.equity for s in report.equity],
            [s.balance for s in report.equity],
            title=title,
        )
    if report.trades and report.start_balance is not None:  # no snapshots: the balance after each close
        from bot.store.journal import wib_day_bounds

        times = [wib_day_bounds(report.day)[0]] + [t.close_time for t in report.trades]
        balances = [report.start_balance]
        for p in report.profits:
            balances.append(balances[-1] + p)
        return equity_chart(times, balances, title=title)
    return equity_chart([], [], title=title)


async def daily_summary(
    journal: Journal, day_wib: date, snapshot: EngineSnapshot | None = None
) -> tuple[str, bytes]:
    """(HTML, equity chart PNG) for a WIB day: trades, wins/losses, win rate, net P/L, best/worst
    trade, start/end balance. The chart is drawn in a worker thread."""
    report = await day_report(journal, day_wib, snapshot)
    png = await asyncio.to_thread(_chart, report)
    return daily_summary_html(report, snapshot.time if snapshot is not None else utc_now()), png


__all__ = [
    "DayReport",
    "daily_summary",
    "daily_summary_html",
    "day_report",
    "decision_line",
    "hourly_analysis",
    "market_update",
    "position_lines",
]
