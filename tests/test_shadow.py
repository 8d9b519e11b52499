"""Shadow challengers (trading/shadow*.py): the statistics, a replay where a challenger better by
construction wins and one worse loses, tagged records, shared analysis, and a restart that finds
every challenger's account, positions and figures as they were."""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from tests.shadow_fixtures import book_factory, spec
from trading.analyzer import MarketAnalyzer
from trading.risk.sizing import kelly_estimate
from trading.shadow import BarMemo, ChallengerError, params_from_dict
from trading.shadow_replay import replay_with_shadow
from trading.shadow_stats import (
    Outcome,
    PromotionRule,
    judge_differences,
    max_drawdown,
    paired_by_day,
    promotion_reason,
    strategy_stats,
    trading_days,
)
from trading.synthetic import generate_bars
from trading.timezones import wib_date

T0 = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)  # a Monday, 10:00 WIB


# ---------------------------------------------------------------- statistics


def test_strategy_stats_by_hand() -> None:
    trades = [
        Outcome(T0, 100.0, 50.0),
        Outcome(T0, -50.0, 50.0),
        Outcome(T0 + timedelta(days=1), -25.0, 50.0),
        Outcome(T0 + timedelta(days=1), 75.0, 50.0),
    ]
    s = strategy_stats(trades, 1_000.0)
    assert (s.trades, s.wins, s.win_rate) == (4, 2, 0.5)
    assert s.profit_factor == pytest.approx(175 / 75)
    assert s.net == 100.0
    assert s.max_drawdown == 75.0 and s.max_drawdown_pct == pytest.approx(75 / 1100 * 100)
    assert s.expectancy_r == pytest.approx(0.5)
    rs = np.array([2.0, -1.0, -0.5, 1.5])
    half = 1.96 * rs.std(ddof=1) / 2
    assert s.expectancy_r_ci == pytest.approx((0.5 - half, 0.5 + half))


def test_stats_of_nothing_and_of_only_winners() -> None:
    empty = strategy_stats([], 500.0)
    assert (empty.trades, empty.win_rate, empty.profit_factor, empty.net, empty.expectancy_r_ci) == (
        0,
        None,
        None,
        0.0,
        None,
    )
    wins = strategy_stats([Outcome(T0, 10.0, 0.0), Outcome(T0, 5.0, 0.0)], 500.0)
    assert wins.profit_factor is None and wins.expectancy_r is None  # no loss; no known risk
    assert max_drawdown(np.array([]), 100.0) == (0.0, 0.0)


def test_paired_difference_is_deterministic_and_judged() -> None:
    days = [date(2026, 3, 2) + timedelta(days=k) for k in range(20)]
    better = np.full(20, 10.0) + np.linspace(-2, 2, 20)
    d = judge_differences(better)
    assert d.strength == "strong" and d.p_better == 0.0 and d.ci is not None and d.ci[0] > 0
    assert judge_differences(better) == d  # fixed seed: the same verdict every time
    noise = np.array([5.0, -5.0] * 10)
    assert judge_differences(noise).strength == "none"
    assert judge_differences(np.array([3.0])).strength == "too few days"
    # paired by WIB day: a trade closed at 23:30 UTC counts on the next WIB day
    late = datetime(2026, 3, 2, 23, 30, tzinfo=UTC)
    p = paired_by_day([Outcome(late, 10.0)], [], [wib_date(late), days[0]])
    assert p.days == 2 and p.mean_per_day == 5.0


def test_trading_days_are_weekdays_plus_days_traded() -> None:
    saturday_trade = Outcome(datetime(2026, 3, 6, 20, 0, tzinfo=UTC), 1.0)  # Saturday 03:00 WIB
    days = trading_days(date(2026, 3, 2), date(2026, 3, 9), [saturday_trade])
    assert days == [date(2026, 3, d) for d in (2, 3, 4, 5, 6, 7, 9)]


