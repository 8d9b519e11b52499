"""Telegram controller extras: charts as PNG, /model, /retrain progress, long replies, old buttons, refusals."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from concurrent.futures import Future
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import polars as pl
import pytest

from bot.auth import AccessMiddleware
from charts.style import PNG_SIGNATURE
from handlers.common import split_text
from models.autotrainer import AutoTrainerConfig, RetrainOutcome
from tests.fake_telegram import FakeTelegramServer
from tests.telegram_fixtures import CHAT, OTHER, Harness, harness


class FakeTrainer:
    def __init__(self) -> None:
        self.running = False
        self.config = AutoTrainerConfig()
        self.on_progress = lambda stage, pct: None
        self.future: Future[RetrainOutcome] = Future()
        self.calls: list[tuple[str, str]] = []

    def start(self, trigger: str, by: str = "scheduler") -> Future[RetrainOutcome]:
        self.calls.append((trigger, by))
        self.running = True
        return self.future


class FakeRegistry:
    def __init__(self, version: str | None, meta: dict[str, Any] | None = None) -> None:
        self.version, self.meta = version, meta or {}

    def active_version(self) -> str | None:
        return self.version

    def metadata(self, version: str) -> dict[str, Any]:
        return self.meta


@pytest.fixture
async def h(fake_telegram: FakeTelegramServer, tmp_path: Path) -> AsyncIterator[Harness]:
    async for x in harness(fake_telegram, tmp_path):
        yield x


# ---------------------------------------------------------------- charts


@pytest.fixture(scope="module")
def frame(shared_bars: pl.DataFrame) -> Any:
    from trading.analyzer import AnalysisFrame

    return AnalysisFrame.build(shared_bars.tail(320))


async def test_chart_arrives_as_a_png(fake_telegram: FakeTelegramServer, tmp_path: Path, frame: Any) -> None:
    async for h in harness(
        fake_telegram, tmp_path, open_positions=1, analyzer=SimpleNamespace(last_frame=frame)
    ):
        call = await h.send("/chart 60")
        assert call.method.lower() == "sendphoto" and call.ok
        photo = h.last().photo
        assert photo is not None and photo.startswith(PNG_SIGNATURE) and len(photo) > 10_000
        assert "last 60 bars" in h.last().caption


async def test_chart_without_data_says_so(h: Harness) -> None:
    assert "No bars analysed yet" in (await h.send("/chart")).params["text"]


async def test_equity_chart_from_journal_snapshots(h: Harness) -> None:
    assert "Not enough equity snapshots" in (await h.send("/equity")).params["text"]
    from datetime import timedelta

    for i, eq in enumerate([10_000.0, 10_050.0, 9_980.0, 10_120.0]):
        await h.journal.record_equity(h.clock.now + timedelta(minutes=15 * i), 10_000.0, eq, 0)
    call = await h.send("/equity")
    assert call.method.lower() == "sendphoto" and h.last().photo.startswith(PNG_SIGNATURE)
    assert "Equity $10,120.00" in h.last().caption


# ---------------------------------------------------------------- models


async def test_model_without_registry(h: Harness) -> None:
    assert "No model: SMC-only" in (await h.send("/model")).params["text"]


async def test_model_shows_version_and_metrics(fake_telegram: FakeTelegramServer, tmp_path: Path) -> None:
    registry = FakeRegistry("v003", {"created_at": "2026-03-10T05:10:00+00:00", "metrics": {"auc": 0.6712}})
    async for h in harness(fake_telegram, tmp_path, registry=registry):
        text = (await h.send("/model")).params["text"]
        assert "<code>v003</code>" in text and "auc <code>0.671</code>" in text


async def test_retrain_without_trainer(h: Harness) -> None:
    assert "no trainer" in (await h.send("/retrain")).params["text"]


async def test_retrain_edits_one_message_with_progress_then_the_result(
    fake_telegram: FakeTelegramServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("handlers.model.PROGRESS_EVERY", 0.05)
    trainer = FakeTrainer()
    original = trainer.on_progress
    async for h in harness(fake_telegram, tmp_path, trainer=trainer):
        call = await h.send("/retrain")
        mid = call.result["message_id"]
        assert "Retraining: starting" in call.params["text"] and trainer.calls == [("manual", "tg:111")]
        threading.Thread(target=trainer.on_progress, args=("training", 50.0)).start()
        await fake_telegram.wait_for("editMessageText", lambda c: "training 50%" in c.params["text"])
        trainer.running = True
        assert "already running" in (await h.send("/retrain")).params["text"]
        trainer.future.set_result(
            RetrainOutcome(
                "manual", "tg:111", True, "better", "v002", "v001", {"auc": 0.71}, {"auc": 0.66}, 42.0
            )
        )
        await fake_telegram.wait_for("editMessageText", lambda c: "is live" in c.params["text"])
        final = h.message(mid)
        assert "New model <code>v002</code> is live" in final.text and "auc <code>0.710</code>" in final.text
        started = [c for c in h.server.calls_to("sendMessage") if "Retraining" in c.params["text"]]
        assert len(started) == 1  # progress and result are edits of that one message
        assert h.ctx.retrain_task is not None
        await h.ctx.retrain_task
        assert trainer.on_progress is original


# ---------------------------------------------------------------- plumbing


def test_split_text_keeps_lines_whole_and_under_the_limit() -> None:
    text = "\n".join(f"line {i:04d} " + "x" * 50 for i in range(200))
    pieces = split_text(text, 1000)
    assert all(len(p) <= 1000 for p in pieces) and "\n".join(pieces) == text
    assert split_text("short") == ["short"]
    long_line = "y" * 2500
    assert split_text(long_line, 1000) == ["y" * 1000, "y" * 1000, "y" * 500]


async def test_long_reply_is_split(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    from handlers import start

    monkeypatch.setattr(
        start, "help_text", lambda commands: "\n".join(f"row {i} " + "z" * 90 for i in range(100))
    )
    since = len(h.server.calls)
    h.server.push_message(111, CHAT, "/help")
    await fake_wait_count(h, since, 3)
    sent = [c for c in h.server.calls[since:] if c.method.lower() == "sendmessage"]
    assert all(len(c.params["text"]) <= 4096 for c in sent) and len(sent) == 3


async def fake_wait_count(h: Harness, since: int, n: int) -> None:
    for _ in range(n):
        call = await h.server.wait_for("sendMessage", since=since)
        since = h.server.calls.index(call) + 1


async def test_a_button_on_an_inaccessible_message_does_nothing(h: Harness) -> None:
    answer = await h.press("ca:1", 4242)  # "close all, confirmed" on a message the bot cannot see any more
    assert answer.params["text"] == "This button has expired"


async def test_refusal_is_repeated_only_after_the_interval() -> None:
    now = [0.0]
    sent: list[str] = []
    audits: list[tuple[str, bool, str]] = []

    class Journal:
        async def audit(self, command: str, **kw: Any) -> int:
            audits.append((command, kw["allowed"], kw["result"]))
            return 1

    from aiogram.types import Chat, Message, User

    class Msg(Message):
        async def answer(self, text: str, **kw: Any) -> Any:  # type: ignore[override]
            sent.append(text)

    msg = Msg(
        message_id=1,
        date=0,
        chat=Chat(id=OTHER, type="private"),
        from_user=User(id=OTHER, is_bot=False, first_name="X"),
        text="/status",
    )
    mw = AccessMiddleware(Journal(), [1], refusal_interval=600, clock=lambda: now[0])

    async def handler(event: Any, data: dict[str, Any]) -> None:
        raise AssertionError("must not run")

    for t in (0.0, 300.0, 599.0, 600.0, 700.0):
        now[0] = t
        await mw(handler, msg, {})
    assert len(sent) == 2
    assert [a[2] for a in audits] == [
        "refused",
        "refused: silent",
        "refused: silent",
        "refused",
        "refused: silent",
    ]
