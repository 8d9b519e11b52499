"""Walk-forward optimisation: the plan, the search space, determinism across workers, resuming, the report."""

from __future__ import annotations

import json
import re
from dataclasses import fields
from pathlib import Path

import polars as pl
import pytest

from research import optimize as opt
from trading.backtest import BacktestConfig
from trading.parameters import SEARCH_SPACE, ParamRange, StrategyParams
from trading.returns import annual_sharpe, daily_returns

SMALL_PLAN = opt.OptimizationPlan(folds=2, train_bars=400, test_bars=500, holdout_bars=300, warmup=200)


def test_every_range_belongs_to_a_parameter_and_holds_its_default() -> None:
    names = {f.name: f.type for f in fields(StrategyParams)}
    base = StrategyParams()
    for name, r in SEARCH_SPACE.items():
        assert name in names, name
        assert r.low <= getattr(base, name) <= r.high, name
        assert r.grid()[0] == r.low and r.grid()[-1] == pytest.approx(r.high)
        if names[name] == "int":
            assert all(float(x).is_integer() for x in (r.low, r.high, r.step)), name
    assert ParamRange(0.5, 0.7, 0.05).grid() == [0.5, 0.55, 0.6, 0.65, 0.7]


def test_plan_puts_the_holdout_after_every_test_window() -> None:
    plan = opt.plan_optimization(12_000)
    assert (plan.folds, plan.test_bars) == (3, 2000)
    ranges = plan.fold_ranges(12_000)
    assert [(t.start, t.stop) for _, t in ranges] == [
        (4000, 6000),
        (6000, 8000),
        (8000, 10000),
        (10000, 12000),
    ]
    for train, test in ranges:
        assert train.stop == test.start and len(train) == 4000
    with pytest.raises(ValueError, match="per test window"):
        opt.plan_optimization(5000, folds=3)


def test_space_has_the_ev_gate_numbers_only_with_models() -> None:
    with_models, without = opt.search_space(True), opt.search_space(False)
    assert {"ml_min_win_prob", "ml_min_ev_r"} <= set(with_models)
    assert not {"ml_min_win_prob", "ml_min_ev_r"} & set(without)
    defaults = opt.default_values(with_models)
    assert defaults["ml_min_win_prob"] == StrategyParams().ml_min_win_prob
    for name, r in with_models.items():  # every default inside its range
        assert r.low <= defaults[name] <= r.high, name


def test_neighbours_stay_inside_the_ranges() -> None:
    space = {"a": ParamRange(1.0, 3.0, 1.0), "b": ParamRange(0, 10, 5)}
    got = [(n, v) for n, v, _ in opt.neighbours({"a": 1.0, "b": 5}, space)]
    assert got == [("a", 2.0), ("b", 0), ("b", 10)]


def test_params_for_keeps_int_fields_int() -> None:
    p = opt.params_for(
        {"cooldown_seconds": 600.0, "min_risk_reward": 2.5, "ml_min_win_prob": 0.45}, StrategyParams()
    )
    assert p.cooldown_seconds == 600 and isinstance(p.cooldown_seconds, int) and p.min_risk_reward == 2.5
    assert p.ml_min_win_prob == 0.45


def test_verdict_names_every_failed_check() -> None:
    good = {"net_profit": 100.0, "sharpe": 1.2}
    v = opt.verdict({"chosen": good, "buy_and_hold": {"net_profit": 50.0}}, dsr=0.97, pbo=0.2)
    assert v.survives and v.reasons == []
    v = opt.verdict({"chosen": good, "buy_and_hold": {"net_profit": 150.0}}, dsr=0.5, pbo=0.6)
    assert not v.survives and len(v.reasons) == 3
    assert any("buy and hold" in r for r in v.reasons) and any("overfitting" in r for r in v.reasons)


@pytest.fixture(scope="module")
def data(shared_bars: pl.DataFrame) -> opt.OptimizationData:
    bars = shared_bars.head(1800)
    return opt.prepare(bars, SMALL_PLAN, BacktestConfig(), use_models=False, min_trades=1)


def test_prepared_windows_never_reach_into_the_holdout(data: opt.OptimizationData) -> None:
    assert [w.name for w in data.folds] == ["fold 1", "fold 2"]
    assert data.folds[-1].test_to < data.holdout.test_from
    assert data.folds[0].test_to < data.folds[1].test_from
    for w in (*data.folds, data.holdout):
        assert w.bars.height == 500 + 200 or w is data.holdout


