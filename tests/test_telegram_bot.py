"""The Telegram controller end to end: the real dispatcher polling the fake Bot API, a real engine and journal."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.telegram import COMMANDS
from tests.fake_telegram import FakeTelegramServer
from tests.telegram_fixtures import CHAT, OTHER, USER, Harness, harness


@pytest.fixture
async def h(fake_telegram: FakeTelegramServer, tmp_path: Path) -> AsyncIterator[Harness]:
    async for x in harness(fake_telegram, tmp_path):
        yield x


@pytest.fixture
async def hp(fake_telegram: FakeTelegramServer, tmp_path: Path) -> AsyncIterator[Harness]:
    """With two open positions."""
    async for x in harness(fake_telegram, tmp_path, open_positions=2):
        yield x


# ---------------------------------------------------------------- access


async def test_unauthorised_user_is_refused_once_audited_and_sees_no_data(h: Harness) -> None:
    first = await h.send("/status", user=OTHER)
    assert "private bot" in first.params["text"]
    h.server.push_message(OTHER, OTHER, "/positions")
    h.server.push_message(OTHER, OTHER, "/risk percent 5")
    entries = await h.audits(3)
    sent = h.server.sent_messages(OTHER)
    assert len(sent) == 1  # rate-limited: one refusal
    assert not any("$" in (m.text or "") or "10,000" in (m.text or "") for m in sent)
    assert [(e.command, e.allowed, e.user_id) for e in reversed(entries)] == [
        ("/status", False, OTHER), ("/positions", False, OTHER), ("/risk", False, OTHER)]
    assert entries[0].args == "percent 5" and entries[0].result.startswith("refused")
    assert h.engine.limits.risk_per_trade_pct == 1.0


async def test_allowed_command_is_audited_with_result(h: Harness) -> None:
    await h.send("/pause")
    entries = await h.audits(1)
    assert (entries[0].command, entries[0].allowed, entries[0].user_id, entries[0].chat_id) == (
        "/pause", True, USER, CHAT)
    assert "paused" in entries[0].result


# ---------------------------------------------------------------- commands


async def test_help_lists_the_same_commands_as_the_menu(h: Harness) -> None:
    call = await h.send("/help")
    menu = [c["command"] for c in h.server.calls_to("setMyCommands")[0].params["commands"]]
    assert menu == [c.name for c in COMMANDS]
    listed = [line.split()[0].lstrip("/") for line in call.params["text"].splitlines()[1:]]
    assert listed == menu


async def test_status_shows_account_risk_and_uptime(h: Harness) -> None:
    text = (await h.send("/status")).params["text"]
    assert "Balance <code>$10,000.00</code>" in text
    assert "Mode <code>NORMAL</code>" in text
    assert "Uptime 2h 00m" in text
    assert "Session London" in text or "Session —" in text
    assert "p50" in text and "WIB" in text
