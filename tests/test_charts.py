"""Charts: PNG output, overlay geometry (known answers), overlays actually drawn, empty and NaN input."""

from __future__ import annotations

import itertools
import struct
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from matplotlib.figure import Figure

from charts.candles import ChartPosition, candlestick_chart, candlestick_figure
from charts.equity import drawdown, equity_chart, equity_figure
from charts.pnl import daily_pnl_chart, daily_pnl_figure
from charts.style import PNG_SIGNATURE, no_data_png
from charts.zones import Zone, as_flags, fair_value_gap_zones, order_block_zones, runs, swing_pivots

T0 = datetime(2026, 11, 24, 0, 0, tzinfo=UTC)


def png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == PNG_SIGNATURE
    assert png[12:16] == b"IHDR"
    return struct.unpack(">II", png[16:24])


def by_gid(fig: Figure, gid: str) -> list:
    return fig.findobj(lambda a: a.get_gid() == gid)


def texts(fig: Figure) -> list[str]:
    from matplotlib.text import Text

    return [t.get_text() for t in fig.findobj(Text)]


def make_bars(closes: list[float], start: datetime = T0) -> pl.DataFrame:
    c = np.asarray(closes, dtype=np.float64)
    o = np.concatenate(([c[0]], c[:-1]))
    return pl.DataFrame(
        {
            "time": [start + timedelta(minutes=15 * i) for i in range(c.size)],
            "open": o,
            "high": np.maximum(o, c) + 0.5,
            "low": np.minimum(o, c) - 0.5,
            "close": c,
        },
        schema_overrides={"time": pl.Datetime("us", "UTC")},
    )


# 12 bars: a rise, a dip that fills the gap stamped at bar 3, then a recovery
CLOSES = [100, 101, 102, 104, 105, 106, 103, 101, 102, 104, 105, 107]


def make_smc(rows: int = 12) -> pl.DataFrame:
    n = 12
    nan = float("nan")
    fvg = [0] * n
    fvg_top, fvg_bottom = [nan] * n, [nan] * n
    fvg[3], fvg_top[3], fvg_bottom[3] = 1, 103.5, 102.5  # bull FVG, filled when a low reaches 102.5
    fvg[10], fvg_top[10], fvg_bottom[10] = -1, 110.0, 109.0  # bear FVG, never filled
    ob = [0] * n
    ob_top, ob_bottom = [nan] * n, [nan] * n
    ob[5], ob_top[5], ob_bottom[5] = 1, 105.0, 104.0  # bull OB, broken by the close 103 at bar 6
    bos = [0] * n
    bos[4] = 1
    choch = [0] * n
    choch[7] = -1
    swing_high = [0] * n
    swing_high_level = [nan] * n
    swing_high[8], swing_high_level[8] = 1, 105.5  # pivot is bar 4 (high 105.5)
    swing_low = [0] * n
    swing_low_level = [nan] * n
    swing_low[10], swing_low_level[10] = -1, 100.5  # bars 7 and 8 share the low 100.5: the later one
    return pl.DataFrame(
        {
            "fvg": fvg,
            "fvg_top": fvg_top,
            "fvg_bottom": fvg_bottom,
            "ob": ob,
            "ob_top": ob_top,
            "ob_bottom": ob_bottom,
            "bos": bos,
            "choch": choch,
            "swing_high": swing_high,
            "swing_high_level": swing_high_level,
            "swing_low": swing_low,
            "swing_low_level": swing_low_level,
        }
    ).head(rows)


# ---------------------------------------------------------------- zone geometry (pure)


def test_as_flags_treats_nan_and_none_as_no_signal() -> None:
    assert as_flags(np.array([1.0, -1.0, np.nan, 0.0, 2.0])).tolist() == [1, -1, 0, 0, 1]


