"""Intrabar modes against a synthetic tick truth (1-second ticks aggregated to M1 and M15), and the
loaders' refusals: a file that misses days, rows out of order or duplicated, another clock."""

from __future__ import annotations

import polars as pl
import pytest

from trading.backtest import BacktestConfig, run_backtest
from trading.intrabar import (
    GeneratedPath,
    IntrabarDataError,
    M1Detail,
    RealTicks,
    as_server_ticks,
    load_detail,
    load_ticks,
    score_paths,
    synthetic_truth,
)
from trading.timezones import ServerClock

CLOCK = ServerClock.parse("NY+7")


@pytest.fixture(scope="module")
def truth():
    return synthetic_truth(400, seed=11)


def to_server(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(pl.col("time").map_elements(CLOCK.from_utc, return_dtype=pl.Datetime("us")))


def test_finer_modes_are_closer_to_the_truth_than_coarser_ones(truth) -> None:
    scores = {
        s.mode: s
        for s in score_paths(
            truth,
            {
                "generated 4": GeneratedPath(truth.m15, 4),
                "generated 60": GeneratedPath(truth.m15, 60),
                "M1 detail": M1Detail(truth.m15, truth.m1),
            },
        )
    }
    g4, g60, m1 = scores["generated 4"], scores["generated 60"], scores["M1 detail"]
    assert m1.agreement > g60.agreement >= g4.agreement - 1e-9
    assert m1.timing_error_min < g60.timing_error_min < g4.timing_error_min
    assert m1.agreement > 0.95  # measured, not assumed: M1 detail agrees on nearly every bracket


def test_the_direction_order_is_the_less_wrong_generated_path(truth) -> None:
    scores = {
        s.mode: s
        for s in score_paths(
            truth,
            {
                "nearer": GeneratedPath(truth.m15, 60, order="nearer"),
                "direction": GeneratedPath(truth.m15, 60, order="direction"),
            },
        )
    }
    assert scores["direction"].agreement > scores["nearer"].agreement


def test_paths_stay_inside_their_bars_and_reproduce_them(truth) -> None:
    for path in (
        GeneratedPath(truth.m15, 60),
        M1Detail(truth.m15, truth.m1),
        RealTicks(truth.m15, truth.ticks),
    ):
        for i in (0, 7, 199):
            times, bid, ask = path.ticks(i)
            row = truth.m15.row(i, named=True)
            start = int(row["time"].timestamp() * 1000)
            assert times[0] >= start and times[-1] < start + 15 * 60_000
            assert (times[1:] > times[:-1]).all()
            assert bid.max() == pytest.approx(row["high"]) and bid.min() == pytest.approx(row["low"])
            assert bid[0] == pytest.approx(row["open"]) and bid[-1] == pytest.approx(row["close"])
            assert (ask >= bid).all()


def test_a_backtest_names_its_mode_and_detail_share(truth) -> None:
    bars = truth.m15
    m1 = truth.m1.filter(pl.col("time") < bars["time"][300])  # the last 100 bars have no detail
    config = BacktestConfig(warmup_bars=100)
    result = run_backtest(bars, config, path=lambda frame: M1Detail(frame, m1))
    assert result.intrabar_mode == "M1 detail"
    assert result.detail_share == pytest.approx(300 / 400)
    plain = run_backtest(bars, config)
    assert plain.intrabar_mode == "generated" and plain.detail_share == 0.0


# ------------------------------------------------------------------------------------------ loaders


def test_loaders_accept_files_in_the_bars_server_time(tmp_path, truth) -> None:
    detail = tmp_path / "m1.parquet"
    to_server(truth.m1).write_parquet(detail)
    loaded = load_detail(detail, truth.m15, CLOCK)
    assert loaded["time"].to_list() == truth.m1["time"].to_list()
    ticks = tmp_path / "ticks.csv"
    as_server_ticks(truth.ticks.head(60_000), CLOCK).write_csv(ticks)
    got = load_ticks(ticks, truth.m15.head(60), CLOCK)
    assert got["time_msc"].to_list() == truth.ticks.head(60_000)["time_msc"].to_list()


def test_a_detail_file_in_another_time_zone_is_refused_naming_the_offset(tmp_path, truth) -> None:
    detail = tmp_path / "m1.parquet"
    to_server(truth.m1).with_columns(pl.col("time").dt.offset_by("-3h")).write_parquet(detail)
    with pytest.raises(IntrabarDataError, match=r"-3 h off the bars"):
        load_detail(detail, truth.m15, CLOCK)


def test_a_file_that_misses_days_says_which(tmp_path, truth) -> None:
    detail = tmp_path / "m1.csv"
    day = truth.m15["time"][200].date()
    to_server(truth.m1.filter(pl.col("time").dt.date() != day)).write_csv(detail)
    with pytest.raises(IntrabarDataError, match=f"does not cover the bars on {day.isoformat()}"):
        load_detail(detail, truth.m15, CLOCK)


def test_out_of_order_and_duplicate_rows_are_refused(tmp_path, truth) -> None:
    ticks = as_server_ticks(truth.ticks.head(5_000), CLOCK)
    swapped = pl.concat([ticks.slice(0, 100), ticks.slice(101, 1), ticks.slice(100, 1), ticks.slice(102)])
    dup = pl.concat([ticks.slice(0, 50), ticks.slice(49, 1), ticks.slice(50)])
    for name, frame, message in (
        ("swap.csv", swapped, "out of time order"),
        ("dup.csv", dup, "duplicate row"),
    ):
        target = tmp_path / name
        frame.write_csv(target)
        with pytest.raises(IntrabarDataError, match=message):
            load_ticks(target, truth.m15.head(5), CLOCK)


def test_the_cli_refuses_a_bad_detail_file_with_one_line(tmp_path, truth, capsys) -> None:
    import main

    bars = tmp_path / "bars.parquet"
    to_server(truth.m15).write_parquet(bars)
    detail = tmp_path / "m1.parquet"
    to_server(truth.m1).with_columns(pl.col("time").dt.offset_by("2h")).write_parquet(detail)
    out = tmp_path / "out.json"
    code = main.main(
        ["backtest", "--data", str(bars), "--detail", str(detail), "--no-baselines", "--json", str(out)]
    )
    assert code == 2
    assert not out.exists()
    printed = capsys.readouterr()
    assert "+2 h off the bars" in printed.out + printed.err
