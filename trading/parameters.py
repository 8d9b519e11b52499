"""Every number the strategy's rules use, in one frozen record (settings map onto it).

Money thresholds of the exits are in *ATR money units*: ATR × lot × contract size, the account
money a 1-ATR move makes on the position (decision 6). The defaults reproduce the original
document's dollar figures for 0.01 lot at its typical ATR of $12 (one unit = $12 there):
e.g. `tp_hard_atr = 40/12` is the DOC's "$40 hard take profit".
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

DOC_ATR = 12.0  # the original's typical/fallback ATR in USD; converts its $ figures to ATR units


def doc_dollars(amount: float) -> float:
    """A DOC dollar figure at 0.01 lot as ATR money units."""
    return amount / DOC_ATR


GATE_NAMES = (
    "flash_crash_guard",
    "session",
    "news_blackout",
    "risk_mode",
    "smc_setup",
    "ml_confidence",
    "ml_agreement",
    "market_quality",
    "confirmation",
    "pullback",
    "h1_bias",
    "hours_9_21",
    "cooldown",
    "position_limit",
    "lot_size",
    "spread_limit",
    "regime_sleep",
)
OPTIONAL_GATES_OFF_BY_DEFAULT = frozenset({"h1_bias", "hours_9_21"})


@dataclass(frozen=True, slots=True)
class StrategyParams:
    # --- entry gates (decision 2) ---
    disabled_gates: frozenset[str] = field(default_factory=lambda: OPTIONAL_GATES_OFF_BY_DEFAULT)
    flash_crash_pct: float = 2.5  # % move within 60 s of ticks or the last 5 bars (decision 10)
    flash_crash_window_seconds: int = 60
    flash_crash_bars: int = 5
    ml_opposite_block: float = 0.65  # block when ML is this sure of the other side
    # ML EV gate (meta-model P(win)): enter when p·R − (1 − p) − costs_R > ml_min_ev_r and p >= the floor
    ml_min_ev_r: float = 0.0  # extra EV margin in R on top of EV > 0 (range 0-0.5)
    ml_min_win_prob: float = (
        0.0  # 0: the floor the model fitted on its validation slice; else this one (0-0.8)
    )
    ml_commission_per_lot: float = 0.0  # USD per lot per deal, for the EV gate's costs (0-10)
    require_model: bool = False  # False: without a model the ML gates pass as "SMC-only"
    cooldown_seconds: int = 300
    pullback_bounce_atr: float = 0.15  # 3-candle bounce against the signal larger than this blocks
    pullback_rsi_high: float = 75.0
    pullback_rsi_low: float = 25.0
    max_spread_points: int = 60  # daytime spread limit
    night_max_spread_points: int = 50  # WIB hour >= 22 or <= 5
    golden_night_max_spread_points: int = 80
    min_setup_confidence: float = 0.55
    min_risk_reward: float = 2.0  # decision 8: entries with less than 2 R are refused
    # broker SL never risks more than this % of balance (decision 7). 0.5 = max_loss_frac x max_loss_pct: the
    # stop at the broker is the loss the max-loss exit would take anyway, so no trade is cut by `max_loss` before
    # its own stop (trading.coherence). Measured on the shared 11,800 bars (SMC-only, 60-tick path, $5,000):
    # at 2.0, 1,083 trades, +$384.84, PF 1.07, 22 closed by max_loss before their stop; at 0.5, 1,083 trades,
    # +$391.45, PF 1.07, 1 max_loss close (a gap). The alternative, max_loss_frac 1.0, gave +$124.81, PF 1.02.
    emergency_sl_pct: float = 0.5
    min_sl_distance: float = 1.0  # USD; closer stops are pushed to 2.0 (spec §2.4)

    # --- exits (decision 6): thresholds in ATR money units ---
    max_loss_pct: float = 1.0  # max loss per trade, % of balance (DOC: 1% = $50 at $5k)
    tp_hard_atr: float = doc_dollars(40)
    tp_momentum_atr: float = doc_dollars(25)
    tp_momentum_below: float = -30.0
    tp_peak_atr: float = doc_dollars(30)
    tp_peak_keep: float = 0.6
    tp_probability_atr: float = doc_dollars(20)
    tp_probability_below: float = 25.0
    early_exit_min_atr: float = doc_dollars(5)
    early_exit_max_atr: float = doc_dollars(15)
    early_exit_momentum: float = -50.0
    early_exit_ml: float = 0.65
    early_cut_momentum: float = -50.0
    early_cut_loss_frac: float = 0.30  # of max loss
    reversal_ml: float = 0.75
    reversal_loss_frac: float = 0.40
    reversal_min_loss_atr: float = doc_dollars(8)
    reversal_warnings: int = 3
    reversal_warning_loss_atr: float = doc_dollars(10)
    max_loss_frac: float = 0.50  # close at 50% of the max loss, no exceptions
    stall_samples: int = 10
    stall_range_atr: float = doc_dollars(3)
    stall_loss_atr: float = doc_dollars(15)
    stall_count_to_close: int = 5
    weekend_minutes_before_close: int = 30
    weekend_small_loss_atr: float = doc_dollars(10)
    time_soft_hours: float = 4.0
    time_soft_profit_atr: float = doc_dollars(5)
    time_mid_hours: float = 6.0
    time_mid_profit_atr: float = doc_dollars(10)
    time_hard_hours: float = 8.0
    momentum_scale_atr: float = doc_dollars(10)  # a move of this size over 5 samples = momentum 50
    profit_sample_seconds: int = 60

    # --- position manager (DOC defaults, spec §3.5, but for the three below) ---
    # The DOC's $50 (4.17 ATR) protect level and 4/3 ATR trail sat beyond the hard take-profit (3.33 ATR) and the
    # broker TP (2 R, at most 4 ATR): regime danger, peak drawdown and the trailing stop could never act
    # (trading.coherence). Now protect at the DOC's $30 peak level (2.5 ATR, as tp_peak_atr) and trail from
    # 2.5 ATR, 1.5 behind. Measured on the shared file (as emergency_sl_pct above, with it at 0.5): 1,083 trades,
    # +$391.45, PF 1.07 before; 1,087 trades, +$335.93, PF 1.06, max DD 9.4 % after (within the noise of
    # ~1,000 trades); 90 trades closed by peak_drawdown, 3,742 trailing moves. CODE's $8 (0.67 ATR) protect
    # level gave 1,761 trades, +$1,711, PF 1.28 on this one file: not adopted without a walk-forward.
    pm_protect_atr: float = doc_dollars(30)
    pm_opposite_ml: float = 0.75
    pm_peak_drawdown: float = 0.30
    pm_urgency_close: int = 7
    breakeven_atr: float = 2.0  # price move in ATR that arms breakeven
    breakeven_buffer_atr: float = 0.5
    trail_start_atr: float = 2.5
    trail_step_atr: float = 1.5
    impulse_range_atr: float = 1.5
    impulse_step_atr: float = 1.5

    # --- market-close handler (spec §3.6, DOC values, near-weekend bug fixed) ---
    close_near_hours: float = 2.0
    close_min_profit_atr: float = doc_dollars(10)
    close_max_hold_loss_atr: float = doc_dollars(100)
    close_weekend_sl_pct: float = 50.0
    close_last_minutes: int = 30

    def __post_init__(self) -> None:
        if not isinstance(self.disabled_gates, frozenset):  # a caller's list or set: held as declared
            object.__setattr__(self, "disabled_gates", frozenset(self.disabled_gates))
        unknown = set(self.disabled_gates) - set(GATE_NAMES)
        if unknown:
            raise ValueError(
                f"unknown gate name(s): {', '.join(sorted(unknown))}; known: {', '.join(GATE_NAMES)}"
            )
        for f in fields(self):
            value = getattr(self, f.name)
            if (
                isinstance(value, int | float)
                and not isinstance(value, bool)
                and value < 0
                and f.name
                not in {
                    "tp_momentum_below",
                    "early_exit_momentum",
                    "early_cut_momentum",
                }
            ):
                raise ValueError(f"{f.name} must not be negative, got {value}")

    def gate_enabled(self, name: str) -> bool:
        return name not in self.disabled_gates


@dataclass(frozen=True, slots=True)
class ParamRange:
    """The search range of one StrategyParams number: a grid from `low` to `high` by `step`."""

    low: float
    high: float
    step: float

    def grid(self) -> list[float]:
        n = round((self.high - self.low) / self.step)
        return [round(self.low + k * self.step, 10) for k in range(n + 1)]


# Ranges the optimiser (`main.py optimize`) searches: gates' and exits' numbers, each field's own line.
# An int field gets int steps. Every default lies inside its range. min_risk_reward is not searched:
# every SMC setup's target is exactly its 2 R, so the gate either passes all setups or none.
SEARCH_SPACE: dict[str, ParamRange] = {
    "min_setup_confidence": ParamRange(0.50, 0.70, 0.05),
    "pullback_bounce_atr": ParamRange(0.05, 0.35, 0.05),
    "cooldown_seconds": ParamRange(0, 1800, 300),
    "ml_opposite_block": ParamRange(0.55, 0.80, 0.05),
    "max_loss_frac": ParamRange(0.3, 0.8, 0.1),
    "breakeven_atr": ParamRange(1.0, 3.0, 0.5),
    "trail_start_atr": ParamRange(2.0, 6.0, 0.5),
    "trail_step_atr": ParamRange(1.0, 4.0, 0.5),
    "time_hard_hours": ParamRange(4.0, 12.0, 2.0),
}