def test_fvg_zone_runs_until_filled_or_the_last_bar() -> None:
    bars = make_bars(CLOSES)
    smc = make_smc()
    high, low = bars["high"].to_numpy(), bars["low"].to_numpy()
    zones = fair_value_gap_zones(
        smc["fvg"].to_numpy(), smc["fvg_top"].to_numpy(), smc["fvg_bottom"].to_numpy(), high, low
    )
    # bar 6 low = 102.5 reaches the bull gap's bottom; the bear gap at 109-110 is never traded into
    assert zones == [Zone(3, 6, 103.5, 102.5, 1, True), Zone(10, 11, 110.0, 109.0, -1, False)]


def test_bear_fvg_fills_when_a_high_reaches_its_top() -> None:
    high = np.array([10.0, 9.0, 9.5, 11.0])
    low = high - 1
    zones = fair_value_gap_zones(
        np.array([0, -1, 0, 0]), np.array([np.nan, 10.5, 0, 0]), np.array([np.nan, 9.8, 0, 0]), high, low
    )
    assert zones == [Zone(1, 3, 10.5, 9.8, -1, True)]


def test_fvg_flag_with_nan_edges_is_skipped_and_swapped_edges_are_fixed() -> None:
    high = np.array([1.0, 2.0, 3.0])
    zones = fair_value_gap_zones(
        np.array([1, -1, 0]), np.array([np.nan, 1.0]), np.array([0.5, 2.5]), high, high - 1
    )
    assert zones == [Zone(1, 2, 2.5, 1.0, -1, True)]


def test_order_block_breaks_on_a_close_beyond_its_far_edge() -> None:
    close = np.array(CLOSES, dtype=float)
    smc = make_smc()
    zones = order_block_zones(
        smc["ob"].to_numpy(), smc["ob_top"].to_numpy(), smc["ob_bottom"].to_numpy(), close
    )
    assert zones == [Zone(5, 6, 105.0, 104.0, 1, True)]
    bear = order_block_zones(
        np.array([0, -1, 0, 0]),
        np.array([0, 5.0, 0, 0]),
        np.array([0, 4.0, 0, 0]),
        np.array([4.5, 4.5, 4.9, 5.0]),
    )
    assert bear == [Zone(1, 3, 5.0, 4.0, -1, False)]  # 5.0 is not beyond the top


def test_swing_pivot_sits_on_the_candle_not_the_confirmation_bar() -> None:
    bars = make_bars(CLOSES)
    smc = make_smc()
    highs = swing_pivots(
        smc["swing_high"].to_numpy(), smc["swing_high_level"].to_numpy(), bars["high"].to_numpy()
    )
    lows = swing_pivots(
        smc["swing_low"].to_numpy(), smc["swing_low_level"].to_numpy(), bars["low"].to_numpy()
    )
    assert highs == [(4, 105.5)]
    assert lows == [(8, 100.5)]
    # equal highs (bars 5 and 6 both 106.5): the most recent one
    assert swing_pivots(
        np.array([0] * 8 + [1.0]), np.array([np.nan] * 8 + [106.5]), bars["high"].to_numpy()
    ) == [(6, 106.5)]
    # pivot not in the window -> the flag bar
    assert swing_pivots(
        np.array([0, 0, 1.0]), np.array([np.nan, np.nan, 99.0]), np.array([1.0, 2.0, 3.0])
    ) == [(2, 99.0)]


def test_runs_of_equal_values() -> None:
    assert runs(np.array([0, 0, 1, 2, 2, 2, -1])) == [(0, 1, 0), (2, 2, 1), (3, 5, 2), (6, 6, -1)]
    assert runs(np.array([], dtype=int)) == []


def test_drawdown_known_answer() -> None:
    peak, pct = drawdown(np.array([100.0, 110.0, 99.0, 121.0, np.nan, 110.0]))
    assert peak.tolist() == [100.0, 110.0, 110.0, 121.0, 121.0, 121.0]
    assert pct[:4] == pytest.approx([0.0, 0.0, -10.0, 0.0])
    assert pct[5] == pytest.approx(-100 * 11 / 121)


# ---------------------------------------------------------------- candlestick chart


def test_png_signature_and_size() -> None:
    png = candlestick_chart(make_bars(CLOSES), make_smc(), title="XAUUSD M15")
    assert png_size(png) == (1200, 700)