def test_score_is_deterministic_and_the_objective_is_the_fold_sharpe(data: opt.OptimizationData) -> None:
    values = opt.default_values(data.space)
    a, b = opt.score(values, data), opt.score(values, data)
    assert a == b
    account = opt.trade_windows(values, data, data.folds)
    assert a.metrics == account.metrics()
    assert a.objective == pytest.approx(annual_sharpe(daily_returns(account.times, account.equity_array())))


def test_too_few_trades_leave_a_set_unscored_with_its_real_sharpe(data: opt.OptimizationData) -> None:
    strict = opt.OptimizationData(data.folds, data.holdout, data.config, data.space, min_trades=10_000)
    values = opt.default_values(data.space)
    s, free = opt.score(values, strict), opt.score(values, data)
    assert not s.scored and free.scored
    assert s.objective == free.objective  # the measured Sharpe, never a stand-in number
    assert opt.score(values, strict, [data.holdout]).scored  # the minimum applies to the folds only


def test_min_trades_scales_with_the_fold_bars() -> None:
    assert opt.min_trades_for(3, 2000) == 30
    assert opt.min_trades_for(2, 250) == opt.MIN_TRADES_FLOOR
    assert opt.min_trades_for(4, 5000) == 100


def test_the_sampler_is_told_the_trade_shortfall_as_a_constraint(
    tmp_path: Path, data: opt.OptimizationData
) -> None:
    strict = opt.OptimizationData(data.folds, data.holdout, data.config, data.space, min_trades=10_000)
    study = opt.open_study("c", tmp_path / "c.db", 5, {"test": 1})
    opt.run_trials(study, opt.LocalExecutor(strict, 1), strict.space, 2, batch=2)
    for t in study.get_trials():
        assert t.constraints == {"trades_short_of_minimum": 10_000 - t.user_attrs["trades"]}
        assert t.user_attrs["scored"] is False
    assert not any(r.scored for r in opt.trial_records(study))


def _run_study(tmp_path: Path, data: opt.OptimizationData, name: str, executor, n: int, seed: int = 5):
    study = opt.open_study(name, tmp_path / f"{name}.db", seed, {"test": 1})
    opt.run_trials(study, executor, data.space, n, batch=2)
    return [(r.values, r.objective) for r in opt.trial_records(study)]


@pytest.mark.slow
def test_same_seed_same_trials_with_one_or_two_workers(tmp_path: Path, data: opt.OptimizationData) -> None:
    one = opt.LocalExecutor(data, 1)
    two = opt.LocalExecutor(data, 2)
    try:
        a = _run_study(tmp_path, data, "one", one, 4)
        b = _run_study(tmp_path, data, "two", two, 4)
    finally:
        two.close()
    assert a == b and len(a) == 4
    assert len({json.dumps(v, sort_keys=True) for v, _ in a}) == 4  # TPE drew four different sets


def test_a_study_resumes_from_sqlite_and_refuses_other_data(
    tmp_path: Path, data: opt.OptimizationData
) -> None:
    ex = opt.LocalExecutor(data, 1)
    first = _run_study(tmp_path, data, "resume", ex, 2)
    again = _run_study(tmp_path, data, "resume", ex, 3)  # one more trial, the first two kept
    assert again[:2] == first and len(again) == 3
    assert again[2][0] not in [v for v, _ in first]
    with pytest.raises(ValueError, match="other data"):
        opt.open_study("resume", tmp_path / "resume.db", 5, {"test": 2})
    with pytest.raises(ValueError, match="seed"):
        opt.open_study("resume", tmp_path / "resume.db", 6, {"test": 1})


@pytest.mark.slow
def test_ray_tasks_give_the_same_trials_as_a_local_run(tmp_path: Path, data: opt.OptimizationData) -> None:
    pytest.importorskip("ray")
    local = _run_study(tmp_path, data, "local", opt.LocalExecutor(data, 1), 2)
    ex = opt.RayExecutor(
        data, "local", init_kwargs={"num_cpus": 1, "include_dashboard": False, "log_to_driver": False}
    )
    try:
        remote = _run_study(tmp_path, data, "ray", ex, 2)
    finally:
        ex.close()
    assert remote == local


