"""On start-up the bot analyses and judges the last closed bar at once (bot/app.py `_judge_last_bar`,
`TradingEngine.judge_at_start`): /chart, /status and /filters answer from the first second, and that
bar is never entered nor journaled as a decision: the next close is the first one decided. Both the
replayed market (the market loop) and the live path (the 1-second job reading the broker's bars)."""

from __future__ import annotations

from typing import Any

from bot.brokers import BrokerSetup
from tests.test_app import make_settings, no_telegram_env, started  # noqa: F401 (autouse fixture)
from trading.bars import closed_bars
from trading.broker.feeds import ReplayFeed
from trading.broker.paper import PaperBroker
from trading.synthetic import generate_bars


async def test_the_replayed_market_answers_chart_status_and_filters_before_any_bar_closes(
    tmp_path, capsys
) -> None:
    app = await started(make_settings(tmp_path))
    try:
        snap = app.engine.snapshot()
        last_closed = app.market_loop.window(app.market_loop.bar - 1)["time"][-1]
        assert snap.analysis is not None and snap.analysis.bar_time == last_closed
        assert app.analyzer.last_frame is not None
        decision = snap.last_decision
        assert decision is not None and decision.bar_time == last_closed
        assert decision.action == "skip" and decision.reason.startswith("start-up, judged only")
        assert decision.id is None and decision.gates  # every gate judged, not journaled
        assert await app.journal.decisions(limit=10) == []

        capsys.readouterr()
        await app.console.handle_line("/chart")
        out = capsys.readouterr().out
        assert "No bars analysed yet" not in out and "photo #" in out
        await app.console.handle_line("/filters")
        out = capsys.readouterr().out
        assert "No decision yet" not in out and "start-up, judged only" in out
        await app.console.handle_line("/status")
        assert "analysis p50" in capsys.readouterr().out  # the start-up analysis is timed

        # the first bar decided is the next close, never the start-up bar; nothing entered for it
        while not await app.journal.decisions(limit=1):
            await app.trading_job.run()
        first = (await app.journal.decisions(limit=1))[0]
        assert first.bar_time > last_closed
        assert all(t.open_time > last_closed for t in await app.journal.trades())
    finally:
        await app.shutdown("test")


async def test_the_live_path_judges_the_last_closed_bar_and_decides_only_the_next_one(
    tmp_path, monkeypatch
) -> None:
    """No market loop (a live broker): the start-up bar counts as seen, so the first job, one second
    later, does not decide it again (an order for it would fill at a later price)."""
    feed = ReplayFeed(generate_bars(400, seed=4), speed=0, ticks_per_bar=12, history=300)
    feed.advance(3)  # three ticks into the forming bar
    broker = PaperBroker(feed=feed)
    monkeypatch.setattr("bot.app.build_broker", lambda s: BrokerSetup(broker, feed.now, "test live broker"))
    app = await started(make_settings(tmp_path, analysis_history_bars=300))
    try:
        assert app.market_loop is None
        last_closed = closed_bars(feed.bars_now(5), feed.now())["time"][-1]
        snap = app.engine.snapshot()
        assert snap.analysis is not None and snap.analysis.bar_time == last_closed
        assert snap.last_decision is not None and snap.last_decision.reason.startswith("start-up")
        assert app.trading_job.last_bar_time == last_closed

        await app.trading_job.run()  # the same bar: judged at start, not decided again
        assert await app.journal.decisions(limit=10) == []
        assert app.engine.positions == {}

        feed.advance_bars(1)
        feed.advance(1)  # the next bar has closed: one tick of the one after
        await app.trading_job.run()
        assert app.guard is not None and await app.guard.drain()  # a skip's row is written aside
        decisions = await app.journal.decisions(limit=10)
        assert [d.bar_time for d in decisions] == [app.trading_job.last_bar_time]
        assert decisions[0].bar_time > last_closed
    finally:
        await app.shutdown("test")


async def test_a_failing_start_up_analysis_is_a_note_and_the_bot_starts(tmp_path, monkeypatch) -> None:
    def broken(self: Any, bars: Any) -> Any:
        raise ValueError("bad bars")

    monkeypatch.setattr("trading.analyzer.MarketAnalyzer.__call__", broken)
    app = await started(make_settings(tmp_path))
    try:
        assert app.engine.snapshot().analysis is None
        assert any("start-up analysis failed (bad bars)" in n for n in app.notes)
    finally:
        await app.shutdown("test")


async def test_a_window_rebuild_runs_in_a_worker_thread_a_stepped_bar_and_the_decision_on_the_loop(
    tmp_path, monkeypatch
) -> None:
    """Rebuilding the analyzer's state from a window (the start-up bar) takes a window's work: off the
    event loop, so the loop (Telegram, the other jobs) is not held by it. A bar that extends the history
    by one is a step of ~2 ms (trading.live_analysis), cheaper on the loop than a thread's hand-over;
    the gates, the order and the journal stay on the loop."""
    import threading

    from trading.analyzer import MarketAnalyzer

    threads: list[tuple[int, bool]] = []  # (thread, whether the call was a step)
    analyse = MarketAnalyzer.__call__

    def spy(self: MarketAnalyzer, bars: Any) -> Any:
        steps = self.incremental.steps
        try:
            return analyse(self, bars)
        finally:
            threads.append((threading.get_ident(), self.incremental.steps > steps))

    monkeypatch.setattr(MarketAnalyzer, "__call__", spy)
    app = await started(make_settings(tmp_path))
    try:
        recorded: list[int] = []
        record = app.recorder.record_decision

        async def on_loop(decision: Any) -> Any:
            recorded.append(threading.get_ident())
            return await record(decision)

        app.engine.recorder.record_decision = on_loop  # type: ignore[method-assign]
        while not recorded:
            await app.trading_job.run()
        assert len(threads) >= 2  # the start-up bar and the one decided
        loop = threading.get_ident()
        assert threads[0][0] != loop and not threads[0][1]  # the start-up rebuild, in a worker thread
        assert threads[1:] and all(t == (loop, True) for t in threads[1:])  # stepped, on the loop
        assert recorded == [loop]
    finally:
        await app.shutdown("test")
