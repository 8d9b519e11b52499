"""The coherence checks: parameter pairs that make a rule unreachable are named, the defaults have none,
and a backtest report lists the rules that never fired."""

from __future__ import annotations

from dataclasses import replace

from trading.coherence import (
    coherence_line,
    coherence_report,
    contradictions,
    fired_rules,
    max_loss_before_stop,
    never_fired,
    trailing_unreachable,
)
from trading.parameters import StrategyParams
from trading.risk.modes import RiskLimits

DEFAULTS = StrategyParams()


def test_the_defaults_contain_no_contradiction() -> None:
    assert contradictions(DEFAULTS, RiskLimits()) == []


def test_a_trail_that_starts_beyond_the_hard_take_profit_is_named() -> None:
    found = trailing_unreachable(replace(DEFAULTS, trail_start_atr=4.0, tp_hard_atr=40 / 12), RiskLimits())
    assert found is not None and found.rule == "trailing_stop"
    assert "4 ATR" in found.why and "3.33" in found.why
    # beyond the broker's take-profit cap (2 R, at most 4 ATR) it cannot act either, whatever the hard TP
    assert (
        trailing_unreachable(replace(DEFAULTS, trail_start_atr=4.5, tp_hard_atr=9.0), RiskLimits())
        is not None
    )


def test_a_max_loss_exit_below_the_risk_per_trade_closes_before_the_stop() -> None:
    old = replace(DEFAULTS, max_loss_frac=0.5, max_loss_pct=1.0, emergency_sl_pct=2.0)
    found = max_loss_before_stop(old, RiskLimits())
    assert found is not None and found.by == "max_loss" and "0.5 %" in found.why
    assert max_loss_before_stop(old, RiskLimits(risk_per_trade_pct=0.5)) is None
    # the broker's stop capped where the max-loss exit closes (the default) is no contradiction
    assert max_loss_before_stop(replace(old, emergency_sl_pct=0.5), RiskLimits()) is None


def test_empty_windows_are_named() -> None:
    found = contradictions(
        replace(DEFAULTS, early_exit_min_atr=2.0, early_exit_max_atr=1.0, time_soft_hours=9.0)
    )
    text = " ".join(c.rule for c in found)
    assert "early_exit" in text and "time_soft_hours" in text


def test_rules_that_never_fired_are_listed_by_kind() -> None:
    fired = fired_rules(
        {"broker_sl": 4, "max_loss": 2, "time_limit": 0},
        ["breakeven: moved 2.1 ≥ 2 ATR"],
        {"session": 10, "cooldown": 0},
    )
    assert fired == {"broker_sl", "max_loss", "breakeven", "session"}
    silent = never_fired(DEFAULTS, fired)
    assert "time_limit" in silent["exit"] and "max_loss" not in silent["exit"]
    assert "trailing_stop" in silent["position manager"] and "breakeven" not in silent["position manager"]
    assert "cooldown" in silent["gate"] and "h1_bias" not in silent["gate"]  # a disabled gate is not expected
    line = coherence_line(coherence_report(replace(DEFAULTS, trail_start_atr=9.0), RiskLimits(), fired))
    assert line.startswith("coherence: never fired: broker broker_tp; exit smart_take_profit")
    assert "unreachable by parameters: trailing_stop" in line


# ------------------------------------------------------------------------------------------ over runs


def _run(
    reasons: list[str], moves: dict[str, int], blocks: dict[str, int], fills: list, mode: str = "generated"
):
    from collections import Counter
    from types import SimpleNamespace

    return SimpleNamespace(
        trades=[SimpleNamespace(reason=r) for r in reasons],
        sl_moves=Counter(moves),
        gate_blocks=Counter(blocks),
        level_fills=fills,
        point=0.01,
        intrabar_mode=mode,
    )


def test_over_several_runs_a_rule_fired_if_it_fired_in_any_and_the_fills_are_summed() -> None:
    from trading.broker.fills import LevelFill
    from trading.domain import DealReason, Side
    from trading.run_checks import run_checks

    gap = LevelFill(DealReason.SL, Side.BUY, 2000.0, 1999.5, crossed=False)  # 50 points beyond the stop
    at = LevelFill(DealReason.SL, Side.BUY, 2000.0, 2000.0, crossed=True)
    tp = LevelFill(DealReason.TP, Side.SELL, 1990.0, 1990.0, crossed=True)
    first = _run(["broker_sl"], {"breakeven": 1}, {"session": 3}, [gap])
    second = _run(["broker_sl", "broker_tp", "max_loss"], {}, {}, [at, tp])
    checks = run_checks([first, second], DEFAULTS, RiskLimits())
    silent = checks.coherence["never_fired"]
    assert (
        "broker_tp" not in silent["broker"] and "max_loss" not in silent["exit"]
    )  # fired in the second only
    assert (
        "breakeven" not in silent["position manager"] and "session" not in silent["gate"]
    )  # in the first only
    assert "trailing_stop" in silent["position manager"] and "time_limit" in silent["exit"]
    assert checks.fills["sl"] == {
        "fills": 2,
        "gapped": 1,
        "mean_points": 25.0,
        "p90_points": 45.0,
        "worst_points": 50.0,
    }
    assert checks.fills["tp"]["fills"] == 1
    assert checks.fills_line.startswith("SL/TP fills (generated path): 2 SL (1 gapped), +25.0 points")
    assert checks.coherence_line.startswith("coherence: never fired: exit smart_take_profit")
    assert set(checks.to_json()) == {"fills", "fills_line", "coherence", "coherence_line"}


def test_the_checks_refuse_no_runs() -> None:
    import pytest

    from trading.run_checks import run_checks

    with pytest.raises(ValueError, match="at least one run"):
        run_checks([], DEFAULTS, RiskLimits())