def test_cli_optimize_reports_no_edge_and_changes_nothing(
    shared_bars_path: Path, tmp_path: Path, capsys
) -> None:
    from main import main

    bars = tmp_path / "bars.parquet"
    pl.read_parquet(shared_bars_path).head(1200).write_parquet(bars)
    out = tmp_path / "opt.json"
    args = [
        "optimize",
        "--data",
        str(bars),
        "--smc-only",
        "--trials",
        "3",
        "--batch",
        "3",
        "--folds",
        "2",
        "--train-bars",
        "400",
        "--holdout-bars",
        "300",
        "--min-trades",
        "1",
        "--storage",
        str(tmp_path / "s.db"),
        "--json",
        str(out),
    ]
    assert main(args) == 0
    body = json.loads(out.read_text())
    assert body["trials"] == 3 and body["trials_run_now"] == 3 and body["plan"]["test_bars"] == 250
    assert set(body["holdout"]) == {"chosen", "defaults", "smc_only", "random", "buy_and_hold"}
    assert set(body["chosen"]["values"]) == set(SEARCH_SPACE)
    assert {"dsr", "sr0_daily", "days", "trials"} <= set(body["deflated_sharpe"])
    assert body["sensitivity"] and all(s["param"] in SEARCH_SPACE for s in body["sensitivity"])
    assert (tmp_path / "xaubot-trials.png").read_bytes()[:4] == b"\x89PNG"
    captured = capsys.readouterr()
    text = captured.out
    # piped (not a terminal): the stages and the trials as plain lines on stderr, none on the report
    assert "preparing the windows" in captured.err and "sensitivity and hold-out" in captured.err
    assert "trials: 3 of 3 trials" in captured.err and "(done)" in captured.err
    if body["verdict"]["survives"]:
        assert Path(body["proposal"]).exists()
    else:
        assert "No edge found" in text and body["proposal"] is None
        assert not (tmp_path / "xaubot-proposal.json").exists()


def test_cli_optimize_with_no_scored_trial_says_why_and_chooses_nothing(
    shared_bars_path: Path, tmp_path: Path, capsys
) -> None:
    from main import main

    bars = tmp_path / "bars.parquet"
    pl.read_parquet(shared_bars_path).head(1200).write_parquet(bars)
    out = tmp_path / "opt.json"
    args = [
        "optimize",
        "--data",
        str(bars),
        "--smc-only",
        "--trials",
        "2",
        "--batch",
        "2",
        "--folds",
        "2",
        "--train-bars",
        "400",
        "--holdout-bars",
        "300",
        "--min-trades",
        "5000",
        "--storage",
        str(tmp_path / "s.db"),
        "--json",
        str(out),
    ]
    assert main(args) == 0
    body = json.loads(out.read_text())
    text = capsys.readouterr().out
    assert body["chosen"] is None and body["scored_trials"] == 0 and body["proposal"] is None
    assert "chosen" not in body["holdout"] and {"defaults", "smc_only", "random", "buy_and_hold"} == set(
        body["holdout"]
    )
    assert (
        body["deflated_sharpe"] is None and body["pbo"] is None and body["sensitivity_worst_change"] is None
    )
    assert body["folds"]["defaults_objective"] is None
    assert [n for n, _ in body["trades_per_trial"]] == [0, 1]
    reason = " ".join(body["verdict"]["reasons"])
    assert (
        "no trial traded at least 5000 times" in reason
        and "trades per trial" in reason
        and "--folds" in reason
    )
    flat = text.replace("\n", " ")
    assert "No trial was scored" in flat and not re.search(r"-99\.\d|-100\.0", flat)
    assert "worst Δ" not in flat and "PBO" not in flat and "overfitting (CSCV" not in flat
    assert not re.search(r"-99\.\d|-100\.0", out.read_text())
    assert (tmp_path / "xaubot-trials.png").read_bytes()[:4] == b"\x89PNG"


def test_cli_optimize_refuses_bad_input(shared_bars_path: Path, capsys) -> None:
    from main import main

    assert main(["optimize", "--data", str(shared_bars_path), "--trials", "0"]) == 2
    assert "--trials" in capsys.readouterr().err