def test_overlays_are_drawn() -> None:
    pos = [ChartPosition("BUY", 104.0, 101.0, 110.0, "BUY 0.01 #7"), ChartPosition("SELL", 106.0, 0.0, None)]
    regimes = pl.Series([0] * 4 + [2] * 4 + [None, 1, 1, -1])
    fig = candlestick_figure(make_bars(CLOSES), make_smc(), pos, regimes, title="t")
    assert len(by_gid(fig, "fvg")) == 2
    assert len(by_gid(fig, "ob")) == 1
    assert [t.get_text() for t in by_gid(fig, "bos")] == ["BOS"]
    assert [t.get_text() for t in by_gid(fig, "choch")] == ["CHoCH"]
    (sh,) = by_gid(fig, "swing_high")
    (sl,) = by_gid(fig, "swing_low")
    assert len(sh.get_offsets()) == 1 and sh.get_offsets()[0][0] == 4
    assert len(sl.get_offsets()) == 1 and sl.get_offsets()[0][0] == 8
    assert len(by_gid(fig, "position_entry")) == 2
    assert len(by_gid(fig, "position_sl")) == 1  # the SELL has sl 0.0 = none
    assert len(by_gid(fig, "position_tp")) == 1
    assert len(by_gid(fig, "regime")) == 3  # low, high, medium runs; null and -1 are not shaded
    labels = texts(fig)
    assert "BUY 0.01 #7 104.00" in labels and "SL 101.00" in labels and "TP 110.00" in labels
    assert "regime unknown" in labels


def test_filled_fvg_box_ends_at_the_fill_bar_and_live_one_reaches_the_right_edge() -> None:
    fig = candlestick_figure(make_bars(CLOSES), make_smc())
    ax = fig.axes[0]
    filled, live = sorted(by_gid(fig, "fvg"), key=lambda r: r.get_x())
    assert filled.get_x() == pytest.approx(2.5) and filled.get_x() + filled.get_width() == pytest.approx(6.5)
    assert live.get_x() + live.get_width() == pytest.approx(ax.get_xlim()[1])


def test_time_axis_is_in_wib() -> None:
    fig = candlestick_figure(make_bars(CLOSES))
    ticks = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert ticks[0] == "07:00\n24 Nov"  # 00:00 UTC = 07:00 WIB
    assert any("WIB" in t for t in texts(fig))


def test_no_smc_no_overlays() -> None:
    fig = candlestick_figure(make_bars(CLOSES))
    for gid in ("fvg", "ob", "bos", "choch", "swing_high", "swing_low", "regime", "position_entry"):
        assert by_gid(fig, gid) == []


def test_empty_input_gives_a_no_data_png() -> None:
    empty = make_bars(CLOSES).clear()
    for png in (candlestick_chart(empty), candlestick_chart(empty, make_smc(0)), no_data_png()):
        assert png_size(png) == (600, 300)
    assert "no data" in texts(candlestick_figure(empty))


def test_all_nan_prices_give_no_data() -> None:
    bars = make_bars(CLOSES).with_columns(
        pl.lit(None, pl.Float64).alias(c) for c in ("open", "high", "low", "close")
    )
    assert "no data" in texts(candlestick_figure(bars))


def test_nans_in_smc_columns_draw_nothing_and_never_raise() -> None:
    n = len(CLOSES)
    nan_smc = pl.DataFrame({c: [float("nan")] * n for c in make_smc().columns})
    null_smc = pl.DataFrame(
        {c: [None] * n for c in make_smc().columns}, schema={c: pl.Float64 for c in make_smc().columns}
    )
    for smc in (nan_smc, null_smc):
        fig = candlestick_figure(make_bars(CLOSES), smc)
        for gid in ("fvg", "ob", "bos", "choch", "swing_high", "swing_low"):
            assert by_gid(fig, gid) == []
        assert png_size(candlestick_chart(make_bars(CLOSES), smc))[0] == 1200


def test_flag_with_nan_edges_is_skipped_but_others_drawn() -> None:
    smc = make_smc().with_columns(
        pl.when(pl.int_range(pl.len()) == 3).then(None).otherwise(pl.col("fvg_top")).alias("fvg_top")
    )
    assert len(by_gid(candlestick_figure(make_bars(CLOSES), smc), "fvg")) == 1


