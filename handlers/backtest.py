"""/backtest [days]: the strategy replayed over the bot's own recent bars, off the trading loop.
`/backtest [days] challenger v007 challenger params NAME` (a challenger is a stored model version, a
parameter set, or both, as in /shadow add; up to the shadow's most): the strategy and each challenger
side by side, by the code `main.py backtest --challenger` and /shadow run, with the difference per day.

One status message is edited in place while it runs (at most every PROGRESS_EVERY seconds); it
becomes the report, and the equity chart and the P/L per trade follow as one album (a comparison: one
chart of every equity curve). The work runs behind the injected `Backtester` (bot.backtests) or
`ShadowControl.backtest` (bot.shadow_backtests), never in a handler and never on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from aiogram import Bot, Router
from aiogram.filters import CommandObject
from aiogram.types import Message

from charts.shadow import Curve, shadow_equity_chart
from handlers.common import (
    ArgError,
    AuditNote,
    clock_line,
    count,
    edit_in_place,
    esc,
    join_sections,
    parse_count,
    pct,
    plural,
    reply,
    section,
    short_time,
    signed,
    usd,
)
from handlers.media import send_charts
from handlers.names import exit_reason_words
from handlers.services import BacktestRefused, BacktestReport, Services

log = logging.getLogger(__name__)

DEFAULT_DAYS, MAX_DAYS = 7, 90
USAGE = (
    f"Usage: /backtest [days] — default {DEFAULT_DAYS}, at most {MAX_DAYS}; to compare, add "
    "challenger v007 · challenger params NAME · challenger v007 params NAME"
)
Request = tuple[str | None, str | None]  # (model version, parameter set name) of one challenger
PROGRESS_EVERY = 2.0


def _num(x: Any, fmt: str = "{:.2f}") -> str:
    return "—" if x is None else fmt.format(x)


def days_said(r: BacktestReport) -> str:
    """`21 calendar days (14.2 days of trading bars)`: a calendar span, with the market's own hours beside it."""
    trading = f" ({r.trading_days:.1f} days of trading bars)" if r.trading_days else ""
    return f"{r.days:.1f} calendar days{trading}"


def report_text(r: BacktestReport, now: datetime | None = None) -> str:
    m = r.metrics
    trades = int(m.get("trades", 0))
    short = (
        f" (asked {plural(r.requested_days, 'day')}; the bot's bars reach back only this far)"
        if r.days < r.requested_days - 0.5
        else ""
    )
    head = f"🧪 <b>BACKTEST</b> · {days_said(r)}{short}"
    span = (
        f"{short_time(r.first)} → {short_time(r.last)} WIB · {plural(r.bars, 'bar')} · {esc(r.models)} · "
        f"{r.seconds:.0f} s"
    )
    pf = m.get("profit_factor")
    figures = section(
        "Result",
        [
            f"Net <code>{signed(m.get('net_profit', 0.0))}</code> · final equity {usd(m.get('final_equity', 0.0))}",
            f"{plural(trades, 'trade').capitalize()} · win rate {pct(m.get('win_rate', 0.0))}",
            f"Profit factor {_num(pf) if pf is not None else '— (no losing trade)'} · expectancy "
            f"<code>{signed(m.get('expectancy', 0.0))}</code>",
            f"Max drawdown {m.get('max_drawdown_pct', 0.0):.2f}% · Sharpe {_num(m.get('sharpe'))}",
        ],
    )
    reasons = m.get("exit_reasons") or {}
    exits = section(
        "Exits", [f"{esc(exit_reason_words(k))} {count(v)}" for k, v in list(reasons.items())[:6]]
    )
    checks = section("Checks", check_lines(r.checks)) if r.checks else ""
    note = (
        "<i>Past bars, the live rules and costs of the paper broker; "
        f"{plural(trades, 'trade')} {'is' if trades == 1 else 'are'} "
        f"{'a small' if trades < 30 else 'a'} sample.</i>"
    )
    return join_sections(head, span, figures, exits, checks, note, clock_line(now) if now is not None else "")


def _rule_words(names: list[str], most: int = 4) -> str:
    words = [n.replace("_", " ") for n in names]
    more = f" +{len(words) - most} more" if len(words) > most else ""
    return (", ".join(words[:most]) + more) if words else "none"


def check_lines(checks: dict[str, Any]) -> list[str]:
    """The fills and coherence lines of trading.run_checks, phone-sized: the rules that never fired and
    those the parameters make unreachable, then where the stops filled against their levels."""
    coherence = checks["coherence"]
    silent = [n for kind, names in coherence["never_fired"].items() if kind != "gate" for n in names]
    gates = coherence["never_fired"].get("gate", [])
    unreachable = [c["rule"] for c in coherence["contradictions"]]
    lines = [f"Never fired: {esc(_rule_words(silent))} · unreachable: {esc(_rule_words(unreachable))}"]
    if gates:
        lines.append(f"Gates that never blocked: {esc(_rule_words(gates))}")
    sl, tp = checks["fills"]["sl"], checks["fills"]["tp"]
    if sl["fills"] or tp["fills"]:
        lines.append(
            f"Stops: {count(sl['fills'])} SL ({count(sl['gapped'])} gapped), {sl['mean_points']:+.1f} pts "
            f"avg, worst {sl['worst_points']:+.1f} · {count(tp['fills'])} TP"
        )
    return lines


