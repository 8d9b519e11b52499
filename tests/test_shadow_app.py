"""Challengers in the running app: stepped by the trading job after the live engine on the replayed
paper market, never on a real broker, and found as they were after a stop and start."""

from __future__ import annotations

import json
from pathlib import Path

from tests.test_app import make_settings, no_telegram_env, run_ticks, started  # noqa: F401 (autouse fixture)
from trading.broker.paper import PaperBroker


async def test_challengers_follow_the_live_loop_and_survive_a_restart(tmp_path: Path) -> None:
    params = tmp_path / "params"
    params.mkdir()
    (params / "slow.json").write_text(json.dumps({"cooldown_seconds": 1800, "min_setup_confidence": 0.5}))
    settings = make_settings(tmp_path)
    app = await started(settings)
    try:
        spec = await app.shadow.add(model=None, params="slow", by="test")
        runner = app.shadow.book.runners[spec.number]
        assert isinstance(runner.broker, PaperBroker) and runner.broker.feed is None  # its own paper account
        assert runner.broker is not app.broker and runner.engine.bus is not app.bus  # never talks to the chat
        await run_ticks(app, 60)
        assert runner.broker.market_time is not None and runner.broker.market_time >= spec.started
        assert runner.recorder.decisions > 0  # it decided the bars live decided
        assert app.shadow.book.times.steps  # stepped after live, timed
        # it reads the bar with live's model and gates: live's own analysis of each bar, not a second one
        assert runner.engine.analyzer.shared_with_live == runner.recorder.decisions
        before = (
            runner.broker.to_state(),
            runner.engine.state_dict(),
            list(runner.recorder.closed),
            runner.recorder.decisions,
            runner.spec,
        )
    finally:
        await app.shutdown("test")

    again = await started(settings)
    try:
        assert sorted(again.shadow.book.runners) == [spec.number]
        back = again.shadow.book.runners[spec.number]
        account, state, closed, decisions, spec_before = before
        got = back.broker.to_state()
        assert (got["account"], got["positions"], got["deals"], got["next_ticket"]) == (
            account["account"],
            account["positions"],
            account["deals"],
            account["next_ticket"],
        )
        assert back.engine.state_dict()["risk"] == state["risk"]
        assert back.engine.params.cooldown_seconds == 1800 and back.spec == spec_before
        assert back.recorder.closed == closed and back.recorder.decisions == decisions
        assert again.ctx.shadow is again.shadow
    finally:
        await again.shutdown("test")


async def test_the_trainers_hand_off_reaches_the_shadow_from_its_thread(tmp_path: Path) -> None:
    import asyncio

    import pytest

    from trading.shadow import ChallengerError

    app = await started(make_settings(tmp_path))
    try:
        hand_off = app._model_to_shadow(asyncio.get_running_loop())
        with pytest.raises(ChallengerError, match="version v009 is not in"):
            await asyncio.to_thread(hand_off, "v009")  # the trainer calls it from its supervisor thread
        assert not app.shadow.book.runners
    finally:
        await app.shutdown("test")
