"""/logs [n], /health and /version: the bot itself, for the trader who wants to know it is well."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from typing import Any

from aiogram import Router
from aiogram.filters import CommandObject
from aiogram.types import Message

from handlers.common import (
    ArgError,
    AuditNote,
    clock_line,
    duration,
    esc,
    join_sections,
    parse_count,
    plural,
    reply,
    section,
)
from handlers.model import model_report
from handlers.paging import send_paged
from handlers.services import JournalWrites, Services
from trading.sessions import market_status

DEFAULT_LOGS, MAX_LOGS = 20, 100
LEVELS = {
    "all": 0,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "errors": logging.ERROR,
}
STALE_BAR = timedelta(minutes=35)  # a closed M15 bar is due every 15 minutes while the market is open
SLOW_LOOP_MS = 1000.0


def parse_logs_args(args: str | None) -> tuple[int, int]:
    """`[n] [all|info|warn|error]` in either order -> (n, minimum level)."""
    n, level = DEFAULT_LOGS, 0
    for word in (args or "").split():
        if word.lower() in LEVELS:
            level = LEVELS[word.lower()]
        else:
            n = parse_count(word, default=DEFAULT_LOGS, low=1, high=MAX_LOGS, what="The number of lines") or n
    return n, level


async def logs(message: Message, command: CommandObject, ctx: Services, audit: AuditNote) -> None:
    try:
        n, level = parse_logs_args(command.args)
    except ArgError as exc:
        audit.result = f"usage: {exc}"
        await reply(
            message, f"{esc(exc)}\nUsage: /logs [n] [warn|error] — the last n log lines (1 to {MAX_LOGS})"
        )
        return
    if ctx.logs is None:
        audit.result = "no log buffer"
        await reply(message, "The log is not kept in memory in this run.")
        return
    lines = ctx.logs.lines(n, level)
    audit.result = f"{len(lines)} lines"
    if not lines:
        await reply(message, "🗒 No log lines" + (" at that level." if level else " yet."))
        return
    body = "\n".join(line[:200] for line in lines)
    await send_paged(
        message,
        ctx,
        f"🗒 <b>LOG</b> · last {plural(len(lines), 'line')}\n<pre>{esc(body)}</pre>",
        header_rows=0,
        last_first=True,
    )


def health_items(
    snap: Any,
    now: datetime,
    warnings_last_hour: int | None,
    journal_ok: str,
    model: str,
    trainer_running: bool,
    warming: frozenset[str] = frozenset(),
    *,
    model_ok: bool = True,
    entries_blocked: str = "",
) -> tuple[list[str], list[str]]:
    """(lines, problems): each line starts with ✅ or ⚠️; problems repeat the ⚠️ lines for the headline."""
    out: list[tuple[bool, str]] = []
    acc = snap.account
    out.append(
        (
            acc is not None and acc.trade_allowed,
            "Broker: account read" + ("" if acc is None or acc.trade_allowed else ", trading NOT allowed")
            if acc is not None
            else "Broker: no account data",
        )
    )
    market = market_status(now)
    decision = snap.last_decision
    if decision is None:
        out.append(
            (not market.is_open, "Bars: no decision yet" + ("" if market.is_open else " (market closed)"))
        )
    else:
        age = now - (decision.bar_time + timedelta(minutes=15))
        fresh = age <= STALE_BAR or not market.is_open
        out.append(
            (
                fresh,
                f"Bars: last decision on the bar closed {duration(age)} ago"
                + ("" if market.is_open else " (market closed)"),
            )
        )
    # the first runs after start-up compile code and fill caches: judged once steady runs exist
    slow = [
        (phase, p99) for phase, (_, p99) in snap.timing.items() if p99 > SLOW_LOOP_MS and phase not in warming
    ]
    loop_ok = "every phase under 1 s (p99)" if not warming else "warming up (the first bars after start-up)"
    out.append(
        (not slow, "Loop: " + (", ".join(f"{p} p99 {ms:,.0f} ms" for p, ms in slow) if slow else loop_ok))
    )
    out.append((journal_ok == "ok", f"Journal: {journal_ok}"))
    out.append((model_ok, f"Model: {model}" + (" (retraining now)" if trainer_running else "")))
    entries = f"blocked: {entries_blocked}" if entries_blocked else "paused" if snap.paused else "allowed"
    out.append((not snap.paused and not entries_blocked, f"Entries: {entries} · mode {snap.mode.mode}"))
    if warnings_last_hour is not None:
        out.append(
            (
                warnings_last_hour == 0,
                f"Log: {plural(warnings_last_hour, 'warning or error', 'warnings or errors')} in the last hour",
            )
        )
    lines = [("✅ " if ok else "⚠️ ") + esc(text) for ok, text in out]
    return lines, [esc(text) for ok, text in out if not ok]


async def health(message: Message, ctx: Services, audit: AuditNote) -> None:
    snap = ctx.engine.snapshot()
    try:
        sqlite = await ctx.journal.sqlite_settings()
        journal_ok = (
            "ok" if sqlite.get("journal_mode") == "wal" else f"journal mode {sqlite.get('journal_mode')}"
        )
    except Exception as exc:  # a broken journal is exactly what /health is for
        journal_ok = f"unreadable ({type(exc).__name__})"
    writes = ctx.journal.health
    journal_ok = journal_write_state(writes, datetime.now(snap.time.tzinfo)) or journal_ok
    warnings = ctx.logs.count_since(time.time() - 3600) if ctx.logs is not None else None
    report = model_report(ctx.registry, ctx.models)
    model = report.version or "none (SMC-only)"
    if report.problem:
        model += (
            f"; the registry names {report.pointer}: {report.problem}"
            if report.pointer
            else f"; {report.problem}"
        )
    warming = frozenset(ctx.engine.timer.warming_up())
    lines, problems = health_items(
        snap,
        snap.time,
        warnings,
        journal_ok,
        model,
        ctx.trainer is not None and ctx.trainer.running,
        warming,
        model_ok=not report.problem,
        entries_blocked=writes.entries_blocked,
    )
    head = "🩺 <b>HEALTH</b> " + (
        "all good" if not problems else f"{plural(len(problems), 'thing')} to look at"
    )
    audit.result = "ok" if not problems else f"{len(problems)} problem(s)"
    up = f"Up {duration(datetime.now(snap.time.tzinfo) - ctx.started)} (wall clock)"
    await reply(message, join_sections(head, "\n".join(lines), up, clock_line(snap.time)))


def journal_write_state(writes: JournalWrites, now: datetime) -> str:
    """ "" when the journal writes; else what the trader should know (since when, the error, what is held)."""
    held = (
        f"; held in memory: {', '.join(writes.held[:5])}" + ("…" if len(writes.held) > 5 else "")
        if writes.held
        else ""
    )
    if writes.failing_since is not None:
        return f"NOT writable for {duration(now - writes.failing_since)} ({writes.error}){held}"
    return f"writes again, still booking{held}" if writes.held else ""


def version_text(info: dict[str, str], model: str, schema: str, now: datetime | None = None) -> str:
    libs = [f"{esc(k)} {esc(v)}" for k, v in info.items() if k != "xaubot"]
    return join_sections(
        f"🏷 <b>xaubot {esc(info.get('xaubot', '?'))}</b>",
        section("Running", [f"Model {esc(model)}", f"Journal schema {esc(schema)}"]),
        section("Libraries", libs),
        clock_line(now) if now is not None else "",
    )


async def version(message: Message, ctx: Services) -> None:
    try:
        model = model_report(ctx.registry, ctx.models).version or "none (SMC-only)"
    except Exception:
        model = "registry unreadable"
    schema = await ctx.queries.schema_revision() if ctx.queries is not None else "?"
    await reply(message, version_text(ctx.version, model, schema, ctx.engine.snapshot().time))


def make_router() -> Router:
    return Router(name="system")