def parse_backtest(args: str | None) -> tuple[int, list[Request]]:
    """(days, challengers) of `/backtest [days] [challenger v007 [params NAME]] ...`; ArgError otherwise.
    "challenger" starts each one; a version or params without it starts one too when the last has its own."""
    words = (args or "").split()
    days = DEFAULT_DAYS
    if words and words[0].lstrip("+").isdigit():
        days = parse_count(words[0], default=DEFAULT_DAYS, low=1, high=MAX_DAYS, what="Days") or days
        words = words[1:]
    found: list[list[str | None]] = []
    i = 0
    while i < len(words):
        word = words[i].lower()
        if word == "challenger":
            found.append([None, None])
            i += 1
            continue
        if word == "params":
            if i + 1 >= len(words) or words[i + 1].lower() == "challenger":
                raise ArgError("params needs one name, e.g. challenger params fast-exit")
            slot, value, i = 1, words[i + 1], i + 2
        elif word.startswith("v") and word[1:].isdigit():
            slot, value, i = 0, words[i], i + 1
        else:
            what = "a number of days" if not found and i == 0 else "a model version (v007)"
            raise ArgError(f"{words[i]!r} is neither {what} nor 'challenger' / 'params NAME'")
        if not found or found[-1][slot] is not None:
            found.append([None, None])
        found[-1][slot] = value
    if any(m is None and p is None for m, p in found):
        raise ArgError("each challenger needs a model version (v007), params NAME, or both")
    return days, [(m, p) for m, p in found]


async def backtest(
    message: Message, command: CommandObject, ctx: Services, bot: Bot, audit: AuditNote
) -> None:
    try:
        days, requests = parse_backtest(command.args)
    except ArgError as exc:
        audit.result = f"usage: {exc}"
        await reply(message, f"{esc(exc)}\n{USAGE}")
        return
    if requests:
        await _compare(message, ctx, bot, audit, days, requests)
        return
    tester = ctx.backtester
    if tester is None:
        audit.result = "no backtester"
        await reply(message, "Backtests are not available in this run.")
        return
    if tester.running:
        audit.result = "already running"
        await reply(message, "A backtest is already running: its report comes in this chat.")
        return
    status = await reply(message, f"🧪 Backtest of the last {plural(days, 'calendar day')}: starting…")
    progress = {"done": 0, "total": 0}

    def on_progress(done: int, total: int) -> None:  # from the worker thread: plain assignments only
        progress["done"], progress["total"] = done, total

    audit.result = f"started {days} days"
    clock = ctx.engine.snapshot
    ctx.backtest_task = asyncio.create_task(
        _follow(bot, status, tester.run(days, on_progress), progress, lambda: clock().time)
    )


async def _compare(
    message: Message, ctx: Services, bot: Bot, audit: AuditNote, days: int, requests: list[Request]
) -> None:
    shadow = ctx.shadow
    if shadow is None:
        audit.result = "shadow off"
        await reply(message, "Challengers are off in this run: /backtest [days] tests the strategy alone.")
        return
    progress = {"done": 0, "total": 0}

    def on_progress(done: int, total: int) -> None:  # from the worker thread: plain assignments only
        progress["done"], progress["total"] = done, total

    try:
        work = shadow.backtest(days, requests, on_progress)
    except ValueError as exc:  # an unknown version, a bad parameter set, a copy of live, one running
        audit.result = f"refused: {exc}"
        await reply(message, f"🧪 No backtest: {esc(exc)}")
        return
    audit.result = f"started {days} days, {plural(len(requests), 'challenger')}"
    status = await reply(
        message,
        f"🧪 Backtest of the last {plural(days, 'calendar day')}, the strategy and "
        f"{plural(len(requests), 'challenger')}: starting…",
    )
    clock = ctx.engine.snapshot
    ctx.backtest_task = asyncio.create_task(
        _follow(bot, status, work, progress, lambda: clock().time, comparison=True)
    )


def _figures_line(f: dict[str, Any]) -> str:
    pf = f.get("profit_factor")
    return (
        f"Trades {f['trades']} · win {_num(f.get('win_rate'), '{:.0%}')} · PF "
        f"{_num(pf) if pf is not None else '—'} · net <code>{signed(f['net'])}</code> · max DD "
        f"{f['max_drawdown_pct']:.1f}%"
    )


