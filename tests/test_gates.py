"""Each entry gate alone, then the ordered evaluation."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from tests.engine_fixtures import NOW, FakeSession, FakeSetup, analysis
from trading.analysis import MLView, QualityView, RegimeView
from trading.domain import Side
from trading.gates import (
    GATES,
    EntryContext,
    NewsStatus,
    evaluate_gates,
    first_block,
    spread_limit_points,
)
from trading.parameters import GATE_NAMES, StrategyParams
from trading.risk.modes import ModeDecision, RiskMode
from trading.risk.sizing import LotSize

OK_LOT = LotSize(0.02, 0.4, 20.0, ("ok",))


def ctx(**overrides: object) -> EntryContext:
    base: dict[str, object] = dict(
        now=NOW,
        analysis=analysis(),
        params=StrategyParams(),
        mode=ModeDecision(RiskMode.NORMAL, "within limits"),
        paused=False,
        open_positions=0,
        max_positions=2,
        last_entry_time=None,
        lot=OK_LOT,
        confidence_threshold=0.65,
    )
    base.update(overrides)
    return EntryContext(**base)  # type: ignore[arg-type]


def gate(name: str, **overrides: object):
    return GATES[name](ctx(**overrides))


def test_a_clean_setup_passes_every_gate() -> None:
    results = evaluate_gates(ctx())
    assert [r.name for r in results] == list(GATE_NAMES)
    assert first_block(results) is None, [r for r in results if r.blocked]
    assert {r.name for r in results if r.reason == "disabled"} == {"h1_bias", "hours_9_21"}


def test_flash_crash_by_bars_and_by_ticks() -> None:
    crash = analysis(recent_closes=(3300.0, 3290.0, 3250.0, 3230.0, 3210.0))  # -2.73 %
    assert gate("flash_crash_guard", analysis=crash).blocked
    assert "bars" in gate("flash_crash_guard", analysis=crash).reason
    r = gate("flash_crash_guard", tick_move_pct=2.6)
    assert r.blocked and "60 s" in r.reason
    assert not gate("flash_crash_guard", tick_move_pct=2.4).blocked


def test_session_and_news() -> None:
    closed = analysis(
        session=FakeSession(name="Dead zone", allowed=False, reason="00:00-03:59 WIB dead zone")
    )
    assert gate("session", analysis=closed).reason == "00:00-03:59 WIB dead zone"
    assert gate("news_blackout", news=NewsStatus(True, "NFP in 10 min")).blocked
    assert not gate("news_blackout", news=NewsStatus(False)).blocked
    assert not gate("news_blackout").blocked


def test_risk_mode_blocks_stopped_cooldown_and_pause() -> None:
    assert gate("risk_mode", mode=ModeDecision(RiskMode.STOPPED, "daily loss")).blocked
    assert gate("risk_mode", mode=ModeDecision(RiskMode.COOLDOWN, "flash crash")).blocked
    assert not gate("risk_mode", mode=ModeDecision(RiskMode.RECOVERY, "3 losses")).blocked
    assert gate("risk_mode", paused=True).reason == "paused by the user"


def test_smc_setup_requires_a_confident_setup() -> None:
    assert gate("smc_setup", analysis=analysis(setup=None)).blocked
    assert gate("smc_setup", analysis=analysis(setup=FakeSetup(confidence=0.5))).blocked
    assert "RR 1.80" in gate("smc_setup", analysis=analysis(setup=FakeSetup(risk_reward=1.8))).reason
    assert not gate("smc_setup", analysis=analysis(setup=FakeSetup(risk_reward=2.0))).blocked


def test_ml_confidence_and_agreement() -> None:
    assert gate("ml_confidence", confidence_threshold=0.75).blocked  # ML 70 % < 75 %
    assert not gate("ml_confidence", confidence_threshold=0.70).blocked
    no_model = analysis(ml=None)
    assert not gate("ml_confidence", analysis=no_model).blocked
    assert gate("ml_confidence", analysis=no_model, params=StrategyParams(require_model=True)).blocked
    against = analysis(ml=MLView(0.30))  # 70 % SELL against a BUY
    assert gate("ml_agreement", analysis=against).blocked
    assert not gate("ml_agreement", analysis=analysis(ml=MLView(0.40))).blocked  # 60 % against < 65 %


def test_gates_that_need_a_setup_are_skipped_without_one() -> None:
    results = {r.name: r for r in evaluate_gates(ctx(analysis=analysis(setup=None), lot=None))}
    for name in ("ml_confidence", "ml_agreement", "confirmation", "pullback", "lot_size"):
        assert results[name].skipped and not results[name].blocked
    assert first_block(list(results.values())).name == "smc_setup"  # type: ignore[union-attr]


def test_market_quality_confirmation_pullback() -> None:
    assert gate("market_quality", analysis=analysis(quality=QualityView(30, "AVOID", 0.85))).blocked
    assert gate("confirmation", analysis=analysis(prev_setup_side=Side.SELL)).blocked
    assert gate("confirmation", analysis=analysis(prev_setup_side=None)).blocked
    # BUY after a 3-candle drop of 1.0 > 0.15 × ATR 5.0
    bounce = analysis(recent_closes=(3301.0, 3300.5, 3300.2, 3300.0))
    assert gate("pullback", analysis=bounce).blocked
    assert gate("pullback", analysis=analysis(indicators={"rsi_14": 80.0})).blocked
    sell = analysis(
        setup=FakeSetup(side=Side.SELL, stop_loss=3310, take_profit=3280),
        indicators={"rsi_14": 20.0},
        recent_closes=(3300.0, 3300.0, 3300.0, 3300.0),
    )
    assert gate("pullback", analysis=sell).blocked


def test_optional_h1_and_hours_gates() -> None:
    on = StrategyParams(disabled_gates=frozenset())
    assert gate("h1_bias", params=on, analysis=analysis(h1_bias=-1)).blocked
    assert gate("h1_bias", params=on, analysis=analysis(h1_bias=0)).blocked
    assert not gate("h1_bias", params=on, analysis=analysis(h1_bias=1)).blocked
    at_21_wib = NOW.replace(hour=14)  # 14:00 UTC = 21:00 WIB
    assert gate("hours_9_21", now=at_21_wib).blocked
    assert not gate("hours_9_21").blocked


def test_cooldown_position_limit_lot() -> None:
    assert gate("cooldown", last_entry_time=NOW - timedelta(seconds=200)).blocked
    assert not gate("cooldown", last_entry_time=NOW - timedelta(seconds=300)).blocked
    assert gate("position_limit", open_positions=2).blocked
    assert gate("position_limit", open_positions=1, mode=ModeDecision(RiskMode.PROTECTED, "80 %")).blocked
    assert not gate("position_limit", open_positions=1).blocked
    refused = LotSize(0.0, 0, 0, ("minimum lot risks 2.00% > 1.5 × limit",))
    assert gate("lot_size", lot=refused).reason == "minimum lot risks 2.00% > 1.5 × limit"


@pytest.mark.parametrize(
    ("utc_hour", "golden", "limit"),
    [(10, False, 60), (15, False, 50), (15, True, 80), (22, False, 50), (23, False, 60)],
)
def test_spread_limit_by_wib_hour(utc_hour: int, golden: bool, limit: int) -> None:
    # WIB = UTC + 7: 10 → 17 (day), 15 → 22 (night), 22 → 05 (night), 23 → 06 (day)
    assert spread_limit_points(NOW.replace(hour=utc_hour), golden, StrategyParams()) == limit


def test_spread_and_regime_gates() -> None:
    assert gate("spread_limit", analysis=analysis(spread_points=61)).blocked
    assert not gate("spread_limit", analysis=analysis(spread_points=60)).blocked
    crisis = analysis(regime=RegimeView("crisis", 3, 1.0, 0.0, "SLEEP"))
    assert gate("regime_sleep", analysis=crisis).blocked
    high = analysis(regime=RegimeView("high", 2, 1.0, 0.5, "REDUCE"))
    assert not gate("regime_sleep", analysis=high).blocked


def test_disabled_gate_passes_and_unknown_names_are_refused() -> None:
    params = StrategyParams(disabled_gates=frozenset({"spread_limit"}))
    results = {r.name: r for r in evaluate_gates(ctx(params=params, analysis=analysis(spread_points=500)))}
    assert results["spread_limit"].passed and results["spread_limit"].reason == "disabled"
    with pytest.raises(ValueError, match="unknown gate"):
        replace(params, disabled_gates=frozenset({"spred_limit"}))


def test_disabled_gates_given_as_a_list_or_set_are_judged_as_the_frozenset() -> None:
    c = ctx(analysis=analysis(spread_points=500), open_positions=5)
    expected = evaluate_gates(c._replace(params=StrategyParams(disabled_gates=frozenset({"spread_limit"}))))
    for given in (["spread_limit"], {"spread_limit"}):
        params = StrategyParams(disabled_gates=given)  # type: ignore[arg-type]  # as bench/soak.py passes them
        assert params.disabled_gates == frozenset({"spread_limit"}) and isinstance(
            params.disabled_gates, frozenset
        )
        assert evaluate_gates(c._replace(params=params)) == expected
    assert {r.name: r.reason for r in expected}["spread_limit"] == "disabled"


def test_first_block_follows_decision_order() -> None:
    c = ctx(paused=True, analysis=analysis(spread_points=500), open_positions=5)
    assert first_block(evaluate_gates(c)).name == "risk_mode"  # type: ignore[union-attr]


def test_until_block_stops_after_the_first_block() -> None:
    c = ctx(analysis=analysis(spread_points=500), open_positions=5)
    every = evaluate_gates(c)
    block = first_block(every)
    assert block is not None and block.name == "position_limit"
    assert evaluate_gates(c, until_block=True) == every[: every.index(block) + 1]
    assert evaluate_gates(ctx(), until_block=True) == evaluate_gates(ctx())
