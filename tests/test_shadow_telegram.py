"""/shadow through aiogram against the local fake Bot API: list with a chart, add a stored (rejected)
model version or a named parameter set, drop, every refusal in one line changing nothing, a
stranger's command refused; each change audited."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from bot.shadow import ShadowService
from models.dataset import SIGNAL_FEATURES
from models.regime import RegimeModel
from models.registry import ModelRegistry, ModelSlot
from models.signal import SignalModel
from tests.engine_fixtures import analysis
from tests.fake_telegram import FakeTelegramServer
from tests.telegram_fixtures import OTHER, Harness, harness


@pytest.fixture(scope="module")
def models_root(tmp_path_factory: pytest.TempPathFactory, shared_bars: pl.DataFrame) -> Path:
    """A registry with v001 (active) and v002 (rejected), small but real models."""
    root = tmp_path_factory.mktemp("models")
    reg = ModelRegistry(root)
    regime = RegimeModel.fit(shared_bars.head(600), seeds=(42,))
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1500, len(SIGNAL_FEATURES)))
    y = (x[:, 0] > 0).astype(np.int8)
    signal = SignalModel.fit(x[:1000], y[:1000], x[1000:], y[1000:], SIGNAL_FEATURES, num_boost_round=5)
    reg.activate(reg.save(regime, signal, {}))
    reg.reject(reg.save(regime, signal, {}), "worse than the active one")
    return root


def service(h: Harness, tmp_path: Path, models_root: Path, max_challengers: int = 3) -> ShadowService:
    registry = ModelRegistry(models_root)
    params = tmp_path / "params"
    params.mkdir(exist_ok=True)
    (params / "slow.json").write_text(json.dumps({"cooldown_seconds": 1800}))
    (params / "study-proposal.json").write_text(json.dumps({"proposed": {"max_loss_frac": 0.4}, "note": "x"}))
    (params / "broken.json").write_text(json.dumps({"cooldown_seconds": -5}))
    (params / "typo.json").write_text(json.dumps({"cooldown_secs": 60}))
    (params / "same.json").write_text(json.dumps({"cooldown_seconds": h.engine.params.cooldown_seconds}))
    svc = ShadowService(
        tmp_path / "shadow",
        h.engine,
        registry=registry,
        live_slot=ModelSlot(registry.load("v001")),
        analyzer_for=lambda bundle, h1: lambda bars: analysis(),
        queries=h.ctx.queries,
        journal=h.journal,
        params_dir=params,
        max_challengers=max_challengers,
    )
    h.ctx.shadow = svc
    return svc


@pytest.fixture
async def h(fake_telegram: FakeTelegramServer, tmp_path: Path, models_root: Path) -> AsyncIterator[Harness]:
    async for x in harness(fake_telegram, tmp_path, registry=ModelRegistry(models_root)):
        service(x, tmp_path, models_root, max_challengers=2)
        yield x


def listed(tmp_path: Path) -> list[Any]:
    path = tmp_path / "shadow" / "challengers.json"
    return json.loads(path.read_text()) if path.exists() else []


async def test_list_without_challengers_shows_live_and_a_chart(h: Harness) -> None:
    text = (await h.send("/shadow")).params["text"]
    assert "SHADOW</b> · 0/2 challengers" in text and "<b>Live</b>" in text and "No challenger yet" in text
    photo = await h.server.wait_for("sendPhoto", lambda c: True)
    assert photo.params.get("caption", "").startswith("Live and challengers")


async def test_add_a_rejected_version_and_a_param_set_then_list_and_drop(h: Harness, tmp_path: Path) -> None:
    text = (await h.send("/shadow add v002")).params["text"]
    assert "Challenger <b>#1</b> (model v002)" in text and "$10,000.00" in text
    text = (await h.send("/shadow add params study")).params["text"]
    assert "Challenger <b>#2</b> (params study)" in text
    assert [(c["number"], c["model_version"], c["params_name"]) for c in listed(tmp_path)] == [
        (1, "v002", ""),
        (2, "live", "study"),
    ]
    assert listed(tmp_path)[1]["params"]["max_loss_frac"] == 0.4
    # the challengers follow the live quotes
    await h.engine.on_tick()
    await h.ctx.shadow.after_tick()  # type: ignore[union-attr]
    text = (await h.send("/shadow")).params["text"]
    assert "2/2 challengers" in text and "#1</b> model v002" in text and "#2</b> params study" in text
    assert text.count("Trades 0") == 3 and "vs live: 1 day(s), too few to judge" in text
    text = (await h.send("/shadow drop 1")).params["text"]
    assert "Challenger <b>#1</b> (model v002) stopped" in text
    assert [c["number"] for c in listed(tmp_path)] == [2]
    entries = await h.audits(5)
    results = {(e.command, e.args, e.result, e.allowed) for e in entries}
    assert {
        ("/shadow", "add v002", "added #1 model v002", True),
        ("/shadow", "add params study", "added #2 params study", True),
        ("/shadow", "drop 1", "dropped #1 model v002", True),
    } <= results
    history = [json.loads(x) for x in (tmp_path / "shadow" / "changes.jsonl").read_text().splitlines()]
    assert [(x["what"], x["by"], x["challenger"]["number"]) for x in history] == [
        ("add", "tg:111", 1),
        ("add", "tg:111", 2),
        ("drop", "tg:111", 1),
    ]


@pytest.mark.parametrize(
    ("command", "words"),
    [
        ("/shadow add v009", "version v009 is not in"),
        ("/shadow add v001", "identical to live"),
        ("/shadow add params same", "identical to live"),
        ("/shadow add params broken", "fails validation: cooldown_seconds must not be negative"),
        ("/shadow add params typo", "fails validation: unknown parameter(s): cooldown_secs"),
        ("/shadow add params nothere", "no parameter set 'nothere'"),
        ("/shadow add params ../etc", "bad parameter set name"),
        ("/shadow drop 4", "no challenger #4"),
        ("/shadow add", "usage: /shadow"),
        ("/shadow add vX", "neither a model version"),
        ("/shadow remove 1", "usage: /shadow"),
    ],
)
async def test_bad_input_is_one_line_and_changes_nothing(
    h: Harness, tmp_path: Path, command: str, words: str
) -> None:
    text = (await h.send(command)).params["text"]
    assert words in text and "\n" not in text
    assert listed(tmp_path) == [] and not h.ctx.shadow.book.runners  # type: ignore[union-attr]
    entries = await h.audits(1)
    assert entries[0].result.startswith(("refused", "usage"))


async def test_more_than_allowed_and_a_duplicate_are_refused(h: Harness, tmp_path: Path) -> None:
    await h.send("/shadow add v002")
    text = (await h.send("/shadow add v002")).params["text"]
    assert "challenger #1 already runs the same model and parameters" in text
    await h.send("/shadow add params slow")
    text = (await h.send("/shadow add v002 params study")).params["text"]
    assert "2 challengers already run (the most allowed)" in text
    assert [c["number"] for c in listed(tmp_path)] == [1, 2]


async def test_a_strangers_shadow_command_is_refused_and_changes_nothing(h: Harness, tmp_path: Path) -> None:
    text = (await h.send("/shadow add v002", user=OTHER)).params["text"]
    assert "private bot" in text
    entries = await h.audits(1)
    assert (entries[0].command, entries[0].allowed, entries[0].user_id) == ("/shadow", False, OTHER)
    assert listed(tmp_path) == []


# ---------------------------------------------------------------- promotion by approval


async def earned(h: Harness, tmp_path: Path, models_root: Path, clock: Any) -> tuple[ShadowService, Any]:
    """A challenger on v002 with 30 winning trades over two weeks; live has none. Returns (service, runner)."""
    import shutil

    from bot.shadow_promotion import Promotions
    from trading.domain import ClosedTrade, Side
    from trading.events import EventBus
    from trading.shadow_stats import PromotionRule

    own = tmp_path / "models-copy"
    shutil.copytree(models_root, own)
    svc = service(h, tmp_path, own)
    bus = EventBus()
    svc.promotions = Promotions(svc, PromotionRule(min_trades=30, min_days=10), bus=bus, clock=clock)
    await svc.add(model="v002", params=None, by="tg:111")
    runner = svc.book.runners[1]
    start = h.clock.now
    for k in range(30):
        when = start + timedelta(days=k // 2, hours=2 + k % 2)
        trade = ClosedTrade(
            k + 1,
            "XAUUSD",
            Side.BUY,
            0.01,
            3300.0,
            3310.0 + k % 3,
            when - timedelta(hours=1),
            when,
            10.0 + k % 3,
            "broker_tp",
            sl=3295.0,
            tp=3310.0,
        )
        await runner.recorder.record_close(trade)
    h.clock.advance(days=16)
    return svc, bus


class WallClock:
    def __init__(self) -> None:
        from trading.timezones import utc_now

        self.now = utc_now()

    def __call__(self) -> datetime:
        return self.now


async def test_a_challenger_that_earned_it_is_proposed_and_approval_makes_it_live(
    h: Harness, tmp_path: Path, models_root: Path
) -> None:
    wall = WallClock()
    svc, bus = await earned(h, tmp_path, models_root, wall)
    events: list[Any] = []
    bus.on(events.append)
    made = await svc.promotions.check()
    assert len(made) == 1 and "30 trades over" in made[0].reason and "P(not better) 0.000" in made[0].reason
    assert "beats live" in events[0].text and "/shadow" in events[0].text
    assert await svc.promotions.check() == []  # proposed once
    since = len(h.server.calls)
    await h.send("/shadow")
    card = await h.server.wait_for(
        "sendMessage", lambda c: "PROMOTION" in str(c.params.get("text")), since=since
    )
    msg = h.message(card.result["message_id"])
    assert "make challenger #1 (model v002) the live strategy" in msg.text and "Risk it changes" in msg.text
    assert [b["text"] for b in msg.buttons] == ["Approve", "Reject"]
    approve_data, reject_data = (b["callback_data"] for b in msg.buttons)
    assert svc.registry.active_version() == "v001"
    stranger = await h.press(approve_data, card.result["message_id"], user=OTHER, chat=OTHER)
    assert stranger is not None and svc.registry.active_version() == "v001" and svc.promotions.pending()
    await h.press(approve_data, card.result["message_id"])
    assert svc.registry.active_version() == "v002" and svc.live_slot.current.version == "v002"
    assert not svc.book.runners  # it is live now, no longer a challenger
    assert "Approved: it is the live strategy now" in h.message(card.result["message_id"]).text
    history = [
        json.loads(x)["what"] for x in (tmp_path / "shadow" / "changes.jsonl").read_text().splitlines()
    ]
    assert history == ["add", "promote"]  # promoted: its records moved aside with it
    entries = await h.audits(3)
    assert any(e.result == "promotion approved" and e.allowed for e in entries)
    again = await h.press(reject_data, card.result["message_id"])  # a second tap
    assert again is not None and svc.registry.active_version() == "v002"


async def test_reject_keeps_it_in_shadow_and_expiry_means_no(
    h: Harness, tmp_path: Path, models_root: Path
) -> None:
    wall = WallClock()
    svc, _ = await earned(h, tmp_path, models_root, wall)
    [approval] = await svc.promotions.check()
    rejected = await svc.resolve_promotion(approval.id, False, "tg:111")
    assert (
        rejected.status.value == "rejected"
        and 1 in svc.book.runners
        and svc.registry.active_version() == "v001"
    )
    assert await svc.promotions.check() == []  # it stays in shadow, not proposed again
    # a restart keeps the answer
    from bot.shadow_promotion import Promotions

    reborn = Promotions(svc, svc.promotions.rule, clock=wall)
    assert 1 in reborn.answered and await reborn.check() == []


async def test_an_expired_promotion_changes_nothing(h: Harness, tmp_path: Path, models_root: Path) -> None:
    wall = WallClock()
    svc, _ = await earned(h, tmp_path, models_root, wall)
    [approval] = await svc.promotions.check()
    wall.now += timedelta(hours=25)
    assert svc.pending_promotions() == []
    from trading.risk.approvals import ApprovalError

    with pytest.raises(ApprovalError):
        await svc.resolve_promotion(approval.id, True, "tg:111")
    assert svc.registry.active_version() == "v001" and 1 in svc.book.runners
    assert await svc.promotions.check() == []


async def test_pressing_an_expired_card_says_so_and_changes_nothing(
    h: Harness, tmp_path: Path, models_root: Path
) -> None:
    wall = WallClock()
    svc, _ = await earned(h, tmp_path, models_root, wall)
    await svc.promotions.check()
    since = len(h.server.calls)
    await h.send("/shadow")
    card = await h.server.wait_for(
        "sendMessage", lambda c: "PROMOTION" in str(c.params.get("text")), since=since
    )
    approve_data = h.message(card.result["message_id"]).buttons[0]["callback_data"]
    wall.now += timedelta(hours=25)
    answer = await h.press(approve_data, card.result["message_id"])
    assert "expired" in answer.params.get("text", "")
    assert "Expired: nothing changed, it stays in shadow" in h.message(card.result["message_id"]).text
    assert svc.registry.active_version() == "v001" and 1 in svc.book.runners


# ---------------------------------------------------------------- /backtest with challengers


def with_backtests(h: Harness, shared_bars: pl.DataFrame) -> Any:
    """A backtester over the shared bars and a real (SMC-only) analyzer for the challengers' history."""
    from bot.backtests import BotBacktester
    from bot.shadow_backtests import ChallengerBacktests
    from trading.analyzer import MarketAnalyzer
    from trading.backtest import BacktestConfig

    tester = BotBacktester(
        lambda n: shared_bars.tail(n), lambda: BacktestConfig(balance=5_000.0, warmup_bars=200)
    )
    h.ctx.backtester = tester
    svc = h.ctx.shadow
    svc.analyzer_for = lambda bundle, h1: MarketAnalyzer(history=300, with_h1_bias=h1)  # type: ignore[union-attr]
    svc.backtests = ChallengerBacktests(svc, tester, history=300)  # type: ignore[union-attr, arg-type]
    return tester


