"""Stop and take-profit fills follow MetaTrader 5's tester on every path: at the order's price when a
walked path (a generated bar, an M1 minute) crossed it between two ticks, at the tick's price where the
price gapped through it (a bar or minute opened beyond it) or a real tick jumped it; slippage moves stops
only. Pinned for the paper broker on each kind of feed, for the backtest and for the paced replay (the
`run --replay` loop)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from trading.backtest import BacktestConfig, paced_replay, run_backtest
from trading.bars import BAR_SCHEMA, validate_bars
from trading.broker.feeds import ReplayFeed
from trading.broker.fills import FillModel, LevelFill, crossed_inside, describe_slippage, slippage_summary
from trading.broker.paper import PaperBroker
from trading.domain import DealReason, Side, Tick
from trading.intrabar import GeneratedPath, M1Detail, RealTicks, resample_bars, synthetic_truth

T0 = datetime(2024, 1, 2, 8, 0, tzinfo=UTC)
M = timedelta(minutes=1)


def bars(*ohlc: tuple[float, float, float, float], minutes: int = 15, spread: int = 20) -> pl.DataFrame:
    return validate_bars(
        pl.DataFrame(
            {
                "time": [T0 + i * minutes * M for i in range(len(ohlc))],
                "open": [b[0] for b in ohlc],
                "high": [b[1] for b in ohlc],
                "low": [b[2] for b in ohlc],
                "close": [b[3] for b in ohlc],
                "tick_volume": [10] * len(ohlc),
                "spread": [spread] * len(ohlc),
                "real_volume": [0] * len(ohlc),
            },
            schema=BAR_SCHEMA,
        )
    )


async def walk(
    feed: ReplayFeed, side: Side, sl: float, tp: float, slippage: int = 0
) -> tuple[PaperBroker, object]:
    """Open at the feed's first tick, run the rest; the one SL/TP deal."""
    broker = PaperBroker(feed=feed, slippage_points=slippage)
    await broker.connect()
    feed.advance(1)
    await broker.tick()
    await broker.open_market(side, 0.10, sl, tp)
    await broker.run()
    (deal,) = [d for d in await broker.deals_since(T0) if d.reason in (DealReason.SL, DealReason.TP)]
    return broker, deal


# ------------------------------------------------------------------------------------ the fill model


def test_the_fill_model_prices_a_crossed_level_at_the_level_and_a_gap_at_the_tick() -> None:
    fills = FillModel(slippage_points=5)
    assert (
        fills.level_fill(Side.BUY, DealReason.SL, 1999.50, 1998.00, crossed=True) == 1999.45
    )  # level, slipped
    assert (
        fills.level_fill(Side.BUY, DealReason.SL, 1999.50, 1998.00, crossed=False) == 1997.95
    )  # the gap, slipped
    assert fills.level_fill(Side.SELL, DealReason.SL, 2001.00, 2003.00, crossed=False) == 2003.05
    # a take profit is a limit: at its level, or better after a gap, never slipped
    assert fills.level_fill(Side.BUY, DealReason.TP, 2005.00, 2007.00, crossed=True) == 2005.00
    assert fills.level_fill(Side.BUY, DealReason.TP, 2005.00, 2007.00, crossed=False) == 2007.00
    assert fills.level_fill(Side.SELL, DealReason.TP, 1995.00, 1994.00, crossed=False) == 1994.00


def test_a_level_counts_as_crossed_only_from_a_walked_tick_on_the_safe_side() -> None:
    before, after = Tick(T0, 2000.0, 2000.2), Tick(T0 + M, 1999.0, 1999.2, walked=True)
    assert crossed_inside(after, before, Side.BUY, DealReason.SL, 1999.5)
    assert not crossed_inside(Tick(T0 + M, 1999.0, 1999.2), before, Side.BUY, DealReason.SL, 1999.5)  # a jump
    assert not crossed_inside(
        after, Tick(T0, 1999.4, 1999.6), Side.BUY, DealReason.SL, 1999.5
    )  # already beyond
    assert not crossed_inside(after, None, Side.BUY, DealReason.SL, 1999.5)
    # a SELL closes at the ask: its stop above was crossed by the ask's walk
    assert crossed_inside(Tick(T0 + M, 2001.0, 2001.2, walked=True), before, Side.SELL, DealReason.SL, 2001.1)