def test_smc_with_time_column_is_joined_on_time() -> None:
    bars = make_bars(CLOSES)
    smc = make_smc().with_columns(bars["time"]).slice(2)  # analysis that starts later than the bars
    fig = candlestick_figure(bars, smc)
    fvg = sorted(by_gid(fig, "fvg"), key=lambda r: r.get_x())
    assert fvg[0].get_x() == pytest.approx(2.5)  # still bar 3 of the chart


def test_fvg_signal_alias_and_boolean_swings() -> None:
    smc = make_smc().rename({"fvg": "fvg_signal"}).with_columns(pl.col("swing_high").cast(pl.Boolean))
    fig = candlestick_figure(make_bars(CLOSES), smc)
    assert len(by_gid(fig, "fvg")) == 2 and len(by_gid(fig, "swing_high")) == 1


def test_bad_input_names_the_problem() -> None:
    bars = make_bars(CLOSES)
    with pytest.raises(ValueError, match="smc frame has 5 rows"):
        candlestick_chart(bars, make_smc(5))
    with pytest.raises(ValueError, match="regimes has 3 values"):
        candlestick_chart(bars, regimes=pl.Series([0, 1, 2]))
    with pytest.raises(ValueError, match="lacks column"):
        candlestick_chart(bars.drop("close"))
    with pytest.raises(ValueError, match="side must be"):
        ChartPosition("LONG", 1.0)
    with pytest.raises(ValueError, match="finite price"):
        ChartPosition("BUY", float("nan"))


def test_position_side_accepts_enum_like_values() -> None:
    from trading.domain import Side

    assert ChartPosition(Side.SELL, 1.0).side == "SELL"
    assert ChartPosition("buy", 1.0).side == "BUY"


def test_naive_times_are_taken_as_utc() -> None:
    bars = make_bars(CLOSES).with_columns(pl.col("time").dt.replace_time_zone(None))
    ticks = [t.get_text() for t in candlestick_figure(bars).axes[0].get_xticklabels()]
    assert ticks[0] == "07:00\n24 Nov"


def test_charts_render_in_parallel_threads() -> None:
    bars, smc = make_bars(CLOSES), make_smc()
    with ThreadPoolExecutor(max_workers=4) as pool:
        pngs = list(pool.map(lambda _: candlestick_chart(bars, smc, title="x"), range(6)))
    assert all(png_size(p) == (1200, 700) for p in pngs)
    assert len(set(pngs)) == 1  # same input, same picture: no shared state between threads


def test_real_bars_tail_renders(shared_bars: pl.DataFrame) -> None:
    bars = shared_bars.tail(200)
    png = candlestick_chart(bars, title="XAUUSD M15")
    assert png_size(png) == (1200, 700)


# ---------------------------------------------------------------- equity chart


def _equity_series(n: int = 50) -> tuple[list[datetime], np.ndarray]:
    times = [T0 + timedelta(hours=i) for i in range(n)]
    eq = 1000 + np.cumsum(np.where(np.arange(n) % 7 < 4, 5.0, -6.0))
    return times, eq


def test_equity_png_and_drawdown_shading() -> None:
    times, eq = _equity_series()
    png = equity_chart(times, eq, balance=np.round(eq, -1), title="Equity")
    assert png_size(png) == (1200, 700)
    fig = equity_figure(times, eq, balance=np.round(eq, -1))
    assert len(by_gid(fig, "drawdown")) == 1 and len(by_gid(fig, "drawdown_pct")) == 1
    assert len(by_gid(fig, "balance")) == 1 and len(by_gid(fig, "equity")) == 1


def test_equity_accepts_polars_series_with_time_zone() -> None:
    times, eq = _equity_series()
    series = pl.Series("t", times, dtype=pl.Datetime("us", "UTC")).dt.convert_time_zone("Asia/Jakarta")
    fig = equity_figure(series, pl.Series(eq))
    (line,) = by_gid(fig, "equity")
    assert len(line.get_xdata()) == 50


