"""/shadow: live and the shadow challengers since each started, with one chart of their equity curves;
`/shadow add v007`, `/shadow add params NAME` (or both), `/shadow drop N`.

Thin: the words are parsed here, everything else is `ctx.shadow` (handlers.services.ShadowControl).
A refused change is one line and changes nothing; the access middleware audits every call with the
result set here. The chart is drawn off the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aiogram import Bot, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import CommandObject
from aiogram.filters.callback_data import CallbackData
from aiogram.types import BufferedInputFile, CallbackQuery, InlineKeyboardMarkup, Message

from charts.shadow import Curve, shadow_equity_chart
from handlers.buttons import styled_button
from handlers.clock import wall_time
from handlers.common import ArgError, AuditNote, esc, reply, short_time, signed
from handlers.services import Services
from trading.risk.approvals import ApprovalError, ApprovalStatus

USAGE = "usage: /shadow · /shadow add v007 · /shadow add params NAME · /shadow add v007 params NAME · /shadow drop N"


def parse_shadow(args: str | None) -> tuple[str, dict[str, Any]]:
    """("list", {}), ("add", {"model": ..., "params": ...}) or ("drop", {"number": n}); ArgError otherwise."""
    words = (args or "").split()
    if not words:
        return "list", {}
    verb, rest = words[0].lower(), words[1:]
    if verb == "drop":
        if len(rest) != 1 or not rest[0].lstrip("#").isdigit():
            raise ArgError(f"drop needs one challenger number, e.g. /shadow drop 2 ({USAGE})")
        return "drop", {"number": int(rest[0].lstrip("#"))}
    if verb != "add" or not rest:
        raise ArgError(USAGE)
    model = params = None
    i = 0
    while i < len(rest):
        word = rest[i]
        if word.lower() == "params":
            if i + 1 >= len(rest) or params is not None:
                raise ArgError(f"params needs one name, e.g. /shadow add params fast-exit ({USAGE})")
            params = rest[i + 1]
            i += 2
        elif model is None and word.lower().lstrip("v").isdigit():
            model = word
            i += 1
        else:
            raise ArgError(f"{word!r} is neither a model version (v007) nor 'params NAME' ({USAGE})")
    return "add", {"model": model, "params": params}


def _num(x: float | None, fmt: str = "{:.2f}") -> str:
    return "—" if x is None else fmt.format(x)


def line_text(line: Any) -> str:
    st = line.stats
    name = "🟢 <b>Live</b>" if line.number is None else f"🔵 <b>#{line.number}</b> {esc(line.label)}"
    ci = st.expectancy_r_ci
    exp = (
        f"{st.expectancy_r:+.2f} R" + (f" (95% {ci[0]:+.2f}…{ci[1]:+.2f})" if ci else "")
        if st.expectancy_r is not None
        else "— R"
    )
    out = [
        f"{name} · since {short_time(line.started)} WIB",
        f"Trades {st.trades} · win {_num(st.win_rate, '{:.0%}')} · PF {_num(st.profit_factor)} · "
        f"net <code>{signed(st.net)}</code> · max DD {signed(-st.max_drawdown)} ({st.max_drawdown_pct:.1f}%)",
        f"Expectancy {exp} · balance ${line.balance:,.2f} · open {line.open_positions}",
    ]
    d = line.vs_live
    if d is not None:
        if d.ci is None:
            out.append(f"vs live: {d.days} day(s), too few to judge")
        else:
            better = "better" if d.mean_per_day > 0 else "worse"
            out.append(
                f"vs live: {signed(d.mean_per_day)}/day over {d.days} days (95% {signed(d.ci[0])}…"
                f"{signed(d.ci[1])}) · {better}, evidence {d.strength} (P(not better) {d.p_better:.2f})"
            )
    if line.errors:
        out.append(f"⚠️ {line.errors} failed steps (see /logs)")
    return "\n".join(out)


def view_text(view: Any) -> str:
    n = len(view.lines) - 1
    head = f"👥 <b>SHADOW</b> · {n}/{view.max_challengers} challengers on paper beside live"
    body = [line_text(x) for x in view.lines]
    for name in getattr(view, "not_started", ()):
        body.append(f"⚠️ {esc(name)} is stored but did not start (see /logs); /shadow drop removes it.")
    if n == 0 and not getattr(view, "not_started", ()):
        body.append("No challenger yet: /shadow add v007 or /shadow add params NAME.")
    timing = ""
    if view.step_p99_ms is not None:
        timing = (
            f"<i>Challengers' time after the live step: p99 {view.step_p99_ms:.1f} ms a second, "
            f"{_num(view.bar_p99_ms, '{:.1f}')} ms a bar.</i>"
        )
    return "\n\n".join([head, *body, *([timing] if timing else [])])


def curves(view: Any) -> list[Curve]:
    return [
        Curve(
            "live" if x.number is None else f"#{x.number} {x.label}",
            (x.started, x.start_balance),
            [o.close_time for o in x.outcomes],
            [o.profit for o in x.outcomes],
            live=x.number is None,
        )
        for x in view.lines
    ]


async def shadow(
    message: Message, command: CommandObject, ctx: Services, actor: str, audit: AuditNote
) -> None:
    control = ctx.shadow
    if control is None:
        audit.result = "shadow off"
        await reply(message, "Shadow challengers are off in this bot.")
        return
    try:
        verb, args = parse_shadow(command.args)
    except ArgError as exc:
        audit.result = f"usage: {exc}"
        await reply(message, esc(exc))
        return
    if verb == "list":
        view = await control.view()
        audit.result = f"listed {len(view.lines) - 1} challengers"
        await reply(message, view_text(view))
        png = await asyncio.to_thread(shadow_equity_chart, curves(view), view.now)
        await message.answer_photo(
            BufferedInputFile(png, "shadow.png"), caption="Live and challengers: net P/L"
        )
        for approval in control.pending_promotions():
            text, keyboard = promotion_card(approval)
            await message.answer(text, parse_mode="HTML", reply_markup=keyboard)
        return
    try:
        if verb == "add":
            spec = await control.add(model=args["model"], params=args["params"], by=actor)
            audit.result = f"added #{spec.number} {spec.label}"
            await reply(
                message,
                f"✅ Challenger <b>#{spec.number}</b> ({esc(spec.label)}) trades on paper from now, "
                f"start balance ${spec.start_balance:,.2f}. /shadow shows how it does.",
            )
        else:
            spec = await control.drop(args["number"], by=actor)
            audit.result = f"dropped #{spec.number} {spec.label}"
            await reply(
                message,
                f"🗑 Challenger <b>#{spec.number}</b> ({esc(spec.label)}) stopped; "
                "its records are kept aside.",
            )
    except ValueError as exc:
        audit.result = f"refused: {exc}"
        await reply(message, f"❌ {esc(exc)}")


class PromotionAnswer(CallbackData, prefix="sp"):
    id: str
    approve: bool


PROMOTION_MARK = {
    ApprovalStatus.APPROVED: "✅ Approved: it is the live strategy now",
    ApprovalStatus.REJECTED: "❌ Rejected: it stays in shadow",
    ApprovalStatus.EXPIRED: "⌛ Expired: nothing changed, it stays in shadow",
}


def _card_body(approval: Any) -> list[str]:
    return [
        "🏁 <b>PROMOTION — APPROVAL NEEDED</b>",
        "",
        f"<b>Change:</b> {esc(approval.change.summary)}",
        f"<b>Evidence:</b> {esc(approval.reason)}",
        "<b>Risk it changes:</b> live trades with this challenger's model and parameters from the next bar; "
        "the risk limits stay as they are.",
    ]


def promotion_card(approval: Any) -> tuple[str, InlineKeyboardMarkup]:
    text = "\n".join([*_card_body(approval), "", f"Expires {wall_time(approval.expires)}"])
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[
            [
                styled_button("Approve", PromotionAnswer(id=approval.id, approve=True).pack(), "success"),
                styled_button("Reject", PromotionAnswer(id=approval.id, approve=False).pack(), "danger"),
            ]
        ]
    )
    return text, keyboard


def promotion_result(approval: Any, who: str = "") -> str:
    mark = PROMOTION_MARK.get(approval.status, esc(approval.status.value))
    by = f" (by {esc(who or approval.resolved_by)})" if approval.status is not ApprovalStatus.EXPIRED else ""
    return "\n".join([*_card_body(approval)[2:], "", f"<b>{mark}{by}</b>"])


async def on_promotion(
    query: CallbackQuery,
    callback_data: PromotionAnswer,
    ctx: Services,
    bot: Bot,
    actor: str,
    actor_name: str,
    audit: AuditNote,
) -> None:
    control = ctx.shadow
    if control is None:
        audit.result = "shadow off"
        await query.answer("Shadow challengers are off.")
        return
    try:
        approval = await control.resolve_promotion(callback_data.id, callback_data.approve, by=actor)
    except ApprovalError as exc:
        audit.result = f"did nothing: {exc}"
        current = control.promotion(callback_data.id)
        if current is not None and current.status is ApprovalStatus.EXPIRED and query.message is not None:
            with contextlib.suppress(TelegramAPIError):  # show on the card that it lapsed
                await bot.edit_message_text(
                    promotion_result(current),
                    chat_id=query.message.chat.id,
                    message_id=query.message.message_id,
                    parse_mode="HTML",
                )
        await query.answer(str(exc))
        return
    audit.result = f"promotion {approval.status.value}"
    if query.message is not None:
        with contextlib.suppress(TelegramAPIError):  # the card was deleted: the answer stands
            await bot.edit_message_text(
                promotion_result(approval, f"{actor_name} ({actor})"),
                chat_id=query.message.chat.id,
                message_id=query.message.message_id,
                parse_mode="HTML",
            )
    await query.answer()


def make_router() -> Router:
    router = Router(name="shadow")
    router.callback_query.register(on_promotion, PromotionAnswer.filter())
    return router
