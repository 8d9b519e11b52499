"""/start and /help (every command from the command table, with its aliases), the reply keyboard of
everyday commands, and the answers to what is not a command."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

from aiogram import Router
from aiogram.types import KeyboardButton, Message, ReplyKeyboardMarkup

from handlers.common import AuditNote, esc, reply, with_clock
from handlers.names import who
from handlers.services import Services

KEYBOARD_ROWS = (("/status", "/positions", "/daily"), ("/profit", "/market", "/help"))


def everyday_keyboard() -> ReplyKeyboardMarkup:
    """The phone keyboard: one tap for the commands a trader uses all day."""
    return ReplyKeyboardMarkup(
        keyboard=[[KeyboardButton(text=t) for t in row] for row in KEYBOARD_ROWS],
        resize_keyboard=True,
        is_persistent=True,
    )


def help_text(commands: Sequence[Any]) -> str:
    lines = ["<b>Commands</b>"]
    for spec in commands:
        usage = f" <code>{esc(spec.args)}</code>" if spec.args else ""
        aliases = f" (also {', '.join('/' + a for a in spec.aliases)})" if spec.aliases else ""
        lines.append(f"/{spec.name}{usage} — {esc(spec.description)}{aliases}")
    return "\n".join(lines)


async def start(message: Message, commands: Sequence[Any], actor: str, ctx: Services) -> None:
    name = who(actor)
    hello = "Hello." if name in ("you", "a chat user") else f"Hello, {esc(name)}."
    await reply(
        message,
        with_clock(
            f"{hello} I trade XAUUSD M15 and report here.\n\n" + help_text(commands),
            ctx.engine.snapshot().time,
        ),
        reply_markup=everyday_keyboard(),
    )


async def help_(message: Message, commands: Sequence[Any], ctx: Services) -> None:
    await reply(
        message, with_clock(help_text(commands), ctx.engine.snapshot().time), reply_markup=everyday_keyboard()
    )


def all_names(commands: Sequence[Any]) -> list[str]:
    return [n for spec in commands for n in (spec.name, *spec.aliases)]


def suggestion(word: str, commands: Sequence[Any]) -> str | None:
    """`/a or /b`: the (at most two) command names closest to a mistyped `word`, None if none is close."""
    names = all_names(commands)
    close = difflib.get_close_matches(word.lower(), names, n=2, cutoff=0.6)
    if not close:
        close = [n for n in names if len(word) >= 2 and n.startswith(word.lower())][:2]
    return " or /".join(close) or None


async def unknown_command(message: Message, audit: AuditNote, commands: Sequence[Any]) -> None:
    word = (message.text or "").split(maxsplit=1)[0].split("@", 1)[0]
    guess = suggestion(word.lstrip("/"), commands)
    audit.result = "unknown command"
    hint = f" Did you mean /{guess}?" if guess else ""
    await reply(message, f"❓ {esc(word)} is not a command.{hint} Every command: /help")


async def plain_text(message: Message, audit: AuditNote, commands: Sequence[Any]) -> None:
    """Text that is not a command: say how to talk to the bot, suggest a command the words resemble."""
    first = (message.text or "").split(maxsplit=1)[0].lower() if (message.text or "").strip() else ""
    guess = first if first in all_names(commands) else None  # "status please": yes; "hello": no guessing
    audit.result = "not a command"
    hint = f" — did you mean /{guess}?" if guess else " — e.g. /status, /positions or /daily"
    await reply(
        message,
        f"I answer commands that start with /{hint}\nEvery command: /help",
        reply_markup=everyday_keyboard(),
    )


def make_router() -> Router:
    return Router(name="start")
