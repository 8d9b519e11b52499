"""Approvals in chat: one message per request with Approve / Reject buttons; first answer wins.

The button carries the approval id only. `engine.resolve_approval` decides (unknown, already
answered and expired all raise `ApprovalError`, so a double tap does nothing more); the message is
then edited with the result and who decided. `ApprovalAnnouncer` reads its own queue of engine
events: it posts requests the engine proposed by itself and edits messages whose approval expired.
`ApprovalMessages` (handlers.memory, on the context) remembers which message shows which approval,
shared by both.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

from aiogram import Bot, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from handlers.buttons import styled_button
from handlers.clock import wall_time
from handlers.common import AuditNote, clock_line, esc, join_sections, section, usd
from handlers.names import humanize, who
from handlers.services import Services
from trading.engine import EngineSnapshot
from trading.events import Event, EventKind
from trading.risk.approvals import Approval, ApprovalError, ApprovalStatus
from trading.risk.modes import limit_use

log = logging.getLogger(__name__)

RESULT_MARK = {
    ApprovalStatus.APPROVED: "✅ Approved",
    ApprovalStatus.REJECTED: "❌ Rejected",
    ApprovalStatus.EXPIRED: "⌛ Expired — nothing changed",
}


class ApprovalAnswer(CallbackData, prefix="ap"):
    id: str
    approve: bool


TITLE = "🛡 <b>RISK CHANGE — APPROVAL NEEDED</b>"


def _body(approval: Approval, reader: str | None = None) -> list[str]:
    by = who(approval.requested_by, reader) or "?"
    lines = [TITLE, "", f"<b>Change:</b> {esc(approval.change.summary)}"]
    if (
        approval.reason and approval.reason != f"requested by {approval.requested_by}"
    ):  # not the line below again
        lines.append(f"<b>Reason:</b> {esc(approval.reason)}")
    lines.append(f"<b>Requested by:</b> {esc(by)}")
    return lines


def approval_card(
    approval: Approval, snapshot: EngineSnapshot, reader: str | None = None, notes: Sequence[str] = ()
) -> str:
    """The card without its expiry: the title, the change, who asked, the risk figures at the time of asking."""
    risk, limits = snapshot.risk, snapshot.limits
    balance = snapshot.account.balance if snapshot.account else risk.day_start_balance
    use = limit_use(risk, limits, balance)
    figures = section(
        "Now",
        [
            f"Mode <code>{snapshot.mode.mode}</code> ({esc(humanize(snapshot.mode.reason))})",
            f"Risk/trade {limits.risk_per_trade_pct:g}% · max positions {limits.max_positions}",
            # the same figures and the same percentage (share of the limit used) as /risk and /status
            f"Daily loss {usd(use.daily_loss)} / {usd(use.daily_limit)} ({use.daily_fraction:.0%} used)",
            f"Total loss {usd(use.total_loss)} / {usd(use.total_limit)} ({use.total_fraction:.0%} used)",
            f"Balance {usd(balance)}",
        ],
    )
    effect = section("Will it show in the lots?", [esc(n) for n in notes])
    return join_sections("\n".join(_body(approval, reader)), figures, effect)


def expiry_line(approval: Approval, now: datetime) -> str:
    """`Expires in 10 min (12:48 WIB real time)`: a countdown first, so a replayed market clock never confuses it."""
    minutes = max(0, math.ceil((approval.expires - now).total_seconds() / 60))
    return f"Expires in {minutes} min ({wall_time(approval.expires)})"


def render_approval(
    approval: Approval,
    snapshot: EngineSnapshot,
    now: datetime | None = None,
    reader: str | None = None,
    notes: Sequence[str] = (),
) -> tuple[str, InlineKeyboardMarkup]:
    """The request message: the card, the expiry, the clock line, and the buttons."""
    card = approval_card(approval, snapshot, reader, notes)
    expiry = expiry_line(approval, now or approval.created)
    text = join_sections(card, expiry, clock_line(snapshot.time))
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[
            [
                styled_button("Approve", ApprovalAnswer(id=approval.id, approve=True).pack(), "success"),
                styled_button("Reject", ApprovalAnswer(id=approval.id, approve=False).pack(), "danger"),
            ]
        ]
    )
    return text, keyboard


def render_result(
    approval: Approval, card: str | None = None, by_name: str = "", market_now: datetime | None = None
) -> str:
    """The same card once answered or expired (no buttons): its title and figures kept, the result under them."""
    mark = RESULT_MARK.get(approval.status, esc(approval.status.value))
    name = by_name or who(approval.resolved_by)
    when = f" at {wall_time(approval.resolved_at, always=True)}" if approval.resolved_at else ""
    if approval.status is ApprovalStatus.EXPIRED:
        line = mark + (" (superseded by a newer request)" if approval.resolved_by == "superseded" else "")
    else:
        line = f"{mark} by {esc(name)}{when}"
    return join_sections(
        card or "\n".join(_body(approval)),
        f"<b>{line}</b>",
        clock_line(market_now) if market_now is not None else "",
    )


async def send_approval(
    message: Message, ctx: Services, approval: Approval, notes: Sequence[str] = ()
) -> Message:
    """Post the request in the chat that asked for it (the announcer then leaves it alone)."""
    board = ctx.approval_messages
    board.claimed.add(approval.id)
    snapshot = ctx.engine.snapshot()
    reader = _reader(message.chat.type, message.from_user.id if message.from_user else None)
    text, keyboard = render_approval(approval, snapshot, ctx.engine.approval_clock(), reader, notes)
    sent = await message.answer(text, parse_mode="HTML", reply_markup=keyboard)
    board.where[approval.id] = (sent.chat.id, sent.message_id)
    board.cards[approval.id] = approval_card(approval, snapshot, reader, notes)
    return sent


def _reader(chat_type: str | None, user_id: int | None) -> str | None:
    """Who reads a chat, for "you": the one user of a private chat (a group reads names)."""
    return f"tg:{user_id}" if chat_type == "private" and user_id is not None else None


async def on_answer(
    query: CallbackQuery,
    callback_data: ApprovalAnswer,
    ctx: Services,
    bot: Bot,
    actor: str,
    actor_name: str,
    audit: AuditNote,
) -> None:
    board = ctx.approval_messages
    shown = callback_data.id in board.final
    board.final.add(callback_data.id)  # before the engine publishes, so the announcer leaves this edit to us
    try:
        approval = await ctx.engine.resolve_approval(callback_data.id, callback_data.approve, by=actor)
    except ApprovalError as exc:
        audit.result = f"did nothing: {exc}"
        current = ctx.engine.approvals.get(callback_data.id)
        if current is not None and not shown and query.message is not None:
            # e.g. expired before the engine's tick noticed: show it now
            await _edit(
                bot,
                query.message.chat.id,
                query.message.message_id,
                render_result(current, board.cards.get(current.id), market_now=ctx.engine.snapshot().time),
            )
        await query.answer(str(exc))
        return
    audit.result = approval.status.value
    assert query.message is not None
    reader = _reader(query.message.chat.type, query.from_user.id)
    await _edit(
        bot,
        query.message.chat.id,
        query.message.message_id,
        render_result(
            approval,
            board.cards.get(approval.id),
            who(actor, reader) or actor_name,
            ctx.engine.snapshot().time,
        ),
    )
    await query.answer()  # the edited card says it; a toast (a line on the console) would repeat it


async def _edit(bot: Bot, chat_id: int, message_id: int, text: str) -> None:
    try:
        await bot.edit_message_text(text, chat_id=chat_id, message_id=message_id, parse_mode="HTML")
    except TelegramAPIError as exc:  # "not modified" or a deleted message: nothing more to show
        log.info("approval message %s/%s not edited: %s", chat_id, message_id, exc)


# (send, what, still wanted?) -> the sent message, or None when it could not go while it mattered
Retry = Callable[[Callable[[], Awaitable[Message]], str, Callable[[], bool]], Awaitable[Message | None]]


class ApprovalAnnouncer:
    """Posts engine-proposed approvals to `chat_id` (None: posts nothing) and edits a request's message
    when it expires or is answered elsewhere.

    It owns its bus queue, so a slow Telegram never holds up the engine's `publish`.
    """

    def __init__(self, ctx: Services, bot: Bot, chat_id: int | None, retry: Retry | None = None) -> None:
        self.ctx, self.bot, self.chat_id = ctx, bot, chat_id
        self.retry = (
            retry  # the controller's retry through an outage (bot.courier.keep_trying); None: one try
        )
        self.board = ctx.approval_messages
        self._queue: asyncio.Queue[Event] | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._queue = self.ctx.engine.bus.subscribe()
            self._task = asyncio.create_task(self._run(), name="approval-announcer")

    async def stop(self) -> None:
        if self._queue is not None:
            self.ctx.engine.bus.unsubscribe(self._queue)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = self._queue = None

    async def _run(self) -> None:
        assert self._queue is not None
        while True:
            event = await self._queue.get()
            try:
                await self.handle(event)
            except Exception:
                log.exception("approval announcer failed on %s", event.kind)

    async def handle(self, event: Event) -> None:
        approval = event.data.get("approval")
        if not isinstance(approval, Approval):
            return
        if event.kind is EventKind.RISK_CHANGE_PROPOSED:
            await self._close_superseded()
            chat_id = self.chat_id
            if chat_id is None or approval.id in self.board.claimed or approval.id in self.board.where:
                return
            snapshot = self.ctx.engine.snapshot()
            text, keyboard = render_approval(approval, snapshot, self.ctx.engine.approval_clock())

            def post() -> Awaitable[Message]:
                return self.bot.send_message(chat_id, text, parse_mode="HTML", reply_markup=keyboard)

            sent = await (
                self.retry(post, f"approval request {approval.id}", lambda: self._pending(approval.id))
                if self.retry
                else post()
            )
            if sent is not None:
                self.board.where[approval.id] = (sent.chat.id, sent.message_id)
                self.board.cards[approval.id] = approval_card(approval, snapshot)
        elif event.kind is EventKind.APPROVAL_RESOLVED:
            await self._finalise(approval)

    async def _finalise(self, approval: Approval) -> None:
        if approval.id in self.board.final or approval.id not in self.board.where:
            return
        self.board.final.add(approval.id)
        chat_id, message_id = self.board.where[approval.id]
        await _edit(
            self.bot,
            chat_id,
            message_id,
            render_result(
                approval, self.board.cards.get(approval.id), market_now=self.ctx.engine.snapshot().time
            ),
        )

    def _pending(self, approval_id: str) -> bool:
        current = self.ctx.engine.approvals.get(approval_id)
        return current is not None and current.status is ApprovalStatus.PENDING

    async def _close_superseded(self) -> None:
        """A newer request of the same kind expires the older one without an event; show that."""
        for approval_id in list(self.board.where):
            current = self.ctx.engine.approvals.get(approval_id)
            if current is not None and current.status is not ApprovalStatus.PENDING:
                await self._finalise(current)


def make_router() -> Router:
    router = Router(name="approvals")
    router.callback_query.register(on_answer, ApprovalAnswer.filter())
    return router
