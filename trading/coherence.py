"""Whether the strategy's rules can all act: parameter pairs that make a rule unreachable, and the rules
that never fired on a run.

Each check is a small pure function of the strategy's parameters (and the risk limits) that returns a
`Contradiction` naming the rule that cannot act and the rule that always acts first, or None. The exits'
money thresholds are in ATR money units (profit of a 1-ATR move), the position manager's in ATR of price
move: for one position both are the same scale, so "3.3 ATR of profit" comes before "4 ATR of move".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from trading.exits import EXIT_RULES
from trading.parameters import GATE_NAMES, StrategyParams
from trading.position_manager import PM_RULES
from trading.risk.modes import RiskLimits

# the SMC setup's broker take-profit: 2 R, never farther than this many ATR from the entry (trading.smc)
BROKER_TP_ATR_CAP = 4.0


@dataclass(frozen=True, slots=True)
class Contradiction:
    rule: str  # the rule that cannot act
    by: str  # what always acts first
    why: str  # the numbers

    def __str__(self) -> str:
        return f"{self.rule} cannot act: {self.why}"


Check = Callable[[StrategyParams, RiskLimits], "Contradiction | None"]


def _closes_first(p: StrategyParams) -> tuple[str, float]:
    """The nearest profit (in ATR) at which a winning trade is certainly closed: the hard take-profit or
    the broker's take-profit cap, whichever comes first."""
    if p.tp_hard_atr <= BROKER_TP_ATR_CAP:
        return f"the hard take-profit (tp_hard_atr {p.tp_hard_atr:.2f})", p.tp_hard_atr
    return f"the broker take-profit (at most {BROKER_TP_ATR_CAP:g} ATR)", BROKER_TP_ATR_CAP


def trailing_unreachable(p: StrategyParams, _limits: RiskLimits) -> Contradiction | None:
    """The trailing stop starts at `trail_start_atr` of move; a trade is closed before that."""
    by, at = _closes_first(p)
    if p.trail_start_atr >= at:
        return Contradiction(
            "trailing_stop",
            by,
            f"it starts at {p.trail_start_atr:g} ATR of move (trail_start_atr), "
            f"{by} closes at {at:.2f} ATR first",
        )
    return None


def breakeven_unreachable(p: StrategyParams, _limits: RiskLimits) -> Contradiction | None:
    by, at = _closes_first(p)
    if p.breakeven_atr >= at:
        return Contradiction(
            "breakeven",
            by,
            f"it arms at {p.breakeven_atr:g} ATR of move (breakeven_atr), {by} closes at {at:.2f} ATR first",
        )
    return None


def protect_unreachable(p: StrategyParams, _limits: RiskLimits) -> Contradiction | None:
    """Regime danger and peak drawdown act above `pm_protect_atr` of profit only."""
    by, at = _closes_first(p)
    if p.pm_protect_atr >= at:
        return Contradiction(
            "regime_danger, peak_drawdown",
            by,
            f"they act above {p.pm_protect_atr:.2f} ATR of profit (pm_protect_atr), "
            f"{by} closes at {at:.2f} ATR first",
        )
    return None


def max_loss_before_stop(p: StrategyParams, limits: RiskLimits) -> Contradiction | None:
    """A trade sized to the full risk per trade loses `risk_per_trade_pct` at its stop (the emergency cap at
    most); a max-loss exit below that closes every such trade before its own stop."""
    stop_pct = min(limits.risk_per_trade_pct, p.emergency_sl_pct)
    exit_pct = p.max_loss_frac * p.max_loss_pct
    if exit_pct < stop_pct - 1e-9:
        return Contradiction(
            "broker_sl of a full-risk trade",
            "max_loss",
            f"the max-loss exit closes at {exit_pct:g} % of balance (max_loss_frac {p.max_loss_frac:g} "
            f"x max_loss_pct {p.max_loss_pct:g}), before a stop sized to risk {stop_pct:g} %",
        )
    return None