def test_equity_empty_and_all_nan_give_no_data() -> None:
    assert png_size(equity_chart([], [])) == (600, 300)
    assert "no data" in texts(equity_figure([T0, T0], [float("nan"), None]))


def test_equity_single_point_and_nan_values_do_not_raise() -> None:
    assert png_size(equity_chart([T0], [1000.0]))[0] == 1200
    times, eq = _equity_series(10)
    eq[3] = np.nan
    fig = equity_figure(times, eq)
    (line,) = by_gid(fig, "equity")
    assert len(line.get_xdata()) == 9


def test_equity_bad_input_names_the_problem() -> None:
    with pytest.raises(ValueError, match="equity has 2 values but times has 1"):
        equity_chart([T0], [1.0, 2.0])
    with pytest.raises(ValueError, match="balance has 1 values"):
        equity_chart([T0, T0], [1.0, 2.0], balance=[1.0])
    with pytest.raises(ValueError, match="must be datetimes"):
        equity_chart(["2026-01-01"], [1.0])


# ---------------------------------------------------------------- daily P/L bars


def test_daily_pnl_bars_and_running_total() -> None:
    days = [date(2026, 11, d) for d in (2, 3, 4, 5)]
    fig = daily_pnl_figure(days, [12.5, -4.0, None, 7.5], title="P/L")
    bars = by_gid(fig, "pnl_bar")
    assert [r.get_height() for r in bars] == [12.5, -4.0, 7.5]  # the None day is skipped
    (line,) = by_gid(fig, "cumulative")
    assert list(line.get_ydata()) == [12.5, 8.5, 16.0]
    assert "total +$16.00 · 2/3 green days" in texts(fig)
    assert png_size(daily_pnl_chart(days, [1.0, 2.0, 3.0, 4.0])) == (1200, 700)


def test_daily_pnl_empty_and_mismatch() -> None:
    assert png_size(daily_pnl_chart([], [])) == (600, 300)
    with pytest.raises(ValueError, match="pnl has 1 values but days has 2"):
        daily_pnl_chart([date(2026, 1, 1), date(2026, 1, 2)], [1.0])


def test_regimes_may_be_a_plain_list() -> None:
    fig = candlestick_figure(make_bars(CLOSES), regimes=[1] * 6 + [None] * 6)
    assert len(by_gid(fig, "regime")) == 1
    assert "regime unknown" in texts(fig)


# ---------------------------------------------------------------------------------------- legend, trades, tags


def _legend_labels(fig: Figure) -> list[str]:
    (legend,) = by_gid(fig, "legend")
    return [t.get_text() for t in legend.get_texts()]


def test_legend_names_the_colours_that_are_drawn() -> None:
    regimes = pl.Series([0] * 4 + [2] * 4 + [None, 1, 1, -1])
    fig = candlestick_figure(make_bars(CLOSES), make_smc(), regimes=regimes)
    labels = _legend_labels(fig)
    assert {"bull FVG", "bear FVG", "bull OB", "bear OB"} <= set(labels)
    assert {"low vol", "medium vol", "high vol"} <= set(labels)
    assert not by_gid(candlestick_figure(make_bars(CLOSES)), "legend")  # nothing coloured, no legend


def test_closed_trades_are_marked_win_and_loss() -> None:
    from charts.candles import ChartTrade

    bars = make_bars(CLOSES)
    win = ChartTrade("BUY", T0 + timedelta(minutes=15), 101.0, T0 + timedelta(minutes=60), 105.0, 8.0)
    loss = ChartTrade("SELL", T0 + timedelta(minutes=90), 103.0, T0 + timedelta(minutes=105), 101.5, -3.0)
    gone = ChartTrade(
        "BUY", T0 - timedelta(days=2), 90.0, T0 - timedelta(days=1), 91.0, 1.0
    )  # before the chart
    fig = candlestick_figure(bars, trades=[win, loss, gone])
    entries, exits = by_gid(fig, "closed_entry"), by_gid(fig, "closed_exit")
    assert len(entries) == 2 and len(exits) == 2
    assert [tuple(e.get_offsets()[0]) for e in exits] == [(4.0, 105.0), (7.0, 101.5)]
    assert {"closed win", "closed loss"} <= set(_legend_labels(fig))


