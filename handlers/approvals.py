"""Approvals in chat: one message per request with Approve / Reject buttons; first answer wins.

The button carries the approval id only. `engine.resolve_approval` decides (unknown, already
answered and expired all raise `ApprovalError`, so a double tap does nothing more); the message is
then edited with the result and who decided. `ApprovalAnnouncer` reads its own queue of engine
events: it posts requests the engine proposed by itself and edits messages whose approval expired.
`ApprovalMessages` remembers which message shows which approval, shared by both.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiogram import Bot, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from handlers.clock import wall_time
from handlers.common import AuditNote, esc, money, section
from handlers.services import Services
from trading.engine import EngineSnapshot
from trading.events import Event, EventKind
from trading.risk.approvals import Approval, ApprovalError, ApprovalStatus
from trading.risk.modes import limit_use
from trading.timezones import fmt_wib

log = logging.getLogger(__name__)

RESULT_MARK = {
    ApprovalStatus.APPROVED: "✅ Approved",
    ApprovalStatus.REJECTED: "❌ Rejected",
    ApprovalStatus.EXPIRED: "⌛ Expired — nothing changed",
}


class ApprovalAnswer(CallbackData, prefix="ap"):
    id: str
    approve: bool


@dataclass(slots=True)
class ApprovalMessages:
    """approval id -> (chat id, message id); `claimed`: posted by a handler; `final`: result already shown."""

    where: dict[str, tuple[int, int]] = field(default_factory=dict)
    claimed: set[str] = field(default_factory=set)
    final: set[str] = field(default_factory=set)


def approval_board(ctx: Services) -> ApprovalMessages:
    board = ctx.extras.get("approval_messages")
    if board is None:
        board = ctx.extras["approval_messages"] = ApprovalMessages()
    return board


def _body(approval: Approval) -> list[str]:
    return [
        "🛡 <b>RISK CHANGE — APPROVAL NEEDED</b>",
        "",
        f"<b>Change:</b> {esc(approval.change.summary)}",
        f"<b>Reason:</b> {esc(approval.reason)}",
        f"<b>Requested by:</b> {esc(approval.requested_by)}",
    ]


def render_approval(approval: Approval, snapshot: EngineSnapshot) -> tuple[str, InlineKeyboardMarkup]:
    """The request message: the change, the reason, the current risk figures, the expiry, and the buttons."""
    risk, limits = snapshot.risk, snapshot.limits
    balance = snapshot.account.balance if snapshot.account else risk.day_start_balance
    use = limit_use(risk, limits, balance)
    figures = section("Now", [
        f"Mode <code>{snapshot.mode.mode}</code> ({esc(snapshot.mode.reason)})",
        f"Risk/trade {limits.risk_per_trade_pct:g}% · max positions {limits.max_positions}",
        # the same figures and the same percentage (share of the limit used) as /risk and /status
        f"Daily loss {money(use.daily_loss)} / {money(use.daily_limit)} ({use.daily_fraction:.0%} used)",
        f"Total loss {money(use.total_loss)} / {money(use.total_limit)} ({use.total_fraction:.0%} used)",
        f"Balance {money(balance)}",
    ])
    text = "\n".join([*_body(approval), "", figures, "", f"Expires {wall_time(approval.expires)}"])
    keyboard = InlineKeyboardMarkup(inline_keyboard=[[
        InlineKeyboardButton(text="Approve", callback_data=ApprovalAnswer(id=approval.id, approve=True).pack()),
        InlineKeyboardButton(text="Reject", callback_data=ApprovalAnswer(id=approval.id, approve=False).pack()),
    ]])
    return text, keyboard


def render_result(approval: Approval, by_name: str = "") -> str:
    """The same message once answered or expired (no buttons)."""
    mark = RESULT_MARK.get(approval.status, esc(approval.status.value))
    who = by_name or approval.resolved_by
    when = f" at {fmt_wib(approval.resolved_at)}" if approval.resolved_at else ""
    if approval.status is ApprovalStatus.EXPIRED:
        line = mark + (" (superseded by a newer request)" if approval.resolved_by == "superseded" else "")
    else:
        line = f"{mark} by {esc(who)}{when}"
    return "\n".join([*_body(approval)[1:], "", f"<b>{line}</b>"])


async def send_approval(message: Message, ctx: Services, approval: Approval) -> Message:
    """Post the request in the chat that asked for it (the announcer then leaves it alone)."""
    board = approval_board(ctx)
    board.claimed.add(approval.id)
    text, keyboard = render_approval(approval, ctx.engine.snapshot())
    sent = await message.answer(text, parse_mode="HTML", reply_markup=keyboard)
    board.where[approval.id] = (sent.chat.id, sent.message_id)
    return sent


async def on_answer(query: CallbackQuery, callback_data: ApprovalAnswer, ctx: Services, bot: Bot, actor: str,
                    actor_name: str, audit: AuditNote) -> None:
    board = approval_board(ctx)
    shown = callback_data.id in board.final
    board.final.add(callback_data.id)  # before the engine publishes, so the announcer leaves this edit to us
    try:
        approval = await ctx.engine.resolve_approval(callback_data.id, callback_data.approve, by=actor)
    except ApprovalError as exc:
        audit.result = f"did nothing: {exc}"
        current = ctx.engine.approvals.get(callback_data.id)
        if current is not None and not shown and query.message is not None:
            # e.g. expired before the engine's tick noticed: show it now
            await _edit(bot, query.message.chat.id, query.message.message_id, render_result(current))
        await query.answer(str(exc))
        return
    audit.result = approval.status.value
    assert query.message is not None
    await _edit(bot, query.message.chat.id, query.message.message_id,
                render_result(approval, f"{actor_name} ({actor})"))
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
        self.retry = retry  # the controller's retry through an outage (bot.courier.keep_trying); None: one try
        self.board = approval_board(ctx)
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
            if self.chat_id is None or approval.id in self.board.claimed or approval.id in self.board.where:
                return
            text, keyboard = render_approval(approval, self.ctx.engine.snapshot())
            def post() -> Awaitable[Message]:
                return self.bot.send_message(self.chat_id, text, parse_mode="HTML", reply_markup=keyboard)

            sent = await (self.retry(post, f"approval request {approval.id}", lambda: self._pending(approval.id))
                          if self.retry else post())
            if sent is not None:
                self.board.where[approval.id] = (sent.chat.id, sent.message_id)
        elif event.kind is EventKind.APPROVAL_RESOLVED:
            await self._finalise(approval)

    async def _finalise(self, approval: Approval) -> None:
        if approval.id in self.board.final or approval.id not in self.board.where:
            return
        self.board.final.add(approval.id)
        chat_id, message_id = self.board.where[approval.id]
        await _edit(self.bot, chat_id, message_id, render_result(approval))

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
