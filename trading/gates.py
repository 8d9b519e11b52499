"""Entry gates (decision 2): each a small pure function of one `EntryContext`.

Every gate is evaluated on every closed bar so /filters and the journal see the whole picture;
a gate that needs a setup when there is none is *skipped* (it neither passes nor blocks).
An entry is allowed only when no gate failed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import NamedTuple

from trading.analysis import MarketAnalysis, close_move_pct
from trading.domain import Side
from trading.expected_value import setup_cost_r, setup_ev_r
from trading.parameters import GATE_NAMES, StrategyParams
from trading.risk.modes import ModeDecision, RiskMode
from trading.risk.sizing import LotSize
from trading.timezones import to_wib


@dataclass(frozen=True, slots=True)
class GateResult:
    """One entry gate's verdict, in the order the gates ran (the engine's and the journal's: one class)."""

    name: str
    passed: bool
    reason: str = ""
    skipped: bool = False  # not judged (no setup, no model...): neither passed nor blocking

    @property
    def blocked(self) -> bool:
        return not self.passed and not self.skipped


@dataclass(frozen=True, slots=True)
class NewsStatus:
    """Whether a high-impact event blackout is active now (from trading.news)."""

    blocked: bool
    reason: str = ""


class EntryContext(NamedTuple):
    """What the gates read of one bar's decision (a named tuple: built once or twice every bar, and a
    frozen dataclass costs several times more to build)."""

    now: datetime
    analysis: MarketAnalysis
    params: StrategyParams
    mode: ModeDecision
    paused: bool
    open_positions: int
    max_positions: int
    last_entry_time: datetime | None
    lot: LotSize | None  # None when there is no setup to size
    confidence_threshold: float  # the dynamic ML threshold (0.60-0.85)
    tick_move_pct: float = 0.0  # largest move within the flash-crash tick window
    news: NewsStatus | None = None


Gate = Callable[[EntryContext], GateResult]
SPREAD_POINT = 0.01  # XAUUSD price units per spread point (what `spread_points` counts)


def _ok(name: str, reason: str) -> GateResult:
    return GateResult(name, True, reason)


def _block(name: str, reason: str) -> GateResult:
    return GateResult(name, False, reason)


def _skip(name: str, reason: str = "no setup") -> GateResult:
    return GateResult(name, False, reason, skipped=True)


# the verdicts whose reason is fixed text, built once (the records are frozen): most bars give some
_NO_SETUP = {
    name: _skip(name) for name in ("ml_confidence", "ml_agreement", "confirmation", "pullback", "h1_bias")
}
_NO_CALENDAR = _ok("news_blackout", "no calendar")
_NO_MODEL = _ok("ml_confidence", "no model: SMC-only")
_NO_MODEL_AGAINST = _ok("ml_agreement", "no model")
_NO_PULLBACK = _ok("pullback", "no adverse pullback")
_NO_RECENT_ENTRY = _ok("cooldown", "no recent entry")
_PAUSED = _block("risk_mode", "paused by the user")
_NO_SMC_SETUP = _block("smc_setup", "no SMC setup on this bar")


def flash_crash_guard(ctx: EntryContext) -> GateResult:
    p = ctx.params
    bar_move = close_move_pct(ctx.analysis.recent_closes, p.flash_crash_bars)
    if ctx.tick_move_pct >= p.flash_crash_pct:
        return _block(
            "flash_crash_guard", f"{ctx.tick_move_pct:.2f}% within {p.flash_crash_window_seconds} s"
        )
    if bar_move >= p.flash_crash_pct:
        return _block("flash_crash_guard", f"{bar_move:.2f}% over the last {p.flash_crash_bars} bars")
    return _flash_crash_passed(f"{max(bar_move, ctx.tick_move_pct):.2f}", p.flash_crash_pct)


@lru_cache(maxsize=256, typed=True)
def _flash_crash_passed(move: str, pct: float) -> GateResult:
    """The flash-crash guard's pass at a move (to 0.01%) under the threshold: it recurs across bars, so
    built once each."""
    return _ok("flash_crash_guard", f"move {move}% < {pct}%")


def session(ctx: EntryContext) -> GateResult:
    s = ctx.analysis.session
    return _session_verdict(s.name, s.multiplier, s.allowed, s.reason)


@lru_cache(maxsize=256, typed=True)
def _session_verdict(name: str, multiplier: float, allowed: bool, reason: str) -> GateResult:
    """The session gate's verdict: a few sessions recur on every bar, so built once each (records are frozen)."""
    if not allowed:
        return _block("session", reason or f"{name}: no entries")
    return _ok("session", f"{name} (×{multiplier:g})")