def test_slippage_summary_measures_the_distance_from_the_level() -> None:
    rows = [
        LevelFill(DealReason.SL, Side.BUY, 1999.50, 1999.20, False),
        LevelFill(DealReason.SL, Side.SELL, 2001.00, 2001.10, False),
        LevelFill(DealReason.SL, Side.BUY, 1990.00, 1990.00, True),
        LevelFill(DealReason.TP, Side.BUY, 2005.00, 2005.40, False),
    ]
    s = slippage_summary(rows)
    assert s["sl"] == {
        "fills": 3,
        "gapped": 2,
        "mean_points": pytest.approx(13.3),
        "p90_points": pytest.approx(26.0),
        "worst_points": 30.0,
    }
    assert s["tp"]["mean_points"] == -40.0  # better than the level
    assert "3 SL (2 gapped)" in describe_slippage(
        s, "real ticks"
    ) and "measured on real ticks" in describe_slippage(s, "real ticks")


# ------------------------------------------------------------------------------- the paper broker


async def test_generated_path_a_stop_crossed_inside_the_bar_fills_at_the_stop() -> None:
    # 60 ticks walk 2000 -> 2002 (high first: a falling bar) -> 1996 -> 1997; the walk passes 1999.00
    feed = ReplayFeed(bars((2000.0, 2002.0, 1996.0, 1997.0)), speed=0, ticks_per_bar=60)
    broker, deal = await walk(feed, Side.BUY, 1999.00, 2010.00, slippage=3)
    assert deal.price == 1998.97  # the stop, less the slippage: not the vertex the walk landed on
    assert deal.comment == "[sl 1999.00]"
    assert broker.level_fills[0].crossed


async def test_generated_path_a_bar_opening_beyond_the_stop_fills_at_the_open() -> None:
    feed = ReplayFeed(
        bars((2000.0, 2001.0, 1999.8, 2000.5), (1995.0, 1996.0, 1994.0, 1995.5)), speed=0, ticks_per_bar=60
    )
    broker, deal = await walk(feed, Side.BUY, 1999.00, 2010.00, slippage=10)
    assert deal.price == 1994.90 and deal.time == T0 + 15 * M  # the gap's tick, then the slippage
    assert not broker.level_fills[0].crossed


async def test_generated_path_a_bar_opening_beyond_the_take_profit_fills_better() -> None:
    feed = ReplayFeed(
        bars((2000.0, 2001.0, 1999.8, 2000.5), (2010.0, 2011.0, 2009.0, 2010.5)), speed=0, ticks_per_bar=60
    )
    _broker, deal = await walk(feed, Side.BUY, 1990.00, 2005.00, slippage=10)
    assert (deal.reason, deal.price) == (DealReason.TP, 2010.00)  # the open, unslipped


def m1_feed(*minutes: tuple[float, float, float, float]) -> ReplayFeed:
    m1 = bars(*minutes, minutes=1)
    m15 = resample_bars(m1)
    return ReplayFeed(m15, speed=0, path=lambda frame: M1Detail(frame, m1))


async def test_m1_detail_a_minute_opening_beyond_the_stop_fills_at_the_minute_open() -> None:
    feed = m1_feed((2000.0, 2000.5, 1999.8, 2000.2), (1998.0, 1998.5, 1997.5, 1998.2))
    _broker, deal = await walk(feed, Side.BUY, 1999.00, 2010.00)
    assert (deal.price, deal.time) == (1998.00, T0 + M)


async def test_m1_detail_a_stop_crossed_inside_a_minute_fills_at_the_stop() -> None:
    feed = m1_feed((2000.0, 2000.5, 1999.8, 2000.2), (2000.1, 2000.3, 1998.0, 1998.5))
    _broker, deal = await walk(feed, Side.SELL, 2000.40, 1990.00)  # a SELL closes at the ask (bid + 0.20)
    assert deal.price == 2000.40