def test_two_positions_with_close_levels_get_tags_that_do_not_overlap() -> None:
    from charts.trade_marks import spread_labels

    placed = spread_labels([104.0, 104.1, 110.0, 104.05], gap=1.0)
    assert placed[0] == 104.0 and placed[2] == 110.0
    ordered = sorted(placed)
    assert all(b - a >= 1.0 - 1e-9 for a, b in itertools.pairwise(ordered))
    pos = [ChartPosition("BUY", 104.0, 101.0, 110.0, "#7"), ChartPosition("BUY", 104.1, 101.05, 110.1, "#8")]
    fig = candlestick_figure(make_bars(CLOSES), positions=pos)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    tags = [t for t in texts_artists(fig) if t.get_text().startswith(("#", "SL", "TP"))]
    boxes = [t.get_window_extent(renderer) for t in tags]
    assert len(boxes) == 6
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])


def texts_artists(fig: Figure) -> list:
    from matplotlib.text import Text

    return list(fig.findobj(Text))


def test_regime_label_follows_the_decision_regime_not_the_last_shade() -> None:
    regimes = pl.Series([0] * 12)
    fig = candlestick_figure(make_bars(CLOSES), regimes=regimes, regime_now="unknown")
    assert "regime unknown" in texts(fig) and "regime: low" not in texts(fig)


def test_equity_starts_at_the_starting_balance() -> None:
    times, eq = _equity_series()
    eq = eq - 40  # the first sample came after a losing trade
    fig = equity_figure(times, eq, start=(T0 - timedelta(hours=3), 1000.0))
    (line,) = by_gid(fig, "equity")
    ys = line.get_ydata()
    assert ys[0] == 1000.0 and len(ys) == len(eq) + 1
    assert by_gid(fig, "start")
    assert any(
        "max drawdown -3.8%" in t for t in texts(fig)
    )  # from the 1000 start, not from the first sample
    with pytest.raises(ValueError, match="start balance"):
        equity_figure(times, eq, start=(T0, float("nan")))


def test_equity_shades_loss_limit_halts_with_their_label() -> None:
    times, eq = _equity_series()
    halts = [(times[10], times[20], "daily limit"), (times[40], None, "total limit")]
    fig = equity_figure(times, eq, halts=halts)
    assert len(by_gid(fig, "halt")) == 4  # each halt on both panels
    assert {"daily limit", "total limit"} <= set(texts(fig))
    assert png_size(equity_chart(times, eq, halts=halts)) == (1200, 700)
    assert not by_gid(equity_figure(times, eq), "halt")


def test_trials_chart_marks_best_so_far_chosen_and_defaults() -> None:
    from charts.optimize import trials_chart, trials_figure

    fig = trials_figure([0, 1, 2, 3], [0.5, -1.0, 1.5, float("nan")], chosen=2, reference=0.2)
    (best,) = by_gid(fig, "best")
    assert list(best.get_ydata()) == [0.5, 0.5, 1.5]
    assert len(by_gid(fig, "chosen")) == 1 and len(by_gid(fig, "reference")) == 1
    assert png_size(trials_chart([0, 1], [1.0, 2.0])) == (1200, 700)
    assert "no trials" in texts(trials_figure([], []))
    with pytest.raises(ValueError, match="scores"):
        trials_figure([0, 1], [1.0])


# ---------------------------------------------------------------------------------------- issue 23: legends, labels, regime


def test_equity_legend_names_every_line_and_shade() -> None:
    times, eq = _equity_series()
    halts = [(times[10], times[20], "daily limit")]
    fig = equity_figure(
        times, eq, balance=np.round(eq, -1), start=(T0 - timedelta(hours=1), 1000.0), halts=halts
    )
    labels = _legend_labels(fig)
    assert labels[:3] == ["equity", "drawdown from peak", "balance"]
    assert "start 1,000.00" in labels and "halted by a loss limit" in labels
    # without balance, start or halts the legend still names the equity and the red drawdown area
    assert _legend_labels(equity_figure(times, eq)) == ["equity", "drawdown from peak"]


