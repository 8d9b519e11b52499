"""SMC events on hand-made bars with known answers, the strict no-look-ahead test, and setups."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trading import smc
from trading.bars import BAR_SCHEMA, empty_bars, validate_bars
from trading.domain import Side

T0 = datetime(2025, 1, 6, 0, 0, tzinfo=UTC)


def make_bars(rows: list[tuple[float, ...]]) -> pl.DataFrame:
    """BAR_SCHEMA frame from (high, low, close) or (open, high, low, close) rows; open defaults to close."""
    opens, highs, lows, closes = [], [], [], []
    for row in rows:
        if len(row) == 3:
            h, lo, c = row
            o = c
        else:
            o, h, lo, c = row
        opens.append(o)
        highs.append(h)
        lows.append(lo)
        closes.append(c)
    n = len(rows)
    frame = pl.DataFrame(
        {
            "time": [T0 + timedelta(minutes=15 * i) for i in range(n)],
            "open": opens,
            "high": highs,
            "low": lows,
            "close": closes,
            "tick_volume": [100] * n,
            "spread": [20] * n,
            "real_volume": [0] * n,
        },
        schema=BAR_SCHEMA,
    )
    return validate_bars(frame)


def mirror(rows: list[tuple[float, ...]], axis: float = 300.0) -> list[tuple[float, float, float, float]]:
    """Upside down: every bullish event becomes its bearish twin."""
    out = []
    for row in rows:
        o, h, lo, c = row if len(row) == 4 else (row[2], *row)
        out.append((axis - o, axis - lo, axis - h, axis - c))
    return out


def events(frame: pl.DataFrame, column: str) -> dict[int, int]:
    values = frame[column].to_list()
    return {i: v for i, v in enumerate(values) if v}


def levels(frame: pl.DataFrame, column: str) -> dict[int, float]:
    values = frame[column].to_list()
    return {i: v for i, v in enumerate(values) if v is not None}


# A zigzag for swing_length=1 whose structure was worked out by hand: swing highs confirmed at
# 2 (12), 6 (14), 10 (15), 13 (14.2); swing lows at 3 (9.5), 12 (12.5), 15 (11), 17 (10.5).
ZIGZAG = [
    (10, 9, 9.5),
    (12, 10, 11),
    (11, 9.5, 10),
    (11.5, 10, 11),
    (12.5, 11, 12.4),  # 4: close above SH 12 -> trend up, no flag (first break out of neutral)
    (14, 12, 13.5),
    (13, 12.5, 12.8),
    (13.5, 12.6, 13.2),
    (14.5, 13, 14.2),  # 8: close above SH 14 -> BOS up
    (15, 14, 14.8),
    (14.5, 13, 13.2),
    (14, 12.5, 13.8),
    (14.2, 13.5, 14),
    (14, 12, 12.2),  # 13: close below SL 12.5 -> CHoCH down
    (12.5, 11, 11.2),
    (12, 11.2, 11.8),
    (11.9, 10.5, 10.7),  # 16: close below SL 11 -> BOS down
    (11.5, 10.6, 11.4),
    (14.5, 11.3, 14.4),  # 18: close above SH 14.2 -> CHoCH up
]


# --------------------------------------------------------------------------- swings


def test_swing_high_appears_on_its_confirmation_bar_with_the_pivot_level():
    highs = [10, 11, 12, 13, 16, 13, 12, 11, 10.5, 10.2, 10.1, 10]
    bars = make_bars([(h, h - 1, h - 0.5) for h in highs])
    out = smc.analyze(bars, swing_length=5)
    # pivot at bar 4 cannot be confirmed: it has only 4 bars before it
    assert events(out, "swing_high") == {}
    out = smc.analyze(bars, swing_length=3)
    assert events(out, "swing_high") == {7: 1}
    assert levels(out, "swing_high_level") == {7: 16}
    assert out["swing_high"].dtype == pl.Int8


def test_swing_low_and_default_length_five():
    lows = [20, 19, 18, 17, 16, 15, 16, 17, 18, 19, 20, 21]
    bars = make_bars([(lo + 1, lo, lo + 0.5) for lo in lows])
    out = smc.analyze(bars)
    assert events(out, "swing_low") == {10: 1}
    assert levels(out, "swing_low_level") == {10: 15}
    assert events(out, "swing_high") == {}


def test_swing_is_cancelled_by_a_higher_high_inside_the_window():
    highs = [10, 11, 14, 12, 14.5, 11, 10]
    bars = make_bars([(h, h - 1, h - 0.5) for h in highs])
    out = smc.analyze(bars, swing_length=2)
    assert events(out, "swing_high") == {6: 1}
    assert levels(out, "swing_high_level") == {6: 14.5}


def test_equal_highs_both_count_as_swings():
    highs = [10, 11, 13, 12, 13, 11, 10]
    bars = make_bars([(h, h - 1, h - 0.5) for h in highs])
    out = smc.analyze(bars, swing_length=2)
    assert events(out, "swing_high") == {4: 1, 6: 1}
    assert levels(out, "swing_high_level") == {4: 13, 6: 13}


def test_zigzag_swings():
    out = smc.analyze(make_bars(ZIGZAG), swing_length=1)
    assert levels(out, "swing_high_level") == {2: 12, 6: 14, 10: 15, 13: 14.2}
    assert levels(out, "swing_low_level") == {3: 9.5, 12: 12.5, 15: 11, 17: 10.5}
    assert set(events(out, "swing_high")) == {2, 6, 10, 13}
    assert set(events(out, "swing_low")) == {3, 12, 15, 17}


# --------------------------------------------------------------------------- fair value gaps


def test_bullish_fvg_on_third_candle():
    bars = make_bars([(10, 9, 9.5), (12, 10.5, 11.8), (13, 11, 12.5)])
    out = smc.analyze(bars)
    assert events(out, "fvg") == {2: 1}
    assert levels(out, "fvg_top") == {2: 11}
    assert levels(out, "fvg_bottom") == {2: 10}


def test_bearish_fvg_on_third_candle():
    bars = make_bars([(13, 11, 11.5), (11.5, 9.5, 9.8), (10, 9, 9.2)])
    out = smc.analyze(bars)
    assert events(out, "fvg") == {2: -1}
    assert levels(out, "fvg_top") == {2: 11}
    assert levels(out, "fvg_bottom") == {2: 10}


def test_fvg_needs_a_strict_gap_and_the_minimum_size():
    touching = make_bars([(10, 9, 9.5), (12, 10, 11.8), (13, 10, 12.5)])
    assert events(smc.analyze(touching), "fvg") == {}
    gap_of_one = make_bars([(10, 9, 9.5), (12, 10.5, 11.8), (13, 11, 12.5)])
    assert events(smc.analyze(gap_of_one, fvg_min_gap=1.5), "fvg") == {}
    assert events(smc.analyze(gap_of_one, fvg_min_gap=1.0), "fvg") == {2: 1}
    assert (
        events(
            smc.analyze(
                make_bars(mirror(gap_of_one.select("open", "high", "low", "close").rows())), fvg_min_gap=1.5
            ),
            "fvg",
        )
        == {}
    )


# --------------------------------------------------------------------------- order blocks

# swing_length=2: the bearish candle 2 (low 100) is the pivot low, confirmed at bar 4 whose
# close 106.5 clears candle 2's high 104; bar 3 is bullish and is skipped.
OB_ROWS = [
    (105, 106, 104, 105),
    (105, 105.5, 103, 103.5),
    (103.5, 104, 100, 101),
    (101, 104, 101, 103.8),
    (103.8, 107, 103.5, 106.5),
    (106.5, 108, 105, 107.5),
    (107.5, 107.8, 103.9, 104.5),  # trades back into the zone (low 103.9 <= top 104)
]


def test_bullish_order_block_is_stamped_on_the_confirming_bar_not_back_dated():
    out = smc.analyze(make_bars(OB_ROWS), swing_length=2)
    assert events(out, "swing_low") == {4: 1}
    assert events(out, "ob") == {4: 1}
    assert levels(out, "ob_top") == {4: 104}
    assert levels(out, "ob_bottom") == {4: 100}
    assert events(out, "ob_mitigated") == {6: 1}


def test_bearish_order_block_mirrors():
    out = smc.analyze(make_bars(mirror(OB_ROWS)), swing_length=2)
    assert events(out, "ob") == {4: -1}
    assert levels(out, "ob_top") == {4: 200}
    assert levels(out, "ob_bottom") == {4: 196}
    assert events(out, "ob_mitigated") == {6: -1}


def test_no_order_block_without_an_opposite_candle_left_behind():
    # same path, but every candle is a doji: nothing to point at
    dojis = [(c, h, lo, c) for _, h, lo, c in OB_ROWS]
    assert events(smc.analyze(make_bars(dojis), swing_length=2), "ob") == {}
    # the confirming close does not clear the bearish candle's high
    weak = [*OB_ROWS[:4], (103.8, 104.5, 103.5, 103.9)]
    out = smc.analyze(make_bars(weak), swing_length=2)
    assert events(out, "swing_low") == {4: 1}
    assert events(out, "ob") == {}


# --------------------------------------------------------------------------- structure and liquidity


def test_bos_and_choch_on_the_breaking_close():
    out = smc.analyze(make_bars(ZIGZAG), swing_length=1)
    assert events(out, "bos") == {8: 1, 16: -1}
    assert events(out, "choch") == {13: -1, 18: 1}
    expected_trend = [0] * 4 + [1] * 9 + [-1] * 5 + [1]
    assert out["trend"].to_list() == expected_trend


def test_mirrored_structure_flips_every_sign():
    out = smc.analyze(make_bars(mirror(ZIGZAG)), swing_length=1)
    assert events(out, "bos") == {8: -1, 16: 1}
    assert events(out, "choch") == {13: 1, 18: -1}


def test_liquidity_is_the_nearest_untaken_swing_level():
    out = smc.analyze(make_bars(ZIGZAG), swing_length=1)
    bsl = out["buyside_liquidity"].to_list()
    ssl = out["sellside_liquidity"].to_list()
    assert bsl == [None, None, 12, 12, None, None, 14, 14, None, None, 15, 15, 15] + [14.2] * 5 + [15]
    assert ssl == [None, None, None] + [9.5] * 9 + [12.5, 9.5, 9.5, 11, 9.5, 10.5, 10.5]


# --------------------------------------------------------------------------- frame contract


def test_output_contract_and_atr_matches_talib(shared_bars):
    talib = pytest.importorskip("talib")
    out = smc.analyze(shared_bars)
    assert out.columns == list(smc.SMC_COLUMNS)
    assert out.height == shared_bars.height
    assert out["time"].equals(shared_bars["time"])
    expected = talib.ATR(*(shared_bars[c].to_numpy() for c in ("high", "low", "close")), timeperiod=14)
    np.testing.assert_allclose(out["atr"].to_numpy(), expected, rtol=1e-10, equal_nan=True)
    for column in smc.EVENT_COLUMNS:
        assert set(out[column].unique().to_list()) <= {-1, 0, 1}
    # levels exist exactly where their event does
    assert (out["fvg"] != 0).to_list() == out["fvg_top"].is_not_null().to_list()
    assert (out["ob"] != 0).to_list() == out["ob_bottom"].is_not_null().to_list()
    assert (out["swing_low"] != 0).to_list() == out["swing_low_level"].is_not_null().to_list()
    # every kind of event really happens on the real data
    for column in ("swing_high", "swing_low", "fvg", "ob", "ob_mitigated", "bos", "choch", "trend"):
        signs = {1} if column in ("swing_high", "swing_low") else {1, -1}
        assert signs <= set(out[column].unique().to_list()), column


def test_no_look_ahead_on_real_data(shared_bars):
    full = smc.analyze(shared_bars)
    n = shared_bars.height
    cuts = sorted({*range(0, 40), *np.linspace(40, n - 1, 120).astype(int).tolist()})
    for t in cuts:
        part = smc.analyze(shared_bars.head(t + 1))
        assert part.row(t) == full.row(t), f"row {t} changes when later bars are added"
    for t in (250, 5000, n - 2):
        assert smc.analyze(shared_bars.head(t + 1)).equals(full.head(t + 1))


def test_no_look_ahead_with_other_settings(shared_bars):
    bars = shared_bars.slice(3000, 1500)
    full = smc.analyze(bars, swing_length=2, fvg_min_gap=0.5, ob_lookback=5)
    for t in range(0, bars.height, 37):
        part = smc.analyze(bars.head(t + 1), swing_length=2, fvg_min_gap=0.5, ob_lookback=5)
        assert part.row(t) == full.row(t), f"row {t} changes when later bars are added"


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(st.integers(-30, 30), min_size=1, max_size=60),
    swing_length=st.integers(1, 4),
    cut=st.integers(0, 59),
)
def test_prefix_property_on_random_walks(steps, swing_length, cut):
    closes = 100 + np.cumsum(steps) / 10
    rows = [(c + 0.3 + (i % 3) / 10, c - 0.2 - (i % 2) / 10, c) for i, c in enumerate(closes)]
    bars = make_bars(rows)
    cut = min(cut, bars.height - 1)
    full = smc.analyze(bars, swing_length=swing_length)
    assert smc.analyze(bars.head(cut + 1), swing_length=swing_length).equals(full.head(cut + 1))


def test_empty_and_short_frames_have_no_events_and_no_setup():
    out = smc.analyze(empty_bars())
    assert out.height == 0 and out.columns == list(smc.SMC_COLUMNS)
    assert smc.signal(out) is None
    short = smc.analyze(make_bars(ZIGZAG[:2]))
    for column in smc.EVENT_COLUMNS:
        assert events(short, column) == {}
    assert smc.signal(short) is None
    assert smc.explain_signal(short)[1].startswith("need at least 10")
    twelve = make_bars(BULLISH[:12])
    assert smc.wilder_atr(twelve) is None
    assert smc.explain_signal(smc.analyze(twelve, swing_length=1), twelve) == (
        None,
        "no ATR yet (too few bars)",
    )


def test_bad_input_is_refused_with_a_clear_error():
    bars = make_bars(ZIGZAG)
    with pytest.raises(ValueError, match="missing column.*close"):
        smc.analyze(bars.drop("close"))
    with pytest.raises(ValueError, match="swing_length"):
        smc.analyze(bars, swing_length=0)
    with pytest.raises(ValueError, match="fvg_min_gap"):
        smc.analyze(bars, fvg_min_gap=-1)
    with pytest.raises(ValueError, match="do not match"):
        smc.signal(smc.analyze(bars), bars.head(5))
    with pytest.raises(ValueError, match="min_rr > 0"):
        smc.signal(smc.analyze(bars), min_rr=0)
    with pytest.raises(ValueError, match="missing column.*fvg"):
        smc.signal(smc.analyze(bars).drop("fvg"))


# --------------------------------------------------------------------------- setups

# ZIGZAG ends with a CHoCH up at bar 18; bars 19-20 leave a bullish FVG 14.50-15.00 on bar 20
# (and an older one 11.50-14.20 on bar 19). All candles are dojis, so there is no order block.
BULLISH = [*ZIGZAG, (15.5, 14.2, 15.2), (16.5, 15, 16.2)]


def test_bullish_setup_stop_below_the_zone_and_tp_at_two_r():
    bars = make_bars(BULLISH)
    analysis = smc.analyze(bars, swing_length=1)
    assert events(analysis, "fvg")[20] == 1
    setup = smc.signal(analysis, atr=1.0)
    assert setup is not None
    assert setup.side is Side.BUY
    assert (setup.kind, setup.zone_bottom, setup.zone_top) == ("FVG", 14.5, 15.0)
    assert setup.entry == 16.2
    assert setup.stop_loss == 14.4  # zone bottom - 0.1 ATR
    assert setup.take_profit == 19.8  # entry + 2 x 1.8
    assert setup.risk_reward == 2.0
    assert setup.reason == "CHoCH up + bullish FVG 14.50-15.00"
    # 0.40 base + 0.15 trend + 0.12 break + 0.08 FVG (no OB, one BOS up in 20 bars)
    assert setup.confidence == pytest.approx(0.75)
    with pytest.raises(dataclasses.FrozenInstanceError):
        setup.entry = 1.0  # type: ignore[misc]


def test_stop_is_at_least_the_minimum_distance():
    setup = smc.signal(smc.analyze(make_bars(BULLISH), swing_length=1), atr=1.5)
    assert setup is not None
    assert setup.stop_loss == pytest.approx(16.2 - 2.25)
    assert setup.take_profit == pytest.approx(16.2 + 4.5)


def test_tp_cap_below_two_r_refuses_the_entry():
    analysis = smc.analyze(make_bars(BULLISH), swing_length=1)
    # risk 1.78 -> 2R = 3.56 > 4 x 0.8 = 3.2: the capped TP would give less than 2R
    assert smc.signal(analysis, atr=0.8) is None
    setup, why = smc.explain_signal(analysis, atr=0.8)
    assert setup is None and "cap" in why
    # the cap is only a cap: raise it and the same trade passes with TP at 2R
    setup = smc.signal(analysis, atr=0.8, tp_atr_cap=5.0)
    assert setup is not None and setup.take_profit == pytest.approx(16.2 + 3.56)


def test_sub_two_r_setup_is_refused_and_lower_min_rr_accepts_the_cap():
    analysis = smc.analyze(make_bars(BULLISH), swing_length=1)
    assert smc.signal(analysis, atr=0.5) is None  # risk 1.75 = 3.5 ATR: 2R would be 7 ATR
    setup = smc.signal(analysis, atr=0.5, min_rr=1.0)  # 1R = 1.75 fits under 4 x 0.5
    assert setup is not None and setup.take_profit == pytest.approx(16.2 + 1.75)


def test_bearish_setup_mirrors():
    rows = mirror(BULLISH)
    setup = smc.signal(smc.analyze(make_bars(rows), swing_length=1), atr=1.0)
    assert setup is not None
    assert setup.side is Side.SELL
    assert (setup.zone_bottom, setup.zone_top) == (285.0, 285.5)
    assert setup.entry == pytest.approx(283.8)
    assert setup.stop_loss == pytest.approx(285.6)
    assert setup.take_profit == pytest.approx(280.2)
    assert setup.reason == "CHoCH down + bearish FVG 285.00-285.50"


def test_order_block_setup_when_there_is_no_fvg():
    # swing_length=2: a swing high 106 (bar 4), then OB_ROWS' bullish order block 100-104 stamped on
    # bar 7, whose close 106.5 breaks 106 (first break out of neutral: trend up, no flag)
    rows = [
        (104, 105, 103.5, 104.5),
        (104.5, 105.8, 104, 105),
        (105, 106, 104.8, 105.5),
        (105, 105.9, 104, 105),
        *OB_ROWS[1:5],
        (106.5, 107.5, 104.0, 107),
        (107, 107.8, 106.6, 107.2),
    ]
    analysis = smc.analyze(make_bars(rows), swing_length=2)
    assert events(analysis, "ob") == {4: -1, 7: 1}
    assert events(analysis, "fvg") == {}
    setup = smc.signal(analysis, atr=4.0)
    assert setup is not None
    assert (setup.side, setup.kind, setup.zone_bottom, setup.zone_top) == (Side.BUY, "OB", 100.0, 104.0)
    assert (setup.entry, setup.stop_loss, setup.take_profit) == (107.2, 99.6, 122.4)
    assert setup.reason == "trend up + bullish OB 100.00-104.00"
    assert setup.confidence == pytest.approx(0.65)  # 0.40 + 0.15 trend + 0.10 OB


def test_no_setup_without_a_zone_or_when_price_closed_through_it():
    # trend up but ten overlapping bars: no zone, no recent break -> no setup
    quiet = [*ZIGZAG[:13], *[(14.2, 13.4, 13.8)] * 10]
    analysis = smc.analyze(make_bars(quiet), swing_length=1)
    assert analysis["trend"][-1] == 1
    assert smc.explain_signal(analysis, atr=1.0) == (
        None,
        "no structure + zone confluence on the recent bars",
    )
    # price falls back below both bullish FVGs: the zones are void, and nothing bearish qualifies
    closed_through = [*BULLISH, (16.2, 11.0, 11.2)]
    setup, why = smc.explain_signal(smc.analyze(make_bars(closed_through), swing_length=1), atr=1.0)
    assert setup is None
    # the bearish FVG 12.50-13.50 of bar 14 was closed through upwards by bar 18
    assert (
        why
        == "BUY: price has closed through every recent zone; SELL: price has closed through every recent zone"
    )


def test_atr_comes_from_bars_or_the_analysis(shared_bars):
    bars = shared_bars.tail(200)
    analysis = smc.analyze(bars)
    assert smc.wilder_atr(bars) == pytest.approx(analysis["atr"][-1])
    assert smc.signal(analysis) == smc.signal(analysis, bars)
    found = [smc.signal(smc.analyze(shared_bars.slice(t - 199, 200))) for t in range(300, 12_000, 97)]
    setups = [s for s in found if s is not None]
    assert setups, "the real data should produce some setups"
    for s in setups:
        risk = abs(s.entry - s.stop_loss)
        assert s.risk_reward >= 1.98
        assert abs(s.take_profit - s.entry) <= 4 * s.atr + 0.01
        assert 0.55 <= s.confidence <= 0.85
        assert (s.stop_loss < s.zone_bottom) if s.side is Side.BUY else (s.stop_loss > s.zone_top)
        assert risk > 0


def test_signal_at_matches_signal_on_every_row(shared_bars: pl.DataFrame) -> None:
    """The backtest's row reader gives exactly the setup `signal` gives on the frame cut at that row."""
    bars = shared_bars.head(600)
    analysis = smc.analyze(bars)
    columns = smc.signal_columns(analysis)
    for i in range(0, 600, 3):
        assert smc.signal_at(columns, i) == smc.signal(analysis.head(i + 1)), i


def test_signal_at_with_the_hits_counted_up_front_is_the_same(shared_bars: pl.DataFrame) -> None:
    analysis = smc.analyze(shared_bars.head(3000))
    counted = smc.signal_columns(analysis)
    plain = counted.without_hits()
    for i in range(analysis.height):
        assert smc.signal_at(counted, i) == smc.signal_at(plain, i), i


def test_signal_at_reads_rows_in_any_order_across_list_chunks(shared_bars: pl.DataFrame) -> None:
    """`SignalColumns` converts its rows to lists a chunk at a time: rows read in any order, across the
    chunks' edges and with a longer look-back than a chunk's lead, give the setups a fresh read gives."""
    analysis = smc.analyze(shared_bars.head(9000))
    rows = [*range(4070, 4120), *range(8180, 8200), 3, 4095, 4096, 4097, 8191, 8192, 20, 4100, 12]
    for recent in (10, 30):
        shared = smc.signal_columns(analysis, recent=recent)
        for i in rows:
            fresh = smc.signal_columns(analysis, recent=recent)
            setup = smc.signal_at(shared, i, recent=recent)
            assert setup == smc.signal_at(fresh, i, recent=recent), i
            assert setup == smc.signal(analysis.head(i + 1), recent=recent), i