async def test_real_ticks_fill_at_the_first_tick_beyond_the_stop_at_its_price() -> None:
    frame = bars((2000.0, 2000.0, 1999.2, 1999.2))
    ms = int(T0.timestamp() * 1000) + np.array([0, 400, 900, 1300])
    ticks = pl.DataFrame(
        {"time_msc": ms, "bid": [2000.0, 1999.7, 1999.2, 1999.4], "ask": [2000.2, 1999.9, 1999.4, 1999.6]}
    )
    feed = ReplayFeed(frame, speed=0, path=lambda f: RealTicks(f, ticks))
    broker, deal = await walk(feed, Side.BUY, 1999.50, 2010.00)
    assert (deal.price, deal.time) == (1999.20, T0 + timedelta(milliseconds=900))
    assert slippage_summary(broker.level_fills)["sl"]["mean_points"] == 30.0  # measured from the ticks


# ------------------------------------------------------------------- backtest and the paced replay


def expected_fill(trade, path, bar_ms: np.ndarray) -> float:
    """Where MT5's tester fills the trade's SL/TP on `path`: the level when the tick before (same walk, the
    untriggered side) led to it, else the tick's own closing price."""
    ms = int(trade.close_time.timestamp() * 1000)
    bar = int(np.searchsorted(bar_ms, ms, side="right")) - 1
    times, bid, ask = path.ticks(bar)
    k = int(np.flatnonzero(times == ms)[0])
    close = bid if trade.side is Side.BUY else ask
    level = trade.sl if trade.reason == "broker_sl" else trade.tp
    sign = trade.side.sign if trade.reason == "broker_sl" else -trade.side.sign
    walked = k % path.segment_ticks(bar) != 0
    return level if walked and (close[k - 1] - level) * sign > 0 else float(close[k])


@pytest.fixture(scope="module")
def truth():
    return synthetic_truth(700, seed=5)


@pytest.mark.parametrize("mode", ["generated", "M1 detail", "real ticks"])
def test_backtest_and_replay_fill_every_stop_as_the_tester(truth, mode: str) -> None:
    make = {
        "generated": lambda f: GeneratedPath(f, 60),
        "M1 detail": lambda f: M1Detail(f, truth.m1),
        "real ticks": lambda f: RealTicks(f, truth.ticks.filter(pl.col("time_msc") % 3000 == 0)),
    }[mode]
    config = BacktestConfig(balance=50_000.0, warmup_bars=200)
    result = run_backtest(truth.m15, config, path=make)
    path, bar_ms = make(truth.m15), truth.m15["time"].dt.epoch("ms").to_numpy()
    level_trades = [t for t in result.trades if t.reason in ("broker_sl", "broker_tp")]
    assert level_trades, "the run must close trades at their stops or targets"
    at_level = 0
    for t in level_trades:
        expected = expected_fill(t, path, bar_ms)
        assert t.close_price == pytest.approx(expected, abs=1e-9), (t, expected)
        at_level += expected in (t.sl, t.tp)
    if mode == "real ticks":
        assert result.fills["sl"]["gapped"] == result.fills["sl"]["fills"]  # every real tick may jump
    else:
        assert at_level > len(level_trades) // 2  # most stops are crossed inside a walk
    replay = paced_replay(truth.m15, config, speed=900.0, path=make)
    assert replay.trades == result.trades