def test_equity_date_axis_says_the_span_once_not_the_last_ticks_month() -> None:
    start = datetime(2026, 11, 17, 10, tzinfo=UTC)
    times = [start + timedelta(hours=6 * i) for i in range(4 * 21)]  # 17 Nov -> 8 Dec, mostly November
    fig = equity_figure(times, 1000 + np.arange(len(times), dtype=float))
    fig.canvas.draw()
    ax_dd = fig.axes[1]
    assert ax_dd.get_xlabel() == "17 Nov – 8 Dec 2026 (WIB)"
    assert ax_dd.xaxis.get_offset_text().get_text() == ""  # no "2026-Dec" in the corner
    ticks = [t.get_text() for t in ax_dd.get_xticklabels() if t.get_text()]
    assert ticks and all(t.split()[1] in ("Nov", "Dec") and t.split()[0].isdigit() for t in ticks)


def test_tick_and_span_labels() -> None:
    from charts.timeaxis import span_label, tick_label

    t = datetime(2026, 12, 7, 14, 0)
    assert (
        tick_label(t, 1.0) == "14:00\n7 Dec"
        and tick_label(t, 20) == "7 Dec"
        and tick_label(t, 400) == "Dec 2026"
    )
    assert span_label(datetime(2025, 12, 30), datetime(2026, 1, 2), "WIB") == "30 Dec 2025 – 2 Jan 2026 (WIB)"
    assert span_label(t, t, "WIB") == "7 Dec 2026 (WIB)"


def test_repeated_halt_labels_are_said_once_and_never_overlap() -> None:
    times, eq = _equity_series(200)
    halts = [(times[i], times[i + 3], "halted: daily-loss limit") for i in range(10, 180, 8)]
    halts.append((times[185], None, "halted: total-loss limit"))
    fig = equity_figure(times, eq, halts=halts)
    labels = by_gid(fig, "halt_label")
    assert sorted(t.get_text() for t in labels) == ["halted: daily-loss limit", "halted: total-loss limit"]
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    boxes = [t.get_window_extent(renderer) for t in labels]
    frame = fig.axes[0].get_window_extent(renderer)
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])
    assert all(b.x1 <= frame.x1 + 1 for b in boxes)  # the last one is pulled back inside


def test_unknown_regime_draws_no_shade_no_regime_legend_and_says_so() -> None:
    fig = candlestick_figure(make_bars(CLOSES), make_smc(), regimes=[-1] * 12, regime_now="unknown")
    assert not by_gid(fig, "regime")
    assert not any("vol" in label for label in _legend_labels(fig))
    (label,) = by_gid(fig, "regime_label")
    assert label.get_text() == "regime unknown"
    only_low = candlestick_figure(make_bars(CLOSES), regimes=[0] * 6 + [None] * 6, regime_now="low")
    assert [x for x in _legend_labels(only_low) if "vol" in x] == ["low vol"]  # only the regimes shaded
    assert by_gid(only_low, "regime_label")[0].get_text() == "regime: low"


def test_chart_inputs_without_a_model_give_no_regimes() -> None:
    from types import SimpleNamespace

    from handlers.charts import chart_inputs

    bars = make_bars(CLOSES)
    nan = np.full((12, 3), np.nan)
    frame = SimpleNamespace(bars=bars, structure=None, regime_probs=nan)
    assert chart_inputs(frame, 12)[2] is None  # argmax of NaN rows would have said "low" on every bar
    probs = nan.copy()
    probs[6:] = [0.1, 0.7, 0.2]
    _, _, regimes = chart_inputs(SimpleNamespace(bars=bars, structure=None, regime_probs=probs), 12)
    assert regimes is not None and regimes.to_list() == [-1] * 6 + [1] * 6


def _crowded_smc() -> pl.DataFrame:
    """Breaks on neighbouring bars, bullish and bearish, near the top-left corner and the last bars."""
    smc = make_smc()
    bos = [0] * 12
    choch = [0] * 12
    bos[0], bos[1], choch[2], bos[10], choch[11] = 1, 1, 1, -1, -1
    return smc.with_columns(pl.Series("bos", bos), pl.Series("choch", choch))