def _expectancy_line(f: dict[str, Any]) -> str:
    er, ci = f.get("expectancy_r"), f.get("expectancy_r_ci95")
    if er is None:
        return "Expectancy — R"
    return f"Expectancy {er:+.2f} R" + (f" (95% {ci[0]:+.2f}…{ci[1]:+.2f})" if ci else "")


def _versus_line(v: dict[str, Any]) -> str:
    if v["ci95"] is None:
        return f"vs strategy: {plural(v['days'], 'day')}, too few to judge"
    better = "better" if v["mean_per_day"] > 0 else "worse"
    return (
        f"vs strategy: {signed(v['mean_per_day'])}/day over {v['days']} days (95% {signed(v['ci95'][0])}…"
        f"{signed(v['ci95'][1])}) · {better}, evidence {esc(v['strength'])}"
    )


def comparison_text(r: Any, now: datetime | None = None) -> str:
    """A finished comparison (bot.shadow_backtests.ComparisonReport): the strategy, then each challenger
    with its difference to the strategy per day."""
    f = r.figures
    rivals = f["challengers"]
    head = (
        f"🧪 <b>BACKTEST</b> · strategy vs {plural(len(rivals), 'challenger')} · {r.days:.1f} calendar days"
    )
    span = (
        f"{short_time(r.first)} → {short_time(r.last)} WIB · {plural(r.bars, 'bar')} · {esc(r.models)} · "
        f"{r.seconds:.0f} s"
    )
    parts = [section("Strategy", [_figures_line(f["strategy"]), _expectancy_line(f["strategy"])])]
    for n, c in enumerate(rivals, start=1):
        lines = [_figures_line(c), _expectancy_line(c), _versus_line(c["vs_strategy"])]
        if c.get("errors"):
            lines.append(f"⚠️ {c['errors']} failed steps (see /logs)")
        parts.append(section(f"#{n} {esc(c['label'])}", lines))
    note = (
        f"<i>Past bars; each on its own paper account from {usd(r.balance)}, by the code /shadow runs "
        "forward. The difference is paired by WIB day.</i>"
    )
    return join_sections(head, span, *parts, note, clock_line(now) if now is not None else "")


def comparison_curves(r: Any) -> list[Curve]:
    start = (datetime.fromisoformat(r.figures["start"]), r.balance)

    def curve(label: str, f: dict[str, Any], live: bool) -> Curve:
        times = [datetime.fromisoformat(t) for t, _ in f["curve"]]
        return Curve(label, start, times, [p for _, p in f["curve"]], live=live)

    rivals = r.figures["challengers"]
    return [curve("strategy", r.figures["strategy"], True)] + [
        curve(f"#{n} {c['label']}", c, False) for n, c in enumerate(rivals, start=1)
    ]


async def _follow(
    bot: Bot,
    status: Message,
    work: Any,
    progress: dict[str, int],
    now: Callable[[], datetime] | None = None,
    comparison: bool = False,
) -> None:
    task = asyncio.ensure_future(work)
    started, shown = time.monotonic(), ""
    while not task.done():
        total = progress["total"]
        pct = f"{progress['done'] / total:.0%} of {count(total)} bars" if total else "preparing"
        text = f"🧪 Backtest running: {pct} · {time.monotonic() - started:.0f} s"
        if text != shown:
            shown = await edit_in_place(bot, status, text) or shown
        await asyncio.wait({task}, timeout=PROGRESS_EVERY)
    try:
        report = task.result()
    except BacktestRefused as exc:
        await edit_in_place(bot, status, f"🧪 No backtest: {esc(exc)}")
        return
    except Exception as exc:
        log.exception("backtest failed")
        await edit_in_place(
            bot, status, f"❌ Backtest failed: {esc(type(exc).__name__)}: {esc(exc)} (details in /logs)"
        )
        return
    at = now() if now is not None else None
    if comparison:
        await edit_in_place(bot, status, comparison_text(report, at))
        png = await asyncio.to_thread(
            shadow_equity_chart, comparison_curves(report), report.last, "Backtest: strategy and challengers"
        )
        caption = f"Backtest equity, strategy and challengers, {report.days:.1f} calendar days"
        caption += f"\n{clock_line(at)}" if at is not None else ""
        await send_charts(bot, status.chat.id, [(png, "backtest_challengers.png")], caption=caption)
        return
    await edit_in_place(bot, status, report_text(report, at))
    # equity and P/L per trade as one album: one swipe on a phone
    caption = f"Backtest equity, {days_said(report)}" + (f"\n{clock_line(at)}" if at is not None else "")
    await send_charts(
        bot,
        status.chat.id,
        [
            (report.equity_png or b"", "backtest_equity.png"),
            (report.distribution_png or b"", "backtest_pnl.png"),
        ],
        caption=caption,
    )


def make_router() -> Router:
    return Router(name="backtest")
