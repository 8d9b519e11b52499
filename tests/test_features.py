"""Features: TA-Lib parity, hand-checked values per family, strict no-look-ahead, short and bad frames."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from trading.bars import BAR_SCHEMA, empty_bars
from trading.features import FEATURE_COLUMNS, FEATURE_DTYPES, WARMUP_BARS, compute_features

FIXED = (
    "rsi_14",
    "atr_14",
    "macd",
    "macd_signal",
    "macd_hist",
    "bb_upper",
    "bb_middle",
    "bb_lower",
    "ema_9",
    "ema_21",
)
# the signal model's list (analysis-and-models.md §1/§4) minus SMC and regime columns
MODEL_BASE = (
    "rsi",
    "atr",
    "atr_percent",
    "macd",
    "macd_signal",
    "macd_histogram",
    "bb_percent_b",
    "bb_width",
    "ema_9",
    "ema_21",
    "returns_1",
    "returns_5",
    "returns_20",
    "log_returns",
    "volatility_20",
    "normalized_range",
    "avg_normalized_range",
    "price_position",
    "dist_from_sma_20",
    "higher_high",
    "lower_low",
    "hh_count_5",
    "ll_count_5",
    "volume_ratio",
    "high_volume",
    "hour",
    "weekday",
    "london_session",
    "ny_session",
)
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def make_bars(
    close: list[float] | np.ndarray,
    high: list[float] | np.ndarray | None = None,
    low: list[float] | np.ndarray | None = None,
    open_: list[float] | np.ndarray | None = None,
    volume: list[int] | np.ndarray | None = None,
    spread: list[int] | np.ndarray | None = None,
    start: datetime = T0,
) -> pl.DataFrame:
    c = np.asarray(close, dtype=float)
    n = len(c)
    o = c if open_ is None else np.asarray(open_, dtype=float)
    h = np.maximum(o, c) if high is None else np.asarray(high, dtype=float)
    lo = np.minimum(o, c) if low is None else np.asarray(low, dtype=float)
    return pl.DataFrame(
        {
            "time": [start + timedelta(minutes=15 * i) for i in range(n)],
            "open": o,
            "high": h,
            "low": lo,
            "close": c,
            "tick_volume": np.full(n, 100) if volume is None else np.asarray(volume),
            "spread": np.full(n, 20) if spread is None else np.asarray(spread),
            "real_volume": np.zeros(n, dtype=np.int64),
        },
        schema=BAR_SCHEMA,
    )


def col(frame: pl.DataFrame, name: str) -> np.ndarray:
    return frame[name].to_numpy().astype(float)


# ---------------------------------------------------------------- columns


def test_columns_are_appended_in_order_with_stable_names() -> None:
    bars = make_bars(np.linspace(2000, 2010, 50))
    out = compute_features(bars)
    assert len(FEATURE_COLUMNS) >= 40
    assert len(set(FEATURE_COLUMNS)) == len(FEATURE_COLUMNS)
    assert out.columns == [*bars.columns, *FEATURE_COLUMNS]
    assert out.select(bars.columns).equals(bars)
    for name in (*FIXED, *MODEL_BASE):
        assert name in FEATURE_COLUMNS, name
    assert {n: out.schema[n] for n in FEATURE_COLUMNS} == {n: t() for n, t in FEATURE_DTYPES.items()}


def test_model_aliases_equal_fixed_names(shared_bars: pl.DataFrame) -> None:
    out = compute_features(shared_bars.tail(300))
    for alias, fixed in (("rsi", "rsi_14"), ("atr", "atr_14"), ("macd_histogram", "macd_hist")):
        np.testing.assert_array_equal(col(out, alias), col(out, fixed))


def test_every_float_feature_is_defined_after_the_warm_up(shared_bars: pl.DataFrame) -> None:
    out = compute_features(shared_bars)
    floats = [n for n in FEATURE_COLUMNS if out.schema[n] == pl.Float64]
    body = out.slice(WARMUP_BARS).select(floats).to_numpy()
    assert np.isfinite(body).all()
    assert np.isnan(out["macd"][WARMUP_BARS - 1])


# ---------------------------------------------------------------- TA-Lib parity


def _talib_reference(bars: pl.DataFrame) -> dict[str, np.ndarray]:
    talib = pytest.importorskip("talib")
    h, lo, c = (bars[k].to_numpy() for k in ("high", "low", "close"))
    macd, signal, hist = talib.MACD(c, 12, 26, 9)
    upper, middle, lower = talib.BBANDS(c, 20, 2.0, 2.0, 0)
    return {
        "rsi_14": talib.RSI(c, 14),
        "atr_14": talib.ATR(h, lo, c, 14),
        "macd": macd,
        "macd_signal": signal,
        "macd_hist": hist,
        "bb_upper": upper,
        "bb_middle": middle,
        "bb_lower": lower,
        "ema_9": talib.EMA(c, 9),
        "ema_21": talib.EMA(c, 21),
    }


def _assert_parity(actual: np.ndarray, expected: np.ndarray, name: str) -> None:
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected), err_msg=f"{name}: warm-up differs")
    ok = ~np.isnan(expected)
    assert ok.sum() > 0, name
    # MACD histogram crosses zero: scale its tolerance by the MACD line's magnitude
    scale = np.maximum(np.abs(expected[ok]), 1e-3)
    rel = np.abs(actual[ok] - expected[ok]) / scale
    assert rel.max() <= 1e-4, f"{name}: max relative error {rel.max():.2e}"


@pytest.mark.parametrize("window", ["all", "last_200", "first_200", "first_40"])
def test_fixed_indicators_match_talib(shared_bars: pl.DataFrame, window: str) -> None:
    bars = {
        "all": shared_bars,
        "last_200": shared_bars.tail(200),
        "first_200": shared_bars.head(200),
        "first_40": shared_bars.head(40),
    }[window]
    out = compute_features(bars)
    for name, expected in _talib_reference(bars).items():
        _assert_parity(col(out, name), expected, name)


# ---------------------------------------------------------------- momentum


def test_rsi_hand_values() -> None:
    up = compute_features(make_bars(np.arange(2000.0, 2030.0)))
    rsi = col(up, "rsi_14")
    assert np.isnan(rsi[:14]).all()
    assert rsi[14:] == pytest.approx(100.0)
    # 7 rises of 2 then 7 falls of 1: avg gain 14/14, avg loss 7/14 -> 100 * 1 / 1.5
    steps = [2.0] * 7 + [-1.0] * 7
    close = np.concatenate([[2000.0], 2000.0 + np.cumsum(steps)])
    rsi = col(compute_features(make_bars(close)), "rsi_14")
    assert rsi[14] == pytest.approx(200.0 / 3.0)
    # one more fall of 3: gain 1*13/14, loss (0.5*13 + 3)/14
    rsi = col(compute_features(make_bars([*close, close[-1] - 3.0])), "rsi_14")
    assert rsi[15] == pytest.approx(100.0 * 13.0 / (13.0 + 6.5 + 3.0))
    # flat prices: TA-Lib reports 0
    assert col(compute_features(make_bars(np.full(20, 2000.0))), "rsi_14")[14:] == pytest.approx(0.0)


def test_macd_and_returns_hand_values() -> None:
    flat = compute_features(make_bars(np.full(40, 2000.0)))
    assert np.isnan(col(flat, "macd")[:33]).all()
    assert col(flat, "macd")[33:] == pytest.approx(0.0)
    assert col(flat, "macd_hist")[33:] == pytest.approx(0.0)
    # a straight line: both EMAs lag by (period-1)/2 steps, so MACD = (25-11)/2 * slope
    line = compute_features(make_bars(2000.0 + 0.5 * np.arange(60)))
    assert col(line, "macd")[33:] == pytest.approx(7.0 * 0.5)
    assert col(line, "macd_signal")[33:] == pytest.approx(3.5)
    out = compute_features(make_bars([100.0, 110.0, 99.0, 99.0, 99.0, 121.0]))
    assert col(out, "returns_1")[1:3] == pytest.approx([0.1, -0.1])
    assert np.isnan(col(out, "returns_1")[0])
    assert col(out, "returns_5")[5] == pytest.approx(0.21)
    assert col(out, "log_returns")[1] == pytest.approx(np.log(1.1))


# ---------------------------------------------------------------- volatility


def test_atr_bollinger_and_ranges_hand_values() -> None:
    close = np.full(30, 2000.0)
    out = compute_features(make_bars(close, high=close + 1.0, low=close - 1.0))
    assert np.isnan(col(out, "atr_14")[:14]).all()
    assert col(out, "atr_14")[14:] == pytest.approx(2.0)
    assert col(out, "atr_percent")[14] == pytest.approx(0.1)
    assert col(out, "normalized_range") == pytest.approx(2.0 / 2000.0)
    assert col(out, "avg_normalized_range")[13:] == pytest.approx(0.001)
    assert col(out, "bb_upper")[19:] == pytest.approx(2000.0)
    assert col(out, "bb_width")[19:] == pytest.approx(0.0)
    # a gap: true range uses the previous close; Wilder: (2*13 + 12) / 14
    close2 = np.concatenate([close, [2010.0]])
    out = compute_features(make_bars(close2, high=close2 + 1.0, low=close2 - 1.0))
    assert col(out, "atr_14")[30] == pytest.approx((2.0 * 13 + 11.0) / 14)
    # bands on 1..20: mean 10.5, population std sqrt((20^2-1)/12)
    out = compute_features(make_bars(np.arange(1.0, 21.0)))
    sd = np.sqrt(399.0 / 12.0)
    assert col(out, "bb_middle")[19] == pytest.approx(10.5)
    assert col(out, "bb_upper")[19] == pytest.approx(10.5 + 2 * sd)
    assert col(out, "bb_percent_b")[19] == pytest.approx((20 - 10.5 + 2 * sd) / (4 * sd))
    assert col(out, "dist_from_sma_20")[19] == pytest.approx(20 / 10.5 - 1)


def test_volatility_20_is_sample_std_of_log_returns() -> None:
    rng = np.random.default_rng(7)
    close = 2000.0 * np.exp(np.cumsum(rng.normal(0, 0.001, 40)))
    out = compute_features(make_bars(close))
    lr = np.log(close[1:] / close[:-1])
    vol = col(out, "volatility_20")
    assert np.isnan(vol[:20]).all()
    assert vol[20] == pytest.approx(np.std(lr[:20], ddof=1))
    assert vol[39] == pytest.approx(np.std(lr[-20:], ddof=1))


# ---------------------------------------------------------------- trend


def test_ema_hand_values_and_crosses() -> None:
    close = [*range(1, 10), 20]
    ema9 = col(compute_features(make_bars(np.array(close, dtype=float))), "ema_9")
    assert np.isnan(ema9[:8]).all()
    assert ema9[8] == pytest.approx(5.0)
    assert ema9[9] == pytest.approx(5.0 + (20 - 5.0) * 0.2)
    # down 40 bars then up: ema_9 falls below ema_21 and later crosses back above exactly once
    close = np.concatenate([np.linspace(2100, 2000, 40), np.linspace(2000, 2100, 40)])
    out = compute_features(make_bars(close))
    fast, slow = col(out, "ema_9"), col(out, "ema_21")
    bull, bear = col(out, "ema_cross_bull"), col(out, "ema_cross_bear")
    above = fast > slow
    expected_bull = np.flatnonzero(above[1:] & ~above[:-1] & ~np.isnan(slow[:-1])) + 1
    assert expected_bull.size == 1
    assert np.flatnonzero(bull).tolist() == expected_bull.tolist()
    assert bear.sum() == 0  # the first defined bar (21) is below, but the warm-up end is not a cross


# ---------------------------------------------------------------- price action


def test_price_action_hand_values() -> None:
    high = [10.0, 11.0, 12.0, 11.5, 13.0, 14.0, 14.0]
    low = [9.0, 9.5, 10.0, 9.0, 9.0, 8.0, 8.5]
    close = [9.5, 10.0, 12.0, 10.0, 11.0, 8.0, 9.0]
    out = compute_features(make_bars(close, high=high, low=low, open_=close))
    assert col(out, "higher_high").tolist() == [0, 1, 1, 0, 1, 1, 0]
    assert col(out, "lower_low").tolist() == [0, 0, 0, 1, 0, 1, 0]
    hh5 = col(out, "hh_count_5")
    assert np.isnan(hh5[:4]).all()
    assert hh5[4:].tolist() == [3.0, 4.0, 3.0]
    assert col(out, "ll_count_5")[4:].tolist() == [1.0, 2.0, 2.0]
    assert col(out, "price_position")[:3] == pytest.approx([0.5, 0.5 / 1.5, 1.0])
    doji = compute_features(make_bars([5.0], high=[5.0], low=[5.0]))
    assert np.isnan(col(doji, "price_position")[0])


# ---------------------------------------------------------------- volume


def test_volume_hand_values() -> None:
    n = 25
    vol = np.full(n, 100)
    vol[20], vol[21] = 300, 150
    close = np.full(n, 2000.0)
    open_ = close.copy()
    open_[20] = 1999.0  # bullish bar
    open_[21] = 2001.0  # bearish bar
    spread = np.full(n, 20)
    spread[22] = 40
    out = compute_features(make_bars(close, open_=open_, volume=vol, spread=spread))
    assert np.isnan(col(out, "volume_sma")[:19]).all()
    assert col(out, "volume_sma")[19] == pytest.approx(100.0)
    assert col(out, "volume_ratio")[20] == pytest.approx(300 / 110.0)
    assert col(out, "high_volume")[19:23].tolist() == [0, 1, 0, 0]
    assert col(out, "volume_increasing")[19:23].tolist() == [0, 1, 0, 0]
    assert col(out, "buy_volume")[20] == 300 and col(out, "sell_volume")[20] == 0
    assert col(out, "sell_volume")[21] == 150 and col(out, "buy_volume")[21] == 0
    ofi = col(out, "ofi_pseudo")
    assert ofi[19] == 0.0 and ofi[20] == pytest.approx(1.0) and ofi[21] == pytest.approx(-1.0)
    assert col(out, "ofi_trend")[21] == pytest.approx(0.0)
    assert col(out, "ofi_divergence")[20] == pytest.approx(1.0 - 1.0 / 20)
    assert col(out, "ofi_divergence")[:19] == pytest.approx(0.0)  # NaN trend -> 0
    assert col(out, "ofi_std")[20] == pytest.approx(np.std([0] * 19 + [1], ddof=1))
    momentum = col(out, "volume_momentum")
    assert momentum[:21] == pytest.approx([0.0] * 20 + [300 / 110.0 - 1.0])
    # toxicity = |vm| + 2|ofi div| + |spread / spread sma - 1|
    r21 = 150 / 112.5
    vm21 = r21 / (300 / 110.0) - 1.0
    expected = abs(vm21) + 2 * abs(-1.0 - 0.0) + 0.0
    assert col(out, "toxicity")[21] == pytest.approx(expected)
    vm22 = (100 / 112.5) / r21 - 1.0
    expected22 = abs(vm22) + 2 * abs(0.0 - (-0.0)) + abs(40 / 21.0 - 1.0)
    assert col(out, "toxicity")[22] == pytest.approx(expected22)
    assert col(out, "toxicity")[:19] == pytest.approx(0.0)


# ---------------------------------------------------------------- lags


def test_close_lags() -> None:
    out = compute_features(make_bars(np.arange(1.0, 9.0)))
    assert col(out, "close_lag_1")[1:].tolist() == list(range(1, 8))
    assert col(out, "close_lag_5")[5:].tolist() == [1.0, 2.0, 3.0]
    assert np.isnan(col(out, "close_lag_5")[:5]).all()


# ---------------------------------------------------------------- time and sessions (WIB)


@pytest.mark.parametrize(
    ("utc", "hour", "weekday", "flags"),
    [
        # Friday 13:00 UTC = Friday 20:00 WIB: London and New York
        (datetime(2024, 1, 5, 13, 0), 20, 5, {"london_session": 1, "ny_session": 1}),
        # Friday 17:00 UTC = Saturday 00:00 WIB: the WIB day and weekday roll over
        (datetime(2024, 1, 5, 17, 0), 0, 6, {"dead_zone": 1}),
        # Sunday 23:00 UTC = Monday 06:00 WIB: Sydney opens
        (datetime(2024, 1, 7, 23, 0), 6, 1, {"sydney_session": 1}),
        # 08:45 UTC = 15:45 WIB: Tokyo and London overlap
        (datetime(2024, 1, 3, 8, 45), 15, 3, {"tokyo_session": 1, "london_session": 1}),
        # 09:00 UTC = 16:00 WIB: last Tokyo minute (inclusive bound)
        (datetime(2024, 1, 3, 9, 0), 16, 3, {"tokyo_session": 1, "london_session": 1}),
        # 06:15 UTC = 13:15 WIB: Tokyo only
        (datetime(2024, 1, 3, 6, 15), 13, 3, {"tokyo_session": 1}),
        # 16:45 UTC = 23:45 WIB
        (datetime(2024, 1, 3, 16, 45), 23, 3, {"london_session": 1, "ny_session": 1}),
        # 22:30 UTC = 05:30 WIB next day: rollover
        (datetime(2024, 1, 3, 22, 30), 5, 4, {"dead_zone": 1}),
    ],
)
def test_time_and_session_flags_in_wib(utc: datetime, hour: int, weekday: int, flags: dict[str, int]) -> None:
    out = compute_features(make_bars([2000.0], start=utc.replace(tzinfo=UTC)))
    row = out.row(0, named=True)
    assert (row["hour"], row["weekday"]) == (hour, weekday)
    for name in ("sydney_session", "tokyo_session", "london_session", "ny_session", "dead_zone"):
        assert row[name] == flags.get(name, 0), name


# ---------------------------------------------------------------- no look-ahead


def _rows_equal(a: dict[str, object], b: dict[str, object]) -> list[str]:
    bad = []
    for name, x in a.items():
        y = b[name]
        same = x == y or (isinstance(x, float) and isinstance(y, float) and np.isnan(x) and np.isnan(y))
        if not same:
            bad.append(f"{name}: {x!r} != {y!r}")
    return bad


def test_no_look_ahead_prefix_invariance(shared_bars: pl.DataFrame) -> None:
    bars = shared_bars.head(3000)
    full = compute_features(bars)
    rng = np.random.default_rng(2024)
    cuts = sorted({*rng.integers(0, bars.height, 30).tolist(), 0, 1, 13, 14, 19, 20, 32, 33, bars.height - 1})
    for t in cuts:
        prefix = compute_features(bars.head(t + 1))
        bad = _rows_equal(prefix.row(t, named=True), full.row(t, named=True))
        assert not bad, f"cut {t}: {bad[:3]}"


def test_changing_a_future_bar_changes_no_earlier_row(shared_bars: pl.DataFrame) -> None:
    bars = shared_bars.slice(500, 300)
    base = compute_features(bars)
    spiked = bars.with_columns(
        pl.when(pl.int_range(pl.len()) == 250).then(pl.col(c) * 1.05).otherwise(pl.col(c)).alias(c)
        for c in ("open", "high", "low", "close")
    ).with_columns(
        pl.when(pl.int_range(pl.len()) == 250)
        .then(9999)
        .otherwise(pl.col("tick_volume"))
        .alias("tick_volume")
    )
    after = compute_features(spiked)
    assert after.head(250).equals(base.head(250))
    assert after.row(250) != base.row(250)


# ---------------------------------------------------------------- short, empty and bad frames


@pytest.mark.parametrize("n", [0, 1, 2, 5, 13, 14, 15, 20, 21, 33, 34])
def test_short_frames_never_raise(shared_bars: pl.DataFrame, n: int) -> None:
    out = compute_features(shared_bars.head(n))
    assert out.height == n
    assert out.columns[-len(FEATURE_COLUMNS) :] == list(FEATURE_COLUMNS)
    warmups = {
        "rsi_14": 14,
        "atr_14": 14,
        "ema_9": 8,
        "ema_21": 20,
        "bb_middle": 19,
        "macd": 33,
        "returns_20": 20,
        "volatility_20": 20,
    }
    for name, first in warmups.items():
        values = col(out, name)
        assert np.isnan(values[:first]).all(), name
        assert not np.isnan(values[first:]).any(), name


def test_empty_frame_keeps_schema() -> None:
    out = compute_features(empty_bars())
    assert out.height == 0
    assert out.columns == [*BAR_SCHEMA, *FEATURE_COLUMNS]
    assert out.schema["rsi_14"] == pl.Float64 and out.schema["hour"] == pl.Int8


def test_bad_input_is_refused_with_a_clear_message() -> None:
    bars = make_bars([1.0, 2.0])
    with pytest.raises(ValueError, match="missing column"):
        compute_features(bars.drop("spread"))
    with pytest.raises(ValueError, match="UTC-aware"):
        compute_features(bars.with_columns(pl.col("time").dt.replace_time_zone(None)))
    with pytest.raises(ValueError, match="already has feature"):
        compute_features(compute_features(bars))
    with pytest.raises(TypeError, match="polars DataFrame"):
        compute_features(bars.to_numpy())  # type: ignore[arg-type]


# ---------------------------------------------------------------- indicator kernels


def test_indicator_kernels_on_hand_values() -> None:
    from trading import indicators as ind

    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    # seeded on x[2:5] = mean 4 at index 4, then 4 + (6 - 4) * 0.5
    assert ind.ema_seeded(x, 3, 2)[4:] == pytest.approx([4.0, 5.0])
    assert np.isnan(ind.ema_seeded(x, 3, 2)[:4]).all()
    # Wilder: seed mean(1,2,3) = 2, then (2*2 + 4)/3
    assert ind.wilder_seeded(x, 3)[2:4] == pytest.approx([2.0, 8.0 / 3.0])
    assert ind.rolling_sum(x, 3)[2:].tolist() == [6.0, 9.0, 12.0, 15.0]
    assert ind.rolling_std(x, 3, 1)[2] == pytest.approx(1.0)
    assert ind.rolling_std(x, 3, 0)[2] == pytest.approx(np.sqrt(2.0 / 3.0))
    assert np.isnan(ind.shift(x, 10)).all()
    assert np.isnan(ind.ema_seeded(x, 7, 0)).all()  # shorter than the period: NaN, no error
    assert ind.ema_seeded(np.empty(0), 9, 0).shape == (0,)
