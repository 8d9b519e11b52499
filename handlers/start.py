"""/start and /help: a greeting, and every command with its one-line description (from the command table)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiogram import Router
from aiogram.types import Message

from handlers.common import esc, reply


def help_text(commands: Sequence[Any]) -> str:
    lines = ["<b>Commands</b>"]
    for spec in commands:
        usage = f" <code>{esc(spec.args)}</code>" if spec.args else ""
        lines.append(f"/{spec.name}{usage} — {esc(spec.description)}")
    return "\n".join(lines)


async def start(message: Message, commands: Sequence[Any], actor_name: str) -> None:
    await reply(message, f"Hello, {esc(actor_name)}. I trade XAUUSD M15 and report here.\n\n"
                         + help_text(commands))


async def help_(message: Message, commands: Sequence[Any]) -> None:
    await reply(message, help_text(commands))


def make_router() -> Router:
    return Router(name="start")