def news_blackout(ctx: EntryContext) -> GateResult:
    if ctx.news is None:
        return _NO_CALENDAR
    if ctx.news.blocked:
        return _block("news_blackout", ctx.news.reason)
    return _ok("news_blackout", ctx.news.reason or "no high-impact event near")


def risk_mode(ctx: EntryContext) -> GateResult:
    if ctx.paused:
        return _PAUSED
    return _mode_verdict(ctx.mode.mode, ctx.mode.reason)


@lru_cache(maxsize=256, typed=True)
def _mode_verdict(mode: RiskMode, reason: str) -> GateResult:
    """The risk-mode gate's verdict on a mode: the same mode and reason hold for many bars, so built once."""
    if not mode.allows_entries:
        return _block("risk_mode", f"{mode}: {reason}")
    return _ok("risk_mode", f"{mode}: {reason}")


def smc_setup(ctx: EntryContext) -> GateResult:
    s = ctx.analysis.setup
    if s is None:
        return _NO_SMC_SETUP
    if s.risk_reward < ctx.params.min_risk_reward - 1e-9:
        return _block("smc_setup", f"setup RR {s.risk_reward:.2f} < {ctx.params.min_risk_reward:g}")
    if s.confidence < ctx.params.min_setup_confidence:
        return _block(
            "smc_setup", f"setup confidence {s.confidence:.0%} < {ctx.params.min_setup_confidence:.0%}"
        )
    return _ok("smc_setup", f"{s.side} {s.reason} (RR {s.risk_reward:.1f}, {s.confidence:.0%})")


def ml_confidence(ctx: EntryContext) -> GateResult:
    """The ML entry gate, for the setup's side.

    Meta-model (P(win) of this setup): enter only where EV = p·R − (1 − p) − costs_R exceeds
    `ml_min_ev_r` and p reaches the floor fitted on the model's validation slice (or `ml_min_win_prob`).
    Direction model (P(up)): the probability *of the setup's side* must reach the dynamic threshold.
    """
    setup = ctx.analysis.setup
    if setup is None:
        return _NO_SETUP["ml_confidence"]
    ml = ctx.analysis.ml
    if ml is None:
        if ctx.params.require_model:
            return _block("ml_confidence", "no model loaded")
        return _NO_MODEL
    if ml.is_meta:
        return _ev_gate(ctx, ml.p_win if ml.p_win is not None else 0.0, ml.min_prob, ml.gate_note)
    p = ml.prob(setup.side)
    if p < ctx.confidence_threshold:
        return _block(
            "ml_confidence", f"ML {p:.0%} for the {setup.side} < threshold {ctx.confidence_threshold:.0%}"
        )
    return _ok("ml_confidence", f"ML {p:.0%} for the {setup.side} ≥ {ctx.confidence_threshold:.0%}")


def _ev_gate(ctx: EntryContext, p: float, fitted_floor: float, note: str) -> GateResult:
    setup, params = ctx.analysis.setup, ctx.params
    assert setup is not None
    risk = abs(setup.entry - setup.stop_loss)
    spread = ctx.analysis.spread_points * SPREAD_POINT
    cost = setup_cost_r(risk, spread, params.ml_commission_per_lot)
    ev = setup_ev_r(p, setup.risk_reward, cost)
    floor = params.ml_min_win_prob or fitted_floor
    source = "set" if params.ml_min_win_prob else "fitted"
    numbers = (
        f"P(win) {p:.0%} × {setup.risk_reward:.1f}R − {1 - p:.0%} × 1R − costs {cost:.2f}R = "
        f"EV {ev:+.2f}R; floor {floor:.2f} ({source}{': ' + note if note else ''})"
    )
    if ev <= params.ml_min_ev_r:
        return _block("ml_confidence", f"EV not above {params.ml_min_ev_r:g}R: {numbers}")
    if p < floor:
        return _block("ml_confidence", f"P(win) below the floor: {numbers}")
    return _ok("ml_confidence", numbers)