def test_kelly_with_only_losses_sizes_nothing_instead_of_dividing_by_zero() -> None:
    # found by a challenger that lost 20 trades in a row: every bar raised ZeroDivisionError
    k = kelly_estimate([-5.0] * 25)
    assert k.fraction == 0.0 and k.payoff == 0.0


def test_params_from_dict_names_what_is_wrong() -> None:
    assert params_from_dict({"cooldown_seconds": 600.0}).cooldown_seconds == 600
    for bad, words in [
        ({"nope": 1}, "unknown parameter"),
        ({"cooldown_seconds": "x"}, "must be int"),
        ({"max_loss_frac": -1.0}, "must not be negative"),
        ({"cooldown_seconds": 1.5}, "whole number"),
        ({"disabled_gates": ["warp"]}, "unknown gate"),
    ]:
        with pytest.raises(ValueError, match=words):
            params_from_dict(bad)


# ---------------------------------------------------------------- a replay: better wins, worse loses


@pytest.fixture(scope="module")
def market() -> object:
    return generate_bars(1300, seed=3)


async def _replay(
    root: Path, bars: object, monkeypatch: pytest.MonkeyPatch, holder: dict[str, object]
) -> object:
    monkeypatch.setattr(os, "fsync", lambda fd: None)  # durability is the restart test's; here only the logic
    live = BarMemo(MarketAnalyzer(history=300))
    holder["memo"] = live

    def build(engine: object, clock: object) -> object:
        holder["engine"] = engine
        return book_factory(root, bars, live)(engine, clock)  # type: ignore[arg-type]

    async def add(book: object) -> None:
        engine = holder["engine"]
        await book.add(spec(1, "v901", engine))  # type: ignore[attr-defined]
        await book.add(spec(2, "v902", engine))  # type: ignore[attr-defined]
        await book.add(spec(3, "live", engine, "no-entries", min_risk_reward=100.0))  # type: ignore[attr-defined]

    return await replay_with_shadow(bars, live, build, warmup=200, ticks_per_bar=4, before_start=add)  # type: ignore[arg-type]


