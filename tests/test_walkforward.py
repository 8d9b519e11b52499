"""Walk-forward backtest: fold windows, no look-ahead into a fold's test window, chained out-of-sample metrics."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from models.registry import ModelRegistry
from models.training import data_fingerprint
from research.walkforward import (
    Chained,
    TrainOptions,
    WalkForwardResult,
    parse_spec,
    plan_folds,
    smc_only_config,
    walk_forward,
)
from trading.backtest import BacktestConfig, compute_metrics
from trading.intrabar import GeneratedPath

TINY = TrainOptions(n_folds=2, test_size=300, valid_size=300, hmm_seeds=(42,), fold_hmm_seeds=(42,))
BAR = timedelta(minutes=15)
METRIC_KEYS = {
    "trades",
    "win_rate",
    "profit_factor",
    "expectancy",
    "net_profit",
    "max_drawdown_pct",
    "sharpe",
    "sortino",
    "calmar",
    "avg_hold_minutes",
    "exit_reasons",
    "by_session",
    "by_regime",
    "final_equity",
}


# ------------------------------------------------------------------------------------------ fold plan


def test_plan_rolls_by_the_test_window() -> None:
    folds = plan_folds(3000, 1500, 500)
    assert [(f.train.start, f.train.stop, f.test.start, f.test.stop) for f in folds] == [
        (0, 1500, 1500, 2000),
        (500, 2000, 2000, 2500),
        (1000, 2500, 2500, 3000),
    ]
    assert folds[1].backtest_range(200) == range(1800, 2500)


def test_plan_with_a_longer_step_and_an_incomplete_tail() -> None:
    folds = plan_folds(3100, 1000, 400, step=700)
    assert [(f.train.start, f.test.start, f.test.stop) for f in folds] == [
        (0, 1000, 1400),
        (700, 1700, 2100),
        (1400, 2400, 2800),
    ]
    for f in folds:
        assert f.train.stop == f.test.start  # adjacent, never overlapping
    assert plan_folds(12_000, 6000, 1500)[-1].test.stop == 12_000
    assert len(plan_folds(12_000, 6000, 1500)) == 4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((3000, 1500, 500, 400), "overlap"),
        ((3000, 150, 500, None), "warm-up"),
        ((1900, 1500, 500, None), "too few"),
        ((3000, 1500, 0, None), "positive"),
    ],
)
def test_plan_refuses_bad_windows(args: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        plan_folds(*args)


def test_parse_spec() -> None:
    assert parse_spec("6000:1500") == (6000, 1500, None)
    assert parse_spec("6000:1500:2000") == (6000, 1500, 2000)
    for bad in ("6000", "6000:x", "1:2:3:4", "-5:3"):
        with pytest.raises(ValueError, match="TRAIN:TEST"):
            parse_spec(bad)


def test_smc_only_config_switches_off_the_ml_gates_only() -> None:
    cfg = BacktestConfig()
    smc = smc_only_config(cfg)
    assert smc.params.disabled_gates == cfg.params.disabled_gates | {"ml_confidence", "ml_agreement"}
    assert smc.balance == cfg.balance and smc.warmup_bars == cfg.warmup_bars


# ------------------------------------------------------------------------------------------ real run


@pytest.fixture(scope="module")
def bars3000(shared_bars: pl.DataFrame) -> pl.DataFrame:
    return shared_bars.head(3000)


class MarkedPath(GeneratedPath):
    """The default generated path under another name, to see which runs walked the given path."""

    mode = "marked path"


@pytest.fixture(scope="module")
def run(bars3000: pl.DataFrame, tmp_path_factory) -> tuple[WalkForwardResult, Path]:
    root = tmp_path_factory.mktemp("wf-models")
    return walk_forward(
        bars3000, 1500, 500, train_options=TINY, models_dir=root, path=lambda f: MarkedPath(f)
    ), root


def test_every_run_walks_the_given_path(run: tuple[WalkForwardResult, Path]) -> None:
    result, _ = run
    for f in result.folds:
        runs = [f.strategy, f.smc_only, f.random, *f.fresh.values()]
        assert {r.intrabar_mode for r in runs} == {"marked path"}
    assert result.to_json_dict()["intrabar_mode"] == "marked path"


def test_each_fold_also_runs_on_its_own_fresh_account(run: tuple[WalkForwardResult, Path]) -> None:
    result, _ = run
    first = result.folds[0]
    assert first.fresh["strategy"] is first.strategy and first.fresh["smc_only"] is first.smc_only
    for f in result.folds[1:]:
        assert set(f.fresh) == {"strategy", "smc_only", "random", "buy_and_hold"}
        for r in f.fresh.values():
            assert r.start_balance == 5000.0
        assert f.fresh["smc_only"].risk_state.reference_balance == pytest.approx(5000.0)
    fresh = result.to_json_dict()["fresh"]
    assert [row["fold"] for row in fresh["folds"]] == [1, 2, 3]
    for row, f in zip(fresh["folds"], result.folds, strict=True):
        assert row["smc_only"]["trades"] == len(f.fresh["smc_only"].trades)
        assert row["buy_and_hold"]["trades"] == 1
    assert set(fresh["overall"]) == {"smc_only", "random", "buy_and_hold"}
    assert {"low", "high", "diff", "decided"} <= set(fresh["overall"]["smc_only"]["r_per_trade"])
    assert len(fresh["verdicts"]) == 3 and all("CI" in v or "cannot" in v for v in fresh["verdicts"])


def test_folds_trade_only_inside_their_test_window(run: tuple[WalkForwardResult, Path]) -> None:
    result, _ = run
    assert len(result.folds) == 3 and result.untested_bars == 0
    for f in result.folds:
        assert f.plan.train.stop == f.plan.test.start
        assert f.train_to < f.test_from
        assert f.strategy.bars == len(f.plan.test) == f.smc_only.bars
        for r in (f.strategy, f.smc_only):
            for t in r.trades:
                assert f.test_from <= t.open_time < f.test_to + BAR
                assert t.close_time <= f.test_to + BAR
            assert r.equity_times[0] == f.test_from + BAR and r.equity_times[-1] == f.test_to + BAR
    assert sum(len(f.smc_only.trades) for f in result.folds) > 0  # the windows are long enough to trade


def test_fold_model_never_saw_its_test_window(
    run: tuple[WalkForwardResult, Path], bars3000: pl.DataFrame
) -> None:
    result, root = run
    reg = ModelRegistry(root)
    assert reg.versions() == [f.model_version for f in result.folds]
    for f in result.folds:
        data = reg.metadata(f.model_version)["data"]
        # the registry's fingerprint is of exactly the train window's bars, and its last bar precedes the test
        assert data["hash"] == data_fingerprint(bars3000.slice(f.plan.train.start, len(f.plan.train)))
        assert data["bars"] == len(f.plan.train)
        assert data["to"] == str(f.train_to) == f.model_trained_to
        assert data["to"] < str(f.test_from)
        assert f.model_auc is not None and 0 <= f.model_auc <= 1


def test_overall_is_the_metrics_of_the_chained_folds(run: tuple[WalkForwardResult, Path]) -> None:
    result, _ = run
    balance = 5000.0
    for f in result.folds:  # each fold starts from the previous fold's final equity
        assert f.strategy.start_balance == pytest.approx(balance)
        balance = balance + sum(t.profit for t in f.strategy.trades)
        assert f.strategy.equity[-1] == pytest.approx(balance, abs=0.01)
    trades = [t for f in result.folds for t in f.strategy.trades]
    overall = result.overall()
    assert set(overall) >= METRIC_KEYS
    assert overall["trades"] == len(trades)
    assert overall["net_profit"] == pytest.approx(sum(t.profit for t in trades), abs=0.01)
    assert overall["final_equity"] == pytest.approx(balance, abs=0.01)
    times = [t for f in result.folds for t in f.strategy.equity_times]
    equity = np.concatenate([f.strategy.equity for f in result.folds])
    expected = compute_metrics(result.strategy.trades, result.strategy.opened, times, equity, 5000.0)
    assert overall == expected
    tickets = [t.ticket for t in result.strategy.trades]
    assert len(set(tickets)) == len(tickets)
    smc = result.smc_only.metrics()
    assert smc["trades"] == sum(len(f.smc_only.trades) for f in result.folds)


def test_json_shape(run: tuple[WalkForwardResult, Path]) -> None:
    result, _ = run
    out = json.loads(json.dumps(result.to_json_dict(), default=str))
    assert out["out_of_sample_bars"] == 1500
    assert [f["fold"] for f in out["folds"]] == [1, 2, 3]
    assert {
        "train_from",
        "train_to",
        "test_from",
        "test_to",
        "model_auc",
        "trades",
        "net_profit",
        "win_rate",
    } <= set(out["folds"][0])
    assert set(out["overall"]) == set(out["smc_only"]) >= METRIC_KEYS


def test_chained_renumbers_tickets_across_folds(run: tuple[WalkForwardResult, Path]) -> None:
    result, _ = run
    c = Chained(5000.0)
    for f in result.folds:
        c.add(f.smc_only)
    opened = {o.ticket for o in c.opened}
    assert len(opened) == len(c.opened) and {t.ticket for t in c.trades} <= opened


# ------------------------------------------------------------------------------------------ CLI


def test_cli_walk_forward_json(shared_bars_path: Path, tmp_path: Path, capsys) -> None:
    from main import main

    data = tmp_path / "bars.parquet"
    pl.read_parquet(shared_bars_path).head(2400).write_parquet(data)  # the raw file, in server time
    out = tmp_path / "wf.json"
    rc = main(
        [
            "backtest",
            "--data",
            str(data),
            "--walk-forward",
            "1500:450",
            "--wf-test-size",
            "300",
            "--json",
            str(out),
            "--trades-csv",
            str(tmp_path / "t.csv"),
        ]
    )
    assert rc == 0
    body = json.loads(out.read_text())
    wf = body["walk_forward"]
    assert len(wf["folds"]) == 2 and wf["out_of_sample_bars"] == 900 and wf["untested_bars"] == 0
    assert set(wf["overall"]) == set(wf["smc_only"]) >= METRIC_KEYS
    assert wf["overall"]["trades"] == sum(f["trades"] for f in wf["folds"])
    assert wf["smc_only"]["trades"] == sum(f["smc_only_trades"] for f in wf["folds"])
    captured = capsys.readouterr()
    printed = captured.out
    assert "out-of-sample folds" in printed
    assert "walk-forward: 2 of 2 folds" in captured.err and "(done)" in captured.err  # piped: plain progress
    assert (tmp_path / "t.csv").read_text().startswith("ticket,")
    # the fills and coherence lines over all folds (trading.run_checks): every broker stop of every fold
    reasons = wf["overall"]["exit_reasons"]
    assert body["fills"]["sl"]["fills"] == reasons.get("broker_sl", 0)
    assert body["fills"]["tp"]["fills"] == reasons.get("broker_tp", 0)
    silent = body["coherence"]["never_fired"]
    assert not set(reasons) & {r for names in silent.values() for r in names}  # what closed a trade fired
    assert body["coherence_line"].startswith("coherence: never fired:")
    assert "coherence: never fired:" in printed and "SL/TP fills (" in printed


def test_cli_walk_forward_refuses_bad_input(shared_bars_path: Path, capsys) -> None:
    from main import main

    assert main(["backtest", "--data", str(shared_bars_path), "--walk-forward", "6000"]) == 2
    assert "TRAIN:TEST" in capsys.readouterr().err
    assert main(["backtest", "--data", str(shared_bars_path), "--walk-forward", "6000:1500:1000"]) == 2
    assert "overlap" in capsys.readouterr().err
    assert (
        main(
            ["backtest", "--data", str(shared_bars_path), "--walk-forward", "6000:1500", "--models-dir", "x"]
        )
        == 2
    )
    assert "--models-dir" in capsys.readouterr().err


def test_risk_counters_carry_across_folds(run: tuple[WalkForwardResult, Path]) -> None:
    result, _ = run
    # the total-loss reference is the first fold's balance in every fold, as live keeps it
    for f in result.folds:
        assert f.strategy.risk_state.reference_balance == pytest.approx(5000.0)
        assert f.smc_only.risk_state.reference_balance == pytest.approx(5000.0)
    assert result.strategy.risk_state is result.folds[-1].strategy.risk_state


def test_every_baseline_is_in_the_report(run: tuple[WalkForwardResult, Path]) -> None:
    result, _ = run
    out = json.loads(json.dumps(result.to_json_dict(), default=str))
    assert set(out["baselines"]) == {"smc_only", "random", "buy_and_hold"}
    assert out["baselines"]["random"]["trades"] == sum(len(f.random.trades) for f in result.folds)
    assert out["baselines"]["buy_and_hold"]["trades"] == len(result.folds)
    assert isinstance(out["halts"], list) and all("halts" in f for f in out["folds"])
    for f in result.folds:  # the random baseline has no ML gate
        assert "ml_confidence" not in f.random.gate_blocks