def ml_agreement(ctx: EntryContext) -> GateResult:
    """The model must not be against the setup's side: a direction model's probability of the other side
    stays under `ml_opposite_block`; a meta-model must rate the setup at least as the average setup."""
    setup, ml = ctx.analysis.setup, ctx.analysis.ml
    if setup is None:
        return _NO_SETUP["ml_agreement"]
    if ml is None:
        return _NO_MODEL_AGAINST
    if ml.is_meta:
        p, base = ml.prob(setup.side), ml.base_rate
        if ml.side is not setup.side:
            return _block("ml_agreement", f"ML scored a {ml.side} setup, not this {setup.side}")
        if base is not None and p < base:
            return _block(
                "ml_agreement",
                f"ML P(win) {p:.0%} for the {setup.side} below the setups' base rate {base:.0%}",
            )
        return _ok(
            "ml_agreement",
            f"ML P(win) {p:.0%} for the {setup.side}"
            + (f" ≥ base rate {base:.0%}" if base is not None else ""),
        )
    against = ml.prob(setup.side.opposite)
    if against >= ctx.params.ml_opposite_block:
        return _block(
            "ml_agreement", f"ML {against:.0%} for {setup.side.opposite} against the {setup.side} setup"
        )
    return _ok("ml_agreement", f"ML {ml.prob(setup.side):.0%} for {setup.side}")


def market_quality(ctx: EntryContext) -> GateResult:
    q = ctx.analysis.quality
    return _quality_verdict(q.score, q.level)


@lru_cache(maxsize=256, typed=True)
def _quality_verdict(score: float, level: str) -> GateResult:
    if level == "AVOID":
        return _block("market_quality", f"quality {score:.0f} AVOID")
    return _ok("market_quality", f"quality {score:.0f} {level}")


def confirmation(ctx: EntryContext) -> GateResult:
    setup = ctx.analysis.setup
    if setup is None:
        return _NO_SETUP["confirmation"]
    return _confirmation_verdict(ctx.analysis.prev_setup_side, setup.side)


@lru_cache(maxsize=16, typed=True)
def _confirmation_verdict(prev: Side | None, side: Side) -> GateResult:
    if prev is not side:
        return _block("confirmation", f"previous bar had {prev or 'no'} setup; need {side} twice")
    return _ok("confirmation", f"{side} on two consecutive bars")


def pullback(ctx: EntryContext) -> GateResult:
    setup = ctx.analysis.setup
    if setup is None:
        return _NO_SETUP["pullback"]
    a, p = ctx.analysis, ctx.params
    closes = a.recent_closes
    if len(closes) >= 4 and a.atr > 0:
        bounce = (closes[-1] - closes[-4]) * -setup.side.sign  # move against the signal over 3 candles
        if bounce > p.pullback_bounce_atr * a.atr:
            return _block(
                "pullback",
                f"3-candle move {bounce:.2f} against the {setup.side} > {p.pullback_bounce_atr:g} ATR",
            )
    rsi = a.indicators.get("rsi_14")
    if rsi is not None:
        if setup.side is Side.BUY and rsi > p.pullback_rsi_high:
            return _block("pullback", f"RSI {rsi:.0f} overbought for a BUY")
        if setup.side is Side.SELL and rsi < p.pullback_rsi_low:
            return _block("pullback", f"RSI {rsi:.0f} oversold for a SELL")
    return _NO_PULLBACK


def h1_bias(ctx: EntryContext) -> GateResult:
    setup = ctx.analysis.setup
    if setup is None:
        return _NO_SETUP["h1_bias"]
    bias = ctx.analysis.h1_bias
    if bias == 0:
        return _block("h1_bias", "H1 bias neutral")
    if bias != setup.side.sign:
        return _block("h1_bias", f"H1 bias {'bullish' if bias > 0 else 'bearish'} against the {setup.side}")
    return _ok("h1_bias", "H1 bias agrees")


def hours_9_21(ctx: EntryContext) -> GateResult:
    return _hour_verdict(to_wib(ctx.now).hour)


@lru_cache(maxsize=24)
def _hour_verdict(hour: int) -> GateResult:
    """The WIB-hour gate's verdict on an hour: one of 24, so each built once (records are frozen)."""
    if hour in (9, 21):
        return _block("hours_9_21", f"{hour}:00 WIB hour is filtered")
    return _ok("hours_9_21", f"{hour}:00 WIB")


def cooldown(ctx: EntryContext) -> GateResult:
    if ctx.last_entry_time is None:
        return _NO_RECENT_ENTRY
    waited = (ctx.now - ctx.last_entry_time).total_seconds()
    need = ctx.params.cooldown_seconds
    if waited < need:
        return _block("cooldown", f"{waited:.0f} s since the last entry < {need} s")
    return _ok("cooldown", f"{waited:.0f} s since the last entry")