async def test_replay_the_better_challenger_wins_and_the_worse_loses(
    tmp_path: Path, market: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    holder: dict[str, object] = {}
    r = await _replay(tmp_path, market, monkeypatch, holder)
    live = r.live_outcomes()
    assert live, "the live strategy traded"
    end = wib_date(r.clock.now)
    results = {}
    for n, runner in r.book.runners.items():
        ours = runner.outcomes()
        days = trading_days(wib_date(runner.spec.started), end, [*ours, *live])
        results[n] = (strategy_stats(ours, runner.spec.start_balance), paired_by_day(ours, live, days))
        assert runner.errors == 0, runner.last_error
    oracle, oracle_vs = results[1]
    anti, anti_vs = results[2]
    idle, _ = results[3]
    assert oracle.trades >= 20 and oracle.net > 0 and oracle.win_rate is not None and oracle.win_rate > 0.8
    assert (
        oracle_vs.mean_per_day > 0 and oracle_vs.strength in ("strong", "moderate") and oracle_vs.days >= 10
    )
    assert anti.trades >= 20 and anti.net < 0 and anti.win_rate is not None and anti.win_rate < 0.2
    assert anti_vs.mean_per_day < 0 and anti_vs.p_better is not None and anti_vs.p_better > 0.95
    assert idle.trades == 0  # params no-entries: min_risk_reward 100 refuses every setup
    # the promotion rule proposes the better one only
    rule = PromotionRule(min_trades=20, min_days=10)
    assert promotion_reason(oracle, oracle_vs, rule) is not None
    assert (
        promotion_reason(anti, anti_vs, rule) is None and promotion_reason(idle, results[3][1], rule) is None
    )
    assert promotion_reason(oracle, oracle_vs, PromotionRule(min_trades=10_000)) is None
    # own accounts: each challenger's balance is its start plus its own trades only
    for runner in r.book.runners.values():
        net = sum(t.profit for t in runner.recorder.closed)
        floating = runner.broker.floating_pl()
        assert (
            runner.broker.balance
            == pytest.approx(runner.spec.start_balance + net, abs=0.02 * (1 + len(runner.recorder.closed)))
            or floating != 0
        )
    # tagged records, apart from live's
    lines = (tmp_path / "c1" / "trades.jsonl").read_text().splitlines()
    assert len(lines) == oracle.trades and all(json.loads(x)["tag"] == "c1" for x in lines)
    decisions = (tmp_path / "c3" / "decisions.jsonl").read_text().splitlines()
    assert decisions and all(json.loads(x)["action"] != "enter" for x in decisions)
    # the bar was analysed once for live and every challenger reading it with the same inputs
    memo = holder["memo"]
    assert memo.computed == len(r.times.live_bar) > 0  # type: ignore[attr-defined]


async def test_restart_finds_every_challenger_as_it_was(
    tmp_path: Path, market: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    holder: dict[str, object] = {}
    r = await _replay(tmp_path, market, monkeypatch, holder)
    before = {
        n: (x.broker.to_state(), x.engine.state_dict(), list(x.recorder.closed), x.spec)
        for n, x in r.book.runners.items()
    }
    assert any(state[0]["deals"] for state in before.values())
    # a new process: a new book on the same folder, started from what it holds
    again = book_factory(tmp_path, market, BarMemo(MarketAnalyzer(history=300)))(r.engine, r.clock)  # type: ignore[arg-type]
    assert await again.load() == []
    assert sorted(again.runners) == sorted(before)
    for n, runner in again.runners.items():
        account, state, closed, spec_before = before[n]
        assert runner.spec == spec_before
        got = runner.broker.to_state()
        assert (got["account"], got["positions"], got["deals"], got["next_ticket"]) == (
            account["account"],
            account["positions"],
            account["deals"],
            account["next_ticket"],
        )
        after = runner.engine.state_dict()
        assert after["risk"] == state["risk"] and after["limits"] == state["limits"]
        assert after["positions"] == state["positions"]
        assert runner.recorder.closed == closed
        assert strategy_stats(runner.outcomes(), 1.0) == strategy_stats(
            [o for o in r.book.runners[n].outcomes()], 1.0
        )


async def test_the_book_refuses_a_fourth_and_an_unknown_drop(
    tmp_path: Path, market: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    holder: dict[str, object] = {}
    r = await _replay(tmp_path, market.head(260), monkeypatch, holder)  # type: ignore[attr-defined]
    with pytest.raises(ChallengerError, match="3 challengers already run"):
        await r.book.add(spec(9, "v901", r.engine))
    with pytest.raises(ChallengerError, match="no challenger #7"):
        await r.book.drop(7)
    listed = json.loads((tmp_path / "challengers.json").read_text())
    assert [c["number"] for c in listed] == [1, 2, 3]
    dropped = await r.book.drop(2)
    assert dropped.number == 2 and not (tmp_path / "c2").exists()
    assert [p.name.split("-")[0] for p in (tmp_path / "dropped").iterdir()] == ["c2"]
    assert [c["number"] for c in json.loads((tmp_path / "challengers.json").read_text())] == [1, 3]
    assert r.book.next_number() == 4  # a number is never given twice


# ---------------------------------------------------------------- files a crash left behind


async def test_a_line_torn_by_a_kill_is_skipped_and_the_rest_read(tmp_path: Path) -> None:
    from trading.domain import ClosedTrade, Side
    from trading.shadow_store import ShadowRecorder

    rec = ShadowRecorder(tmp_path / "c1", "c1")
    t = ClosedTrade(
        7,
        "XAUUSD",
        Side.SELL,
        0.02,
        3300.0,
        3290.0,
        T0,
        T0 + timedelta(hours=1),
        20.0,
        "broker_tp",
        sl=3305.0,
        tp=3290.0,
    )
    assert await rec.record_close(t) is True
    assert await rec.record_close(t) is False  # idempotent
    with (tmp_path / "c1" / "trades.jsonl").open("a") as fh:
        fh.write('{"tag": "c1", "ticket": 8, "sym')  # killed mid-write
    again = ShadowRecorder(tmp_path / "c1", "c1")
    assert [x.ticket for x in again.closed] == [7]
    assert again.closed[0].profit == 20.0 and again.closed[0].extra == {"risk_money": 0.0}


async def test_an_unreadable_challenger_list_is_said_kept_and_not_overwritten(tmp_path: Path) -> None:
    from trading.shadow import ShadowBook

    (tmp_path / "challengers.json").write_text("[{not json")
    book = ShadowBook(tmp_path, lambda s: None, lambda: T0)  # type: ignore[arg-type, return-value]
    problems = await book.load()
    assert len(problems) == 1 and "unreadable" in problems[0] and not book.runners
    with pytest.raises(ChallengerError, match="unreadable"):
        await book.add(None)  # type: ignore[arg-type]
    assert (tmp_path / "challengers.json").read_text() == "[{not json"


def test_the_overlay_chart_is_a_png_with_every_curve_and_a_no_data_image() -> None:
    from charts.shadow import Curve, shadow_equity_chart
    from charts.style import PNG_SIGNATURE

    curves = [
        Curve("live", (T0, 10_000.0), [T0 + timedelta(hours=3)], [-25.0], live=True),
        Curve(
            "#1 model v002",
            (T0 + timedelta(hours=1), 9_990.0),
            [T0 + timedelta(hours=2), T0 + timedelta(days=1)],
            [40.0, -10.0],
        ),
    ]
    png = shadow_equity_chart(curves, T0 + timedelta(days=2))
    assert png.startswith(PNG_SIGNATURE) and len(png) > 10_000
    empty = shadow_equity_chart([], T0)
    assert empty.startswith(PNG_SIGNATURE) and len(empty) < len(png)


async def test_a_challenger_that_cannot_start_stays_listed_until_dropped(tmp_path: Path) -> None:
    from trading.shadow import ShadowBook

    def analyzer(spec: object) -> object:
        raise RuntimeError("version v002 was pruned")

    listed = [
        {
            "number": 4,
            "model_version": "v002",
            "params_name": "",
            "params": {},
            "limits": {},
            "start_balance": 100.0,
            "started": T0.isoformat(),
            "added_by": "t",
        }
    ]
    (tmp_path / "challengers.json").write_text(json.dumps(listed))
    book = ShadowBook(tmp_path, analyzer, lambda: T0, max_challengers=1)  # type: ignore[arg-type]
    problems = await book.load()
    assert problems == ["challenger #4 (model v002) did not start: version v002 was pruned"]
    assert book.next_number() == 5
    with pytest.raises(ChallengerError, match="1 challengers already run"):
        await book.add(None)  # type: ignore[arg-type]
    assert (await book.drop(4)).number == 4
    assert json.loads((tmp_path / "challengers.json").read_text()) == []


def test_the_h1_bias_over_a_shared_analysis_is_the_analysis_made_with_it(shared_bars) -> None:
    """A challenger whose H1-bias gate differs from live's reads live's analysis with the bias set
    (trading.shadow.H1Bias): exactly what its own analyzer would have given, bar by bar."""
    from trading.shadow import H1Bias

    on, off = MarketAnalyzer(history=300, with_h1_bias=True), MarketAnalyzer(history=300)
    h1 = H1Bias(300)
    seen = set()
    for end in range(320, 900, 29):
        window = shared_bars.head(end)
        with_bias, without = on(window), off(window)
        assert h1.apply(without, window, True) == with_bias
        assert h1.apply(with_bias, window, False) == without
        assert h1.over(off, True)(window) == with_bias
        seen.add(with_bias.h1_bias)
    assert seen == {-1, 0, 1}  # every bias met, so the test can tell them apart
    assert h1.computed == len(range(320, 900, 29))  # once a bar, however many read it
