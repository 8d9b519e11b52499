"""The seeded XAUUSD-like generator: determinism, schema, market-hours gaps and plausible statistics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from trading.bars import BAR_SCHEMA, validate_bars
from trading.sessions import is_market_open, market_open_mask, session_names
from trading.synthetic import CHUNK_BARS, DEFAULT_START, SyntheticMarket, generate_bars
from trading.timezones import NEW_YORK


@pytest.fixture(scope="module")
def big() -> pl.DataFrame:
    return generate_bars(100_000, seed=3, include_regime=True)


def range_bp() -> pl.Expr:
    return ((pl.col("high") - pl.col("low")) / pl.col("close") * 1e4).alias("range_bp")


class TestDeterminism:
    def test_same_seed_same_frame(self):
        assert generate_bars(3000, seed=11).equals(generate_bars(3000, seed=11))

    def test_other_seed_other_frame(self):
        a, b = generate_bars(500, seed=1), generate_bars(500, seed=2)
        assert a["time"].equals(b["time"])  # the calendar does not depend on the seed
        assert not a["close"].equals(b["close"])

    def test_shorter_run_is_a_prefix_across_chunks(self):
        long = generate_bars(CHUNK_BARS + 500, seed=5)
        assert generate_bars(100, seed=5).equals(long.head(100))
        assert generate_bars(CHUNK_BARS + 10, seed=5).equals(long.head(CHUNK_BARS + 10))


class TestSchema:
    def test_bar_schema_and_validation(self, big):
        bars = big.drop("regime")
        assert dict(bars.schema) == BAR_SCHEMA
        assert validate_bars(bars).equals(bars)

    def test_regime_column_only_on_request(self, big):
        assert generate_bars(10).columns == list(BAR_SCHEMA)
        assert big.columns[-1] == "regime" and set(big["regime"].unique()) == {0, 1, 2}

    def test_zero_bars(self):
        empty = generate_bars(0)
        assert empty.height == 0 and dict(empty.schema) == BAR_SCHEMA

    def test_100k_size(self, big):
        assert big.height == 100_000
        assert big["time"].is_sorted() and big["time"].n_unique() == 100_000

    def test_prices_on_the_tick_and_in_the_band(self, big):
        for c in ("open", "high", "low", "close"):
            cents = big[c].to_numpy() * 100
            assert np.abs(cents - np.round(cents)).max() < 1e-6, c
            assert big[c].min() > 2000 and big[c].max() < 4500
        assert (big["real_volume"] == 0).all()
        assert big["tick_volume"].min() >= 1


class TestCalendar:
    def test_default_start_is_a_weekly_open(self):
        bars = generate_bars(3)
        assert bars["time"][0] == DEFAULT_START
        assert DEFAULT_START.astimezone(NEW_YORK).strftime("%a %H:%M") == "Sun 18:00"
        assert bars["open"][0] == 3300.0

    def test_start_in_the_weekend_waits_for_the_open(self):
        bars = generate_bars(2, start=datetime(2026, 11, 28, 12, 7, tzinfo=UTC), start_price=2500.0)
        assert bars["time"].to_list() == [
            datetime(2026, 11, 29, 23, 0, tzinfo=UTC),
            datetime(2026, 11, 29, 23, 15, tzinfo=UTC),
        ]
        assert bars["open"][0] == 2500.0

    def test_unaligned_start_snaps_up_to_m15(self):
        bars = generate_bars(1, start=datetime(2026, 11, 24, 10, 1, tzinfo=UTC))
        assert bars["time"][0] == datetime(2026, 11, 24, 10, 15, tzinfo=UTC)

    def test_no_bar_in_weekend_or_daily_break(self, big):
        assert market_open_mask(big["time"]).all()
        assert all(is_market_open(t) for t in big["time"].gather_every(97).to_list())
        # ...and every open M15 slot is present
        times = big["time"]
        grid = pl.datetime_range(times[0], times[-1], "15m", time_zone="UTC", eager=True)
        assert int(market_open_mask(grid).sum()) == big.height

    def test_gaps_are_only_the_break_and_the_weekend(self, big):
        gaps = set(big["time"].diff().drop_nulls().unique().to_list())
        m15, daily = timedelta(minutes=15), timedelta(hours=1, minutes=15)
        weekend = {timedelta(hours=h, minutes=15) for h in (48, 49, 50)}  # 50/48 h over a DST weekend
        assert {m15, daily, timedelta(hours=49, minutes=15)} <= gaps <= {m15, daily, *weekend}

    def test_daily_break_stays_17_new_york_over_dst(self):
        bars = generate_bars(3000, start=datetime(2026, 2, 22, tzinfo=UTC))  # spans 8 March 2026
        t = bars["time"]
        after_gap = t.filter(t.diff() > timedelta(minutes=15))
        ny_hours = set(after_gap.dt.convert_time_zone(NEW_YORK.key).dt.strftime("%H:%M").to_list())
        assert ny_hours == {"18:00"}
        utc_hours = set(after_gap.dt.strftime("%H:%M").to_list())
        assert utc_hours == {"22:00", "23:00"}  # moves in UTC with US DST

    def test_open_is_previous_close_inside_a_session(self, big):
        contiguous = big.with_columns(prev_close=pl.col("close").shift(), step=pl.col("time").diff()).filter(
            pl.col("step") == timedelta(minutes=15)
        )
        assert (contiguous["open"] == contiguous["prev_close"]).all()

    def test_reopen_has_a_gap(self, big):
        reopen = big.with_columns(
            gap=(pl.col("open") - pl.col("close").shift()).abs(), step=pl.col("time").diff()
        )
        gaps = reopen.filter(pl.col("step") > timedelta(minutes=15))["gap"]
        assert (gaps > 0).mean() > 0.9


class TestStatistics:
    def test_session_volatility_ordering(self, big):
        by = (
            big.with_columns(range_bp(), session=pl.Series(session_names(big["time"])))
            .group_by("session")
            .agg(pl.col("range_bp").median())
        )
        med = dict(zip(by["session"], by["range_bp"], strict=True))
        assert med["Sydney"] < med["Tokyo"] < med["Golden Time"]
        assert med["Sydney"] < med["London"] < med["Golden Time"]
        assert med["Sydney"] > 5 and med["Golden Time"] < 30  # basis points, like 2025 gold

    def test_regimes_order_volatility_and_persist(self, big):
        by = big.with_columns(range_bp()).group_by("regime").agg(pl.col("range_bp").median()).sort("regime")
        low, medium, high = by["range_bp"].to_list()
        assert low < medium < high and high > 2 * low
        switches = int((big["regime"].diff().drop_nulls() != 0).sum())
        assert big.height / max(switches, 1) > 50  # spells last days, not bars

    def test_spread_points(self, big):
        spread = big["spread"]
        assert spread.min() >= 12 and spread.max() <= 80
        assert 14 <= spread.median() <= 24
        ny_hour = big["time"].dt.convert_time_zone(NEW_YORK.key).dt.hour()
        open_hour = big.filter(ny_hour == 18)["spread"].mean()
        assert open_hour > spread.median() + 8  # wider at the daily open (rollover)
        by = big.group_by("regime").agg(pl.col("spread").median()).sort("regime")["spread"].to_list()
        assert by[2] > by[0]

    def test_tick_volume_follows_range(self, big):
        corr = big.with_columns(range_bp()).select(pl.corr("range_bp", "tick_volume")).item()
        assert corr > 0.6

    def test_returns_have_fat_tails(self, big):
        r = np.diff(np.log(big["close"].to_numpy()))
        z = (r - r.mean()) / r.std()
        assert (z**4).mean() > 4  # excess kurtosis, as real M15 gold has


class TestSyntheticMarket:
    def test_feed_matches_generate_bars_across_chunks(self):
        market = SyntheticMarket(seed=9)
        first = market.next_bar()
        assert first.height == 1
        rest = market.take(CHUNK_BARS + 20)
        assert pl.concat([first, rest]).equals(generate_bars(CHUNK_BARS + 21, seed=9))
        assert market.bars_emitted == CHUNK_BARS + 21
        assert market.last_close == rest["close"][-1]
        assert market.last_time == rest["time"][-1]

    def test_next_open_time_and_iteration(self):
        market = SyntheticMarket(seed=4, start=datetime(2026, 11, 27, 21, 30, tzinfo=UTC))
        assert market.last_time is None and market.last_close is None
        assert market.next_open_time() == datetime(2026, 11, 27, 21, 30, tzinfo=UTC)
        it = iter(market)
        times = [next(it)["time"][0] for _ in range(3)]
        assert times[1] == datetime(2026, 11, 27, 21, 45, tzinfo=UTC)
        assert times[2] == datetime(2026, 11, 29, 23, 0, tzinfo=UTC)  # Friday close -> Sunday open
        assert market.take(0).height == 0


class TestBadInput:
    def test_naive_start(self):
        with pytest.raises(ValueError, match="aware"):
            generate_bars(5, start=datetime(2026, 1, 5))

    def test_start_price_outside_band(self):
        with pytest.raises(ValueError, match="inside the price band"):
            generate_bars(5, start_price=5000.0)
        with pytest.raises(ValueError, match="price band"):
            generate_bars(5, price_band=(3000.0, 2000.0))

    def test_negative_or_non_int_n(self):
        with pytest.raises(ValueError, match="negative"):
            generate_bars(-1)
        with pytest.raises(TypeError, match="int"):
            generate_bars(10.0)  # type: ignore[arg-type]

    def test_bad_volatility_and_regime(self):
        with pytest.raises(ValueError, match="volatility"):
            generate_bars(5, volatility=0.0)
        with pytest.raises(ValueError, match="start_regime"):
            generate_bars(5, start_regime=3)
