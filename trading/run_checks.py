"""The two check lines every backtest report carries (issue 19), built once for the single backtest, the
walk-forward and the chat's /backtest: where the SL/TP fills landed against their levels
(trading.broker.fills), and the rules that never fired or cannot act with these parameters
(trading.coherence). Over several runs (walk-forward folds) a rule counts as fired if it fired in any run,
and the fills are summed over every run's own fills.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from trading.broker.fills import describe_slippage, slippage_summary
from trading.coherence import coherence_line, coherence_report, fired_rules
from trading.parameters import StrategyParams
from trading.risk.modes import RiskLimits


@dataclass(frozen=True, slots=True)
class RunChecks:
    fills: dict[str, Any]  # fills.slippage_summary over every run
    fills_line: str
    coherence: dict[str, Any]  # coherence.coherence_report
    coherence_line: str

    def to_json(self) -> dict[str, Any]:
        return {
            "fills": self.fills,
            "fills_line": self.fills_line,
            "coherence": self.coherence,
            "coherence_line": self.coherence_line,
        }


def run_checks(runs: Sequence[Any], params: StrategyParams, limits: RiskLimits | None) -> RunChecks:
    """The fills and coherence lines of one or more trading.backtest.BacktestResult runs."""
    if not runs:
        raise ValueError("run_checks needs at least one run")
    exits: Counter[str] = Counter()
    moves: Counter[str] = Counter()
    blocks: Counter[str] = Counter()
    fills: list[Any] = []
    for run in runs:
        exits.update(t.reason for t in run.trades)
        moves.update(run.sl_moves)
        blocks.update(run.gate_blocks)
        fills += run.level_fills
    summary = slippage_summary(fills, runs[0].point)
    report = coherence_report(params, limits, fired_rules(exits, moves, blocks))
    return RunChecks(
        summary, describe_slippage(summary, runs[0].intrabar_mode), report, coherence_line(report)
    )