def test_the_cli_reports_the_slippage_measured_on_real_ticks_and_the_coherence_line(
    tmp_path, truth, capsys
) -> None:
    import main
    from trading.intrabar import as_server_ticks
    from trading.timezones import ServerClock

    clock = ServerClock.parse("NY+7")
    bars_file, ticks_file, out = tmp_path / "bars.parquet", tmp_path / "ticks.parquet", tmp_path / "out.json"
    truth.m15.with_columns(
        pl.col("time").map_elements(clock.from_utc, return_dtype=pl.Datetime("us"))
    ).write_parquet(bars_file)
    as_server_ticks(truth.ticks.filter(pl.col("time_msc") % 3000 == 0), clock).write_parquet(ticks_file)
    code = main.main(
        [
            "backtest",
            "--data",
            str(bars_file),
            "--ticks",
            str(ticks_file),
            "--no-baselines",
            "--balance",
            "50000",
            "--slippage",
            "2",
            "--json",
            str(out),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out.replace("\n", " ")
    report = __import__("json").loads(out.read_text())
    sl = report["fills"]["sl"]
    assert (
        sl["fills"] > 0 and sl["gapped"] == sl["fills"] and sl["mean_points"] > 2
    )  # the ticks' jumps + slippage
    assert "measured on real ticks" in printed and f"{sl['fills']} SL ({sl['gapped']} gapped)" in printed
    assert "coherence: never fired:" in printed and report["coherence"]["never_fired"]["exit"]


# --------------------------------------------- each case through the market loop (backtest and replay)


class OneTrade:
    """An engine that buys once, on the first bar it decides, with the given stops; nothing else."""

    def __init__(self, broker: PaperBroker, sl: float, tp: float) -> None:
        self.broker, self.sl, self.tp, self.done = broker, sl, tp, False

    async def on_tick(self) -> None:
        return None

    async def on_bar(self, _window: pl.DataFrame) -> None:
        if not self.done:
            self.done = True
            await self.broker.open_market(Side.BUY, 0.10, self.sl, self.tp)


class StepWall:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        self.t += 0.5
        return self.t


def minutes(*rows: tuple[int, float, float, float, float]) -> pl.DataFrame:
    return validate_bars(
        pl.DataFrame(
            {
                "time": [T0 + m * M for m, *_ in rows],
                "open": [r[1] for r in rows],
                "high": [r[2] for r in rows],
                "low": [r[3] for r in rows],
                "close": [r[4] for r in rows],
                "tick_volume": [4] * len(rows),
                "spread": [20] * len(rows),
                "real_volume": [0] * len(rows),
            },
            schema=BAR_SCHEMA,
        )
    )


HISTORY = (
    (2000.0, 2001.0, 1999.0, 2000.5),
    (2000.5, 2001.5, 2000.0, 2001.0),
    (2001.0, 2002.0, 2000.5, 2001.5),
)
M1_ROWS = minutes(
    (0, 2000.0, 2000.0, 2000.0, 2000.0),
    (15, 2000.5, 2000.5, 2000.5, 2000.5),
    (30, 2001.0, 2001.5, 2000.8, 2001.2),
    (31, 1998.0, 1998.5, 1997.5, 1998.2),
)
TICK_MS = int(T0.timestamp() * 1000) + np.array(
    [0, 15 * 60_000, 30 * 60_000, 30 * 60_000 + 800, 30 * 60_000 + 1700]
)
REAL = pl.DataFrame(
    {
        "time_msc": TICK_MS,
        "bid": [2000.0, 2000.5, 2001.0, 2000.0, 1998.6],
        "ask": [2000.2, 2000.7, 2001.2, 2000.2, 1998.8],
    }
)
CASES = {
    # the entry fills at bar 2's first tick (2001.00 bid); the stop is 1999.00
    "generated, crossed inside a bar": (
        bars(*HISTORY, (2001.5, 2002.0, 1997.0, 1997.5)),
        None,
        1999.00,
        None,
    ),
    "generated, gap at a bar's open": (
        bars(*HISTORY, (1995.0, 1996.0, 1994.0, 1995.5)),
        None,
        1995.00,
        T0 + 45 * M,
    ),
    "M1 detail, gap at a minute's open": (
        resample_bars(M1_ROWS),
        lambda f: M1Detail(f, M1_ROWS),
        1998.00,
        T0 + 31 * M,
    ),
    "real ticks, a tick jumps the stop": (
        bars(*HISTORY),
        lambda f: RealTicks(f, REAL),
        1998.60,
        T0 + 30 * M + timedelta(milliseconds=1700),
    ),
}


@pytest.mark.parametrize("speed", [0.0, 600.0], ids=["backtest", "paced replay"])
@pytest.mark.parametrize("case", list(CASES))
async def test_the_market_loop_fills_each_case_as_the_tester(case: str, speed: float) -> None:
    from trading.simulation import MarketLoop, SimClock, history_window

    frame, path, price, at = CASES[case]
    feed = ReplayFeed(frame, speed=0, ticks_per_bar=60, history=1, path=path)
    broker = PaperBroker(feed=feed)
    await broker.connect()
    engine = OneTrade(broker, 1999.00, 2010.00)
    loop = MarketLoop(
        feed, broker, engine, SimClock(T0), history_window(frame, 10), speed=speed, wall=StepWall()
    )
    while not loop.finished:
        await loop.run_due()
    [deal] = [d for d in broker._deals if d.reason is DealReason.SL]
    assert deal.price == price
    if at is None:  # inside bar 3's walk, after its open
        assert T0 + 45 * M < deal.time < T0 + 60 * M
    else:
        assert deal.time == at
