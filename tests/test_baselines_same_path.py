"""Every baseline walks the strategy's own path, config, costs and account rules.

Without models the strategy *is* SMC-only, so the SMC-only baseline must give the very same trades
in each intrabar mode (generated, M1 detail, real ticks); before, the baselines were walked on the
generated path whatever mode the strategy used."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from main import main
from research.baselines import buy_and_hold_chained, run_baselines, run_buy_and_hold, smc_only_config
from trading.backtest import BacktestConfig, run_backtest
from trading.intrabar import M1Detail, RealTicks, as_server_ticks, synthetic_truth
from trading.timezones import ServerClock

CLOCK = ServerClock.parse("NY+7")
COSTLY = BacktestConfig(commission_per_lot=7.0, slippage_points=15)


@pytest.fixture(scope="module")
def truth():
    return synthetic_truth(700, seed=11)


def _paths(truth):
    return {
        "generated": None,
        "M1 detail": lambda f: M1Detail(f, truth.m1),
        "real ticks": lambda f: RealTicks(f, truth.ticks),
    }


def _deals(result) -> list[tuple]:
    return [
        (t.side, t.volume, t.open_time, t.open_price, t.close_time, t.close_price, t.profit, t.reason)
        for t in result.trades
    ]


@pytest.mark.parametrize("mode", ["generated", "M1 detail", "real ticks"])
def test_the_smc_only_baseline_equals_an_smc_only_strategy_run(truth, mode: str) -> None:
    path = _paths(truth)[mode]
    strategy = run_backtest(truth.m15, smc_only_config(COSTLY), path=path)
    base = run_baselines(truth.m15, COSTLY, path=path)
    assert strategy.intrabar_mode == mode
    assert {r.intrabar_mode for r in base.values()} == {mode}
    assert len(strategy.trades) > 10
    assert _deals(base["smc_only"]) == _deals(strategy)
    assert base["smc_only"].equity.tolist() == strategy.equity.tolist()


def test_the_modes_really_differ_so_the_equality_above_means_something(truth) -> None:
    runs = {m: _deals(run_backtest(truth.m15, COSTLY, path=p)) for m, p in _paths(truth).items()}
    assert runs["generated"] != runs["M1 detail"] != runs["real ticks"]


def test_buy_and_hold_pays_the_spread_slippage_and_commission_of_the_paper_broker(truth) -> None:
    free = run_buy_and_hold(truth.m15, BacktestConfig())
    paid = run_buy_and_hold(truth.m15, COSTLY)
    lots = COSTLY.limits.max_lot
    (f,), (p,) = free.trades, paid.trades
    assert p.open_price == pytest.approx(f.open_price + 0.15, abs=1e-9)  # slippage on the way in
    assert p.close_price == pytest.approx(f.close_price - 0.15, abs=1e-9)  # and on the way out
    commission = 2 * 7.0 * lots
    assert p.profit == pytest.approx(f.profit - 0.30 * 100 * lots - commission, abs=0.011)
    first_bar = truth.m15.row(COSTLY.warmup_bars, named=True)
    assert f.open_price == pytest.approx(
        first_bar["open"] + first_bar["spread"] * 0.01, abs=0.011
    )  # at the ask


def test_buy_and_hold_chained_carries_the_balance(truth) -> None:
    a, b = truth.m15.slice(0, 400), truth.m15.slice(200, 500)
    one = run_buy_and_hold(a, COSTLY)
    two = buy_and_hold_chained([a, b], COSTLY)
    assert two["trades"] == 2
    second = run_buy_and_hold(
        b, BacktestConfig(balance=float(one.equity[-1]), commission_per_lot=7.0, slippage_points=15)
    )
    assert two["final_equity"] == pytest.approx(float(second.equity[-1]), abs=0.01)


def _to_server(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(pl.col("time").map_elements(CLOCK.from_utc, return_dtype=pl.Datetime("us")))


@pytest.mark.parametrize("flag", ["--detail", "--ticks"])
def test_the_backtest_report_walks_its_baselines_on_the_strategy_path(
    truth, tmp_path: Path, flag: str
) -> None:
    bars = tmp_path / "bars.parquet"
    _to_server(truth.m15).write_parquet(bars)
    finer = tmp_path / "finer.parquet"
    if flag == "--detail":
        _to_server(truth.m1).write_parquet(finer)
    else:
        as_server_ticks(truth.ticks, CLOCK).write_parquet(finer)
    out = tmp_path / "out.json"
    assert (
        main(
            [
                "backtest",
                "--data",
                str(bars),
                flag,
                str(finer),
                "--commission",
                "7",
                "--slippage",
                "15",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    body = json.loads(out.read_text())
    smc = body["baselines"]["smc_only"]
    assert {b["intrabar_mode"] for b in body["baselines"].values()} == {body["intrabar_mode"]}
    for key in ("trades", "net_profit", "final_equity", "win_rate", "exit_reasons", "max_drawdown_pct"):
        assert smc[key] == body[key], key
    same = body["versus"]["r_per_trade"]["smc_only"]
    assert same["diff"] == 0.0 and same["decided"] == "within chance"


def test_a_walk_forward_with_a_detail_file_from_another_clock_is_one_line(
    truth, tmp_path: Path, capsys
) -> None:
    bars = tmp_path / "bars.parquet"
    _to_server(truth.m15).write_parquet(bars)
    detail = tmp_path / "m1.parquet"
    _to_server(truth.m1).with_columns(pl.col("time").dt.offset_by("2h")).write_parquet(detail)
    out = tmp_path / "wf.json"
    assert (
        main(
            [
                "backtest",
                "--data",
                str(bars),
                "--walk-forward",
                "400:200",
                "--detail",
                str(detail),
                "--json",
                str(out),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "+2 h off the bars" in err and not out.exists()