def test_break_labels_regime_label_and_tags_never_overlap_and_stay_inside() -> None:
    regimes = pl.Series([2] * 12)
    pos = [ChartPosition("BUY", 106.5, 100.0, 107.0, "#7")]
    bars = make_bars([107, 107.2, 107.1, 104, 105, 106, 103, 101, 102, 104, 105, 107])
    fig = candlestick_figure(
        bars, _crowded_smc(), pos, regimes, title="XAUUSD M15 · 12 bars", regime_now="high"
    )
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    ax = fig.axes[0]
    breaks = [t for t in ax.texts if t.get_gid() in ("bos", "choch")]
    assert len(breaks) == 5
    others = [t for t in fig.findobj(lambda a: a.get_gid() in ("regime_label", "position_tag"))]
    boxes = [t.get_window_extent(renderer) for t in breaks + others]
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])
    frame = ax.get_window_extent(renderer)
    assert all(
        frame.y0 <= b.y0 and b.y1 <= frame.y1 and frame.x0 <= b.x0 and b.x1 <= frame.x1
        for b in boxes[: len(breaks)]
    )  # bar 0's label does not hang over the left edge
    (regime,) = by_gid(fig, "regime_label")
    assert regime.get_window_extent(renderer).y0 >= frame.y1  # on the title line, outside the candles


def test_stack_rows_and_push_clear() -> None:
    from charts.layout import Box, push_clear, stack_rows

    assert stack_rows([0, 5, 12, 30], [10, 20, 25, 40], gap=1) == [0, 1, 0, 0]
    with pytest.raises(ValueError):
        stack_rows([0], [])
    first, second = Box(0, 10, 0, 5), Box(5, 15, 1, 6)
    assert push_clear([first, second], [1, 1], gap=0) == [0.0, 4.0]
    assert push_clear([first, second], [1, -1], gap=0) == [0.0, -6.0]
    wall = Box(0, 20, 0, 100)
    assert push_clear([first], [1], [wall], gap=2) == [102.0]


def test_pnl_distribution_splits_wins_and_losses_at_zero() -> None:
    from charts.distribution import pnl_distribution_chart, pnl_distribution_figure, zero_edged_bins

    profits = [-12.0, -8.5, -3.0, -2.5, 0.5, 4.0, 9.0, 15.5, None, float("nan")]
    edges = zero_edged_bins(np.array([p for p in profits if p is not None and np.isfinite(p)]))
    assert np.isclose(edges, 0.0).any() and edges[0] <= -12.0 and edges[-1] > 15.5
    fig = pnl_distribution_figure(profits, title="P/L per trade")
    bins = by_gid(fig, "pnl_bin")
    assert sum(r.get_height() for r in bins) == 8
    from matplotlib.colors import to_rgba

    from charts.style import DARK

    for r in bins:  # a bin right of zero is a win (green), left of it a loss (red): none straddles zero
        assert r.get_x() >= 0 or r.get_x() + r.get_width() <= 1e-9
        assert r.get_facecolor() == to_rgba(DARK.up if r.get_x() >= 0 else DARK.down)
    labels = _legend_labels(fig)
    assert labels == ["wins (4)", "losses (4)", r"average trade +\$0.38"]
    assert any("8 trades · win rate 50%" in t for t in texts(fig))
    assert png_size(pnl_distribution_chart(profits)) == (1200, 700)
    assert "no closed trades" in texts(pnl_distribution_figure([]))


def test_a_break_on_the_first_bar_keeps_its_label_inside_the_chart() -> None:
    closes = list(100 + np.sin(np.arange(150) / 5) * 3)
    bars = make_bars(closes)
    smc = pl.DataFrame({"bos": [0] * 150, "choch": [-1] + [0] * 148 + [1]})
    fig = candlestick_figure(bars, smc)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    frame = fig.axes[0].get_window_extent(renderer)
    for label in by_gid(fig, "choch"):
        box = label.get_window_extent(renderer)
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1