async def test_backtest_with_challengers_shows_the_strategy_beside_each(
    h: Harness, tmp_path: Path, shared_bars: pl.DataFrame
) -> None:
    from charts.style import PNG_SIGNATURE

    tester = with_backtests(h, shared_bars)
    try:
        first = (await h.send("/backtest 2 challenger params slow challenger v002")).params["text"]
        assert "the strategy and 2 challengers: starting" in first
        status_id = h.last().message_id
        photo = await h.server.wait_for("sendPhoto", timeout=120)
        assert photo.ok and (h.last().photo or b"").startswith(PNG_SIGNATURE)
        assert "strategy and challengers" in (h.last().caption or "")
        card = h.message(status_id).text or ""
        assert "BACKTEST</b> · strategy vs 2 challengers · 2.0 calendar days" in card
        assert "<b>Strategy</b>" in card and "#1 params slow" in card and "#2 model v002" in card
        assert card.count("Trades ") == 3 and card.count("vs strategy: ") == 2 and "⏰" in card
        assert not tester.running and listed(tmp_path) == []  # a backtest adds no challenger
        entries = await h.audits(1)
        assert (entries[0].args, entries[0].result) == (
            "2 challenger params slow challenger v002",
            "started 2 days, 2 challengers",
        )
    finally:
        tester.close()