def take_profits_above_hard(p: StrategyParams, _limits: RiskLimits) -> Contradiction | None:
    """The momentum and probability take-profits need a profit the hard take-profit already closes."""
    late = [
        name
        for name, at in (("tp_momentum_atr", p.tp_momentum_atr), ("tp_probability_atr", p.tp_probability_atr))
        if at >= p.tp_hard_atr
    ]
    if late:
        return Contradiction(
            "smart_take_profit (" + ", ".join(late) + ")",
            "smart_take_profit (hard)",
            f"{', '.join(late)} at or above tp_hard_atr {p.tp_hard_atr:.2f}",
        )
    return None


def empty_windows(p: StrategyParams, _limits: RiskLimits) -> Contradiction | None:
    """Rules whose own window is empty: early exit between its min and max profit, the softer time limits
    after the hard one, a loss fraction the max-loss exit already closed."""
    empty = []
    if p.early_exit_min_atr >= p.early_exit_max_atr:
        empty.append("early_exit (early_exit_min_atr >= early_exit_max_atr)")
    for name, hours in (("time_soft_hours", p.time_soft_hours), ("time_mid_hours", p.time_mid_hours)):
        if hours >= p.time_hard_hours:
            empty.append(f"time_limit's {name} (>= time_hard_hours)")
    for name, frac in (
        ("early_cut_loss_frac", p.early_cut_loss_frac),
        ("reversal_loss_frac", p.reversal_loss_frac),
    ):
        if frac >= p.max_loss_frac:
            empty.append(f"{name.split('_loss')[0]} ({name} >= max_loss_frac)")
    if empty:
        return Contradiction("; ".join(empty), "", "its window is empty")
    return None


CHECKS: tuple[Check, ...] = (
    trailing_unreachable,
    breakeven_unreachable,
    protect_unreachable,
    max_loss_before_stop,
    take_profits_above_hard,
    empty_windows,
)


def contradictions(params: StrategyParams, limits: RiskLimits | None = None) -> list[Contradiction]:
    """Every parameter pair of `params` that makes a rule unreachable."""
    limits = limits or RiskLimits()
    return [c for check in CHECKS if (c := check(params, limits)) is not None]


def rule_names(params: StrategyParams) -> dict[str, tuple[str, ...]]:
    """The rules a run could see fire, by kind: exits, position-manager rules, enabled gates."""
    return {
        "broker": ("broker_sl", "broker_tp"),
        "exit": tuple(r.__name__ for r in EXIT_RULES),
        "position manager": tuple(r.__name__ for r in PM_RULES),
        "gate": tuple(g for g in GATE_NAMES if params.gate_enabled(g)),
    }


def never_fired(params: StrategyParams, fired: Iterable[str]) -> dict[str, list[str]]:
    """The rules (by kind) whose name is not in `fired` (exit reasons, stop moves, gate blocks of a run)."""
    seen = set(fired)
    return {kind: [n for n in names if n not in seen] for kind, names in rule_names(params).items()}


def fired_rules(
    exit_reasons: Mapping[str, int], sl_changes: Iterable[str], gate_blocks: Mapping[str, int]
) -> set[str]:
    """The rule names that acted on a run: closes by reason, stop moves by the rule that moved them
    ("breakeven: ..."), and gates that blocked."""
    return (
        {r for r, n in exit_reasons.items() if n}
        | {s.split(":", 1)[0] for s in sl_changes}
        | {g for g, n in gate_blocks.items() if n}
    )


def coherence_report(
    params: StrategyParams, limits: RiskLimits | None, fired: Iterable[str]
) -> dict[str, object]:
    """The JSON part of a report: the rules that never fired and the contradictions."""
    return {
        "never_fired": never_fired(params, fired),
        "contradictions": [
            {"rule": c.rule, "by": c.by, "why": c.why} for c in contradictions(params, limits)
        ],
    }


def coherence_line(report: Mapping[str, object]) -> str:
    """One report line (wrapped by the console) from `coherence_report`."""
    silent = report["never_fired"]
    assert isinstance(silent, dict)
    parts = [f"{kind} {', '.join(names)}" for kind, names in silent.items() if names]
    line = "coherence: never fired: " + ("; ".join(parts) if parts else "none")
    found = report["contradictions"]
    assert isinstance(found, list)
    if found:
        line += "; unreachable by parameters: " + "; ".join(f"{c['rule']} ({c['why']})" for c in found)
    else:
        line += "; no parameter pair makes a rule unreachable"
    return line