def position_limit(ctx: EntryContext) -> GateResult:
    cap = ctx.max_positions
    mode_cap = ctx.mode.mode.max_positions_cap
    if mode_cap is not None and mode_cap < cap:
        cap = mode_cap
    return _position_verdict(ctx.open_positions, cap)


@lru_cache(maxsize=256, typed=True)
def _position_verdict(open_positions: int, cap: int) -> GateResult:
    if open_positions >= cap:
        return _block("position_limit", f"{open_positions} open, limit {cap}")
    return _ok("position_limit", f"{open_positions} open < {cap}")


def lot_size(ctx: EntryContext) -> GateResult:
    if ctx.lot is None:
        return _skip("lot_size")
    if not ctx.lot.ok:
        return _block("lot_size", ctx.lot.steps[-1] if ctx.lot.steps else "lot 0")
    return _ok("lot_size", f"{ctx.lot.lots:g} lot, {ctx.lot.risk_pct:.2f}% at risk")


def spread_limit_points(now: datetime, is_golden: bool, params: StrategyParams) -> int:
    hour = to_wib(now).hour
    if hour >= 22 or hour <= 5:
        return params.golden_night_max_spread_points if is_golden else params.night_max_spread_points
    return params.max_spread_points


def spread_limit(ctx: EntryContext) -> GateResult:
    limit = spread_limit_points(ctx.now, ctx.analysis.session.is_golden, ctx.params)
    return _spread_verdict(ctx.analysis.spread_points, limit)


@lru_cache(maxsize=1024, typed=True)
def _spread_verdict(spread: int, limit: int) -> GateResult:
    if spread > limit:
        return _block("spread_limit", f"spread {spread} points > {limit}")
    return _ok("spread_limit", f"spread {spread} ≤ {limit} points")


def regime_sleep(ctx: EntryContext) -> GateResult:
    r = ctx.analysis.regime
    return _regime_verdict(r.name, r.recommendation)


@lru_cache(maxsize=64, typed=True)
def _regime_verdict(name: str, recommendation: str) -> GateResult:
    if recommendation == "SLEEP":
        return _block("regime_sleep", f"regime {name}: SLEEP")
    return _ok("regime_sleep", f"regime {name}: {recommendation}")


GATES: dict[str, Gate] = {
    "flash_crash_guard": flash_crash_guard,
    "session": session,
    "news_blackout": news_blackout,
    "risk_mode": risk_mode,
    "smc_setup": smc_setup,
    "ml_confidence": ml_confidence,
    "ml_agreement": ml_agreement,
    "market_quality": market_quality,
    "confirmation": confirmation,
    "pullback": pullback,
    "h1_bias": h1_bias,
    "hours_9_21": hours_9_21,
    "cooldown": cooldown,
    "position_limit": position_limit,
    "lot_size": lot_size,
    "spread_limit": spread_limit,
    "regime_sleep": regime_sleep,
}
assert tuple(GATES) == GATE_NAMES
_DISABLED = {name: GateResult(name, True, "disabled") for name in GATE_NAMES}  # records: built once


def evaluate_gates(
    ctx: EntryContext, *, until_block: bool = False, names: Sequence[str] = GATE_NAMES
) -> tuple[GateResult, ...]:
    """Every gate's verdict in decision-2 order; a disabled gate passes as 'disabled'.

    `until_block` stops after the first blocking gate: the same verdict and first block, for a caller
    that keeps no record of the other gates (a backtest). `names`: only these gates (a run of
    `GATE_NAMES`, in its order), for a caller that judges the gates in parts."""
    out = []
    for gate, disabled in _plan(ctx.params.disabled_gates, tuple(names)):
        result = gate(ctx) if disabled is None else disabled
        out.append(result)
        if until_block and result.blocked:
            break
    return tuple(out)


@lru_cache(maxsize=64)
def _plan(disabled: frozenset[str], names: tuple[str, ...]) -> tuple[tuple[Gate, GateResult | None], ...]:
    """The gates of `names` in order, each with its 'disabled' pass when `disabled` (the parameters'
    `disabled_gates`, which `StrategyParams.gate_enabled` reads) holds it: looked up once per set, not
    per gate every bar."""
    return tuple((GATES[name], None if name not in disabled else _DISABLED[name]) for name in names)


def first_block(results: Sequence[GateResult]) -> GateResult | None:
    for r in results:
        if r.blocked:
            return r
    return None