@pytest.mark.parametrize(
    ("command", "words"),
    [
        ("/backtest 2 challenger v009", "version v009 is not in"),
        ("/backtest 2 challenger params same", "identical to live"),
        ("/backtest 2 challenger params broken", "fails validation: cooldown_seconds must not be negative"),
        ("/backtest 2 params nothere", "no parameter set 'nothere'"),
        ("/backtest 2 challenger v002 challenger params slow challenger params study", "1 to 2 challengers"),
        ("/backtest 2 challenger", "each challenger needs a model version"),
        ("/backtest 2 challenger params", "params needs one name"),
        ("/backtest 2 challenger banana", "neither a model version"),
        ("/backtest 365 challenger v002", "Days must be from 1 to 90"),
    ],
)
async def test_a_bad_challenger_backtest_is_one_line_and_starts_nothing(
    h: Harness, shared_bars: pl.DataFrame, command: str, words: str
) -> None:
    tester = with_backtests(h, shared_bars)
    try:
        text = (await h.send(command)).params["text"]
        assert words in text and len(text.splitlines()) <= 2  # the line, and the usage for a typing slip
        assert not tester.running and h.ctx.backtest_task is None
        entries = await h.audits(1)
        assert entries[0].result.startswith(("refused", "usage"))
    finally:
        tester.close()


async def test_a_challenger_backtest_while_one_runs_is_refused(h: Harness, shared_bars: pl.DataFrame) -> None:
    tester = with_backtests(h, shared_bars)
    try:
        tester.running = True
        text = (await h.send("/backtest 2 challenger v002")).params["text"]
        assert text == "🧪 No backtest: a backtest is already running: its report comes in this chat"
    finally:
        tester.running = False
        tester.close()


async def test_a_challenger_backtest_with_shadow_off_says_so(h: Harness) -> None:
    h.ctx.shadow = None
    text = (await h.send("/backtest 3 challenger v002")).params["text"]
    assert text == "Challengers are off in this run: /backtest [days] tests the strategy alone."
    assert (await h.audits(1))[0].result == "shadow off"
