"""Meta-model pieces: the triple-barrier label, the engine's setups, the EV gate and its validation fit."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from models.ev import EVGate, fit_ev_gate
from models.labels import LOSS, TIMEOUT, WIN, triple_barrier
from models.setups import BAR_GATES, engine_setups, time_limit_bars
from tests.engine_fixtures import FakeSetup, analysis
from tests.test_gates import gate
from trading.analysis import MLView
from trading.domain import Side
from trading.expected_value import break_even_prob, costs_r, expected_value_r
from trading.parameters import StrategyParams


def bars(
    highs: list[float], lows: list[float], closes: list[float], spread: float = 0.0
) -> tuple[np.ndarray, ...]:
    n = len(closes)
    return np.array(highs, float), np.array(lows, float), np.array(closes, float), np.full(n, spread)


def one(h, lo, c, s, side: int, sl: float, tp: float, horizon: int = 5, at: int = 0):
    out = triple_barrier(
        h, lo, c, s, np.array([at]), np.array([side]), np.array([sl]), np.array([tp]), horizon
    )
    return int(out.outcome[0]), int(out.exit_index[0]), float(out.r_multiple[0])


# ----------------------------------------------------------------- triple barrier


def test_buy_take_profit_stop_and_a_bar_touching_both() -> None:
    # setup bar 0 closes at 100; its own high of 130 must not count (only bars after the setup)
    h, lo, c, s = bars([130, 101, 111, 101], [90, 99, 100, 99], [100, 100, 110, 100])
    assert one(h, lo, c, s, +1, 95, 110) == (WIN, 2, pytest.approx(2.0))
    h, lo, c, s = bars([100, 101, 101], [100, 94, 99], [100, 95, 100])
    assert one(h, lo, c, s, +1, 95, 110) == (LOSS, 1, pytest.approx(-1.0))
    h, lo, c, s = bars([100, 111], [100, 94], [100, 100])  # both on one bar: the stop
    assert one(h, lo, c, s, +1, 95, 110)[0] == LOSS


def test_sell_closes_at_the_ask_and_buy_pays_the_spread() -> None:
    h, lo, c, s = bars([100, 104.6, 100], [100, 99, 99], [100, 100, 100], spread=0.5)
    # the SELL stop at 105 is reached by the ask (104.6 + 0.5), not by the bid high
    assert one(h, lo, c, s, -1, 105, 90)[:2] == (LOSS, 1)
    # a BUY entered at the ask 100.5: risk 5.5, reward 9.5
    h, lo, c, s = bars([100, 110], [100, 99], [100, 109], spread=0.5)
    assert one(h, lo, c, s, +1, 95, 110) == (WIN, 1, pytest.approx(9.5 / 5.5))


def test_time_limit_and_unknown_outcomes() -> None:
    h, lo, c, s = bars([100, 102, 103, 102], [100, 99, 99, 98], [100, 101, 102, 97])
    assert one(h, lo, c, s, +1, 90, 120, horizon=3) == (TIMEOUT, 3, pytest.approx(-0.3))
    # the time limit lies beyond the data: no label
    assert one(h, lo, c, s, +1, 90, 120, horizon=5)[0] == -1
    assert one(h, lo, c, s, +1, 90, 120, horizon=1, at=3)[0] == -1  # no bar after the setup
    with pytest.raises(ValueError, match="at least 1 bar"):
        one(h, lo, c, s, +1, 90, 120, horizon=0)


def test_label_never_reads_the_past_or_the_bars_after_the_exit() -> None:
    rng = np.random.default_rng(1)
    c = 100 + np.cumsum(rng.normal(size=400))
    h, lo = c + rng.uniform(0, 1, 400), c - rng.uniform(0, 1, 400)
    s = np.full(400, 0.2)
    idx = np.arange(50, 350, 7)
    side = np.where(idx % 2 == 0, 1, -1)
    sl, tp = c[idx] - side * 2.0, c[idx] + side * 4.0
    base = triple_barrier(h, lo, c, s, idx, side, sl, tp, 32)
    for k in range(0, len(idx), 5):
        i, e = idx[k], base.exit_index[k]
        h2, lo2 = h.copy(), lo.copy()
        h2[:i], lo2[:i] = h[:i] + 50, lo[:i] - 50  # wild bars before the setup
        h2[e + 1 :], lo2[e + 1 :] = h[e + 1 :] + 50, lo[e + 1 :] - 50  # and after the exit
        again = triple_barrier(
            h2, lo2, c, s, idx[k : k + 1], side[k : k + 1], sl[k : k + 1], tp[k : k + 1], 32
        )
        assert (again.outcome[0], again.exit_index[0]) == (base.outcome[k], base.exit_index[k])


def test_engine_setups_use_the_engines_levels_and_bar_gates(shared_bars: pl.DataFrame) -> None:
    bars_ = shared_bars.slice(0, 1500)
    s = engine_setups(bars_)
    f = s.frame
    assert f.height > 100 and s.horizon == time_limit_bars(StrategyParams()) == 32
    assert set(f["blocked_by"].unique()) - {""} <= set(BAR_GATES)
    assert 0 < f["eligible"].sum() < f.height
    assert (f["risk_reward"] >= 2.0 - 1e-9).all()
    buys = f.filter(pl.col("side") == 1)
    assert (buys["stop"] < buys["entry"]).all() and (buys["target"] > buys["entry"]).all()
    closes = bars_["close"].to_numpy()
    np.testing.assert_allclose(f["entry"].to_numpy(), np.round(closes[f["bar_index"].to_numpy()], 2))
    # switching a gate off lets its setups through
    loose = engine_setups(
        bars_, StrategyParams(disabled_gates=frozenset({"h1_bias", "hours_9_21", "pullback"}))
    )
    assert loose.frame["eligible"].sum() > f["eligible"].sum()
    assert "pullback" not in set(loose.frame["blocked_by"])


# ----------------------------------------------------------------- EV and the fitted floor


def test_expected_value_in_r() -> None:
    assert float(expected_value_r(0.4, 2.0, 0.0)) == pytest.approx(0.2)
    assert float(expected_value_r(1 / 3, 2.0, 0.0)) == pytest.approx(0.0, abs=1e-12)
    assert break_even_prob(2.0, 0.05) == pytest.approx(1.05 / 3)
    # spread 0.30 and $7 a lot each way over a $10 stop: (0.30 + 0.14) / 10
    assert float(costs_r(10.0, 0.30, 7.0)) == pytest.approx(0.044)


def test_fit_picks_the_floor_that_pays_on_validation() -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(0.2, 0.7, 2000)
    win = (rng.uniform(size=p.size) < np.where(p > 0.5, 0.6, 0.2)).astype(int)  # only p > 0.5 pays
    r = np.where(win == 1, 2.0, -1.0)
    gate_ = fit_ev_gate(p, r, np.full(p.size, 2.0), np.zeros(p.size), win, base_rate=0.3)
    assert gate_.fitted and 0.45 <= gate_.min_prob <= 0.55
    assert gate_.valid_mean_r > 0.5 and gate_.valid_trades < p.size
    assert EVGate.from_dict(gate_.to_dict()).min_prob == gate_.min_prob
    assert "floor" in gate_.describe()


def test_fit_says_so_when_nothing_pays() -> None:
    rng = np.random.default_rng(2)
    p = rng.uniform(0.3, 0.7, 500)
    win = (rng.uniform(size=p.size) < 0.2).astype(int)  # the model's probabilities mean nothing
    gate_ = fit_ev_gate(p, np.where(win == 1, 2.0, -1.0), np.full(p.size, 2.0), np.zeros(p.size), win, 0.2)
    assert not gate_.fitted and gate_.min_prob == 1.0 and gate_.valid_trades == 0
    assert "no floor" in gate_.describe()


# ----------------------------------------------------------------- the gates


def meta(p_win: float, side: Side = Side.BUY, floor: float = 0.35, base: float | None = 0.32) -> object:
    return analysis(
        ml=MLView(p_win if side is Side.BUY else 1 - p_win, p_win, side, floor, base, "fitted on 300"),
        setup=FakeSetup(
            side=side,
            entry=3300.0,
            stop_loss=3290.0 if side is Side.BUY else 3310.0,
            take_profit=3320.0 if side is Side.BUY else 3280.0,
        ),
        prev_setup_side=side,
    )


def test_ev_gate_passes_positive_ev_and_shows_the_numbers() -> None:
    r = gate("ml_confidence", analysis=meta(0.45))
    assert not r.blocked
    assert (
        "P(win) 45%" in r.reason
        and "EV +0.3" in r.reason
        and "floor 0.35 (fitted: fitted on 300)" in r.reason
    )


def test_ev_gate_blocks_negative_ev_the_floor_and_costs() -> None:
    assert gate("ml_confidence", analysis=meta(0.30)).blocked  # 0.6 - 0.7 < 0
    r = gate("ml_confidence", analysis=meta(0.40, floor=0.42))
    assert r.blocked and "below the floor" in r.reason
    assert gate("ml_confidence", analysis=meta(0.40), params=StrategyParams(ml_min_win_prob=0.5)).blocked
    assert not gate(
        "ml_confidence", analysis=meta(0.45, floor=0.5), params=StrategyParams(ml_min_win_prob=0.4)
    ).blocked
    # p = 0.34 is just above break-even without costs; a $50 commission a lot over a $10 stop is 1 R
    assert not gate("ml_confidence", analysis=meta(0.36, floor=0.0)).blocked
    assert gate(
        "ml_confidence", analysis=meta(0.36, floor=0.0), params=StrategyParams(ml_commission_per_lot=50)
    ).blocked
    assert gate("ml_confidence", analysis=meta(0.45), params=StrategyParams(ml_min_ev_r=0.5)).blocked


def test_ev_gate_reads_the_sell_side_probability() -> None:
    assert not gate("ml_confidence", analysis=meta(0.45, Side.SELL)).blocked
    assert gate("ml_confidence", analysis=meta(0.25, Side.SELL)).blocked


def test_direction_model_gate_uses_the_setups_side() -> None:
    """A 70 % SELL reading is no reason to BUY (the old gate took max(p, 1 - p))."""
    assert gate("ml_confidence", analysis=analysis(ml=MLView(0.30)), confidence_threshold=0.65).blocked
    assert not gate("ml_confidence", analysis=analysis(ml=MLView(0.70)), confidence_threshold=0.65).blocked


def test_agreement_gate_for_the_meta_model() -> None:
    assert not gate("ml_agreement", analysis=meta(0.40)).blocked
    r = gate("ml_agreement", analysis=meta(0.30, base=0.32))
    assert r.blocked and "below the setups' base rate 32%" in r.reason
    stale = analysis(ml=MLView(0.4, 0.6, Side.SELL, 0.3, 0.3), setup=FakeSetup(side=Side.BUY))
    assert gate("ml_agreement", analysis=stale).blocked
    assert (
        MLView(0.4, 0.6, Side.SELL).prob(Side.BUY) == 0.0
        and MLView(0.4, 0.6, Side.SELL).prob(Side.SELL) == 0.6
    )


# ----------------------------------------------------------------- serving


def test_analyzer_serves_the_meta_view_with_the_fitted_gate_and_the_verdict(
    shared_bars: pl.DataFrame, tmp_path
) -> None:
    from models.dataset import SIGNAL_FEATURES
    from models.live import NO_MODEL, SlotRegime, SlotSignal
    from models.regime import RegimeModel
    from models.registry import ModelRegistry, ModelSlot
    from models.signal import SignalModel
    from trading.analyzer import AnalysisFrame, MarketAnalyzer

    regime = RegimeModel.fit(shared_bars.head(600), seeds=(42,))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, len(SIGNAL_FEATURES)))
    y = (x[:, -1] + rng.normal(size=600) > 0.5).astype(np.int8)
    signal = SignalModel.fit(x[:400], y[:400], x[400:], y[400:], SIGNAL_FEATURES, num_boost_round=3)
    signal.info["ev_gate"] = EVGate(0.4, 0.33, True, 300, 40, 0.5, 0.3, 0.05).to_dict()
    reg = ModelRegistry(tmp_path)
    reg.activate(reg.save(regime, signal, {"edge": {"demonstrated": False, "verdict": "no edge"}}))
    slot = ModelSlot(reg.load_active())
    from handlers.model import model_text

    assert "No demonstrated edge out of sample: no edge" in model_text(reg)
    bars = shared_bars.slice(1000, 800)
    frame = AnalysisFrame.build(bars, SlotRegime(slot), SlotSignal(slot))
    with_setup = [i for i in range(300, 800) if frame.setup_at(i) is not None]
    without = next(i for i in range(300, 800) if frame.setup_at(i) is None)
    a = frame.at(with_setup[-1])
    assert a.ml is not None and a.ml.is_meta and a.ml.side is a.setup.side
    assert a.ml.min_prob == 0.4 and a.ml.base_rate == 0.33 and "floor 0.40" in a.ml.gate_note
    assert a.ml.prob(a.setup.side) == a.ml.p_win
    assert frame.at(without).ml is None  # the meta-model scores setups only
    assert "NO demonstrated edge" in a.strategy_edge
    live = MarketAnalyzer(SlotRegime(slot), SlotSignal(slot), history=1500)
    la = live(bars.head(with_setup[-1] + 1))  # the live path scores the last bar alone
    assert la.ml is not None and la.ml.p_win == pytest.approx(a.ml.p_win, abs=1e-9)
    assert live.edge == a.strategy_edge
    slot.swap(None)
    assert live.edge == NO_MODEL and live(bars.head(with_setup[-1] + 1)).ml is None


def test_edge_needs_baselines_beaten_in_most_folds_and_gated_trades_that_pay() -> None:
    from models.training import edge_verdict, trading_figures

    rng = np.random.default_rng(4)
    r = rng.choice([2.0, -1.0], size=600, p=[0.33, 0.67])
    y = (r > 0).astype(int)
    good_take = y.astype(bool) | (rng.uniform(size=600) < 0.3)  # picks most winners
    paying = trading_figures(good_take, r, y)
    assert paying["ev_gate"]["mean_r"] > paying["all_setups"]["mean_r"] and paying["t_vs_all"] > 1.645
    assert edge_verdict(True, "beats", paying, 3, 4)["demonstrated"]
    assert not edge_verdict(True, "beats", paying, 2, 4)["demonstrated"]  # carried by half the folds
    assert not edge_verdict(False, "does NOT beat", paying, 4, 4)["demonstrated"]
    few = trading_figures(np.arange(600) < 10, r, y)
    v = edge_verdict(True, "beats", few, 4, 4)
    assert not v["demonstrated"] and "only 10 test setups" in v["verdict"]
    # the verdict names the check that failed, not only the figures of the ones that passed
    half = edge_verdict(True, "beats", paying, 2, 4)
    assert half["verdict"].startswith(
        "no demonstrated edge: failed: better than the base rate in 2 of 4 folds"
    )
    assert [c["name"] for c in half["checks"] if not c["passed"]] == ["folds"]
    assert "passed: baselines, gated trades, gated trades pay, better than all setups" in half["verdict"]
