"""`train` / `evaluate` commands: JSON output keys, registry writes, honest baselines, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from main import main
from models.registry import ModelRegistry
from models.training import plan_splits, train_models

SIGNAL_KEYS = {"auc", "accuracy", "log_loss", "brier", "folds", "baselines"}


@pytest.fixture(scope="module")
def small_file(shared_bars: pl.DataFrame, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("bars") / "bars.parquet"
    shared_bars.slice(0, 2600).write_parquet(path)
    return path


@pytest.fixture(scope="module")
def newer_file(shared_bars: pl.DataFrame, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("bars") / "newer.parquet"
    shared_bars.slice(2600, 700).write_parquet(path)
    return path


@pytest.fixture(scope="module")
def trained(small_file: Path, tmp_path_factory) -> tuple[Path, dict]:
    models_dir = tmp_path_factory.mktemp("models")
    out = models_dir / "train.json"
    code = main(
        [
            "train",
            "--data",
            str(small_file),
            "--models-dir",
            str(models_dir),
            "--json",
            str(out),
            "--folds",
            "2",
            "--test-size",
            "80",
        ]
    )
    assert code == 0
    return models_dir, json.loads(out.read_text())


@pytest.fixture(scope="module")
def forced(small_file: Path, trained, tmp_path_factory) -> dict:
    """A second version of the same data, activated by hand with --activate."""
    models_dir, _ = trained
    out = models_dir / "forced.json"
    assert (
        main(
            [
                "train",
                "--data",
                str(small_file),
                "--models-dir",
                str(models_dir),
                "--json",
                str(out),
                "--folds",
                "2",
                "--test-size",
                "80",
                "--activate",
            ]
        )
        == 0
    )
    return json.loads(out.read_text())


def test_train_json_has_the_documented_keys(trained) -> None:
    _, report = trained
    assert {"version", "regime", "signal", "seconds"} <= set(report)
    assert set(report["signal"]) >= SIGNAL_KEYS
    assert set(report["signal"]["baselines"]) == {"base_rate", "side_rate"}
    folds = report["signal"]["folds"]
    assert len(folds) == 2 and folds[0]["test_rows"] == folds[1]["test_rows"] >= 60
    assert folds[0]["test_to"] < folds[1]["test_from"]
    assert 0.0 <= report["signal"]["auc"] <= 1.0 and report["signal"]["n"] == 2 * folds[0]["test_rows"]
    assert 0.0 < report["signal"]["base_win_rate"] < 1.0
    trading = report["signal"]["trading"]
    assert (
        trading["all_setups"]["n"] == report["signal"]["n"]
        and trading["ev_gate"]["n"] <= trading["all_setups"]["n"]
    )
    assert {"min_prob", "base_rate", "fitted", "valid_setups"} <= set(report["signal"]["ev_gate"])
    assert set(report["regime"]["state_shares"]) == {"low", "medium", "high"}
    assert isinstance(report["signal"]["beats_baselines"], bool) and report["signal"]["verdict"]


def test_a_model_without_an_edge_is_stored_but_not_activated(trained) -> None:
    models_dir, report = trained
    reg = ModelRegistry(models_dir)
    # these 2,600 bars show no edge out of sample (see the verdict): stored, not live
    assert report["edge"]["demonstrated"] is False and "no demonstrated edge" in report["signal"]["verdict"]
    assert report["version"] == "v001" and report["activated"] is False
    assert (
        "no demonstrated edge" in report["activation_reason"] and "--activate" in report["activation_reason"]
    )
    meta = reg.metadata("v001")
    assert meta["status"] == "rejected" and meta["edge"]["demonstrated"] is False
    assert (
        meta["label"]["time_limit_bars"] == 32
        and meta["data"]["bars"] == 2600
        and len(meta["data"]["hash"]) == 16
    )
    assert meta["data"]["train_to"] < meta["data"]["holdout_from"]


def test_activate_flag_puts_it_live_and_says_it_was_forced(forced, trained) -> None:
    models_dir, _ = trained
    reg = ModelRegistry(models_dir)
    assert forced["version"] == "v002" and forced["activated"] is True
    assert "without a demonstrated edge" in forced["activation_reason"]
    assert reg.active_version() == "v002" and reg.metadata("v002")["edge"]["demonstrated"] is False


def test_train_flags_exclude_each_other(small_file: Path, tmp_path, capsys) -> None:
    with pytest.raises(SystemExit):
        main(
            ["train", "--data", str(small_file), "--models-dir", str(tmp_path), "--activate", "--no-activate"]
        )
    assert ModelRegistry(tmp_path).versions() == []


def test_evaluate_json_to_stdout(forced, trained, newer_file: Path, capsys) -> None:
    models_dir, _ = trained
    capsys.readouterr()
    assert main(["evaluate", "--data", str(newer_file), "--models-dir", str(models_dir), "--json", "-"]) == 0
    out = capsys.readouterr().out
    payload = json.loads(out)  # stdout holds exactly one JSON object; the readable report went to stderr
    assert {"auc", "accuracy", "log_loss", "brier", "n", "base_win_rate", "trading"} <= set(payload)
    assert (
        payload["n"] == payload["trading"]["all_setups"]["n"] > 30
    )  # setups of 700 bars with a known outcome
    assert payload["version"] == "v002" and payload["rows_inside_training_range"] == 0


def test_evaluate_without_a_model_is_a_clear_error(newer_file: Path, tmp_path, capsys) -> None:
    assert main(["evaluate", "--data", str(newer_file), "--models-dir", str(tmp_path)]) == 2
    assert "no active model" in capsys.readouterr().err


def test_evaluate_reads_a_rejected_version_without_activating_it(
    forced, trained, newer_file: Path, capsys
) -> None:
    models_dir, _ = trained
    reg = ModelRegistry(models_dir)
    pointer = (models_dir / "active").read_bytes() if (models_dir / "active").exists() else None
    capsys.readouterr()
    assert (
        main(
            [
                "evaluate",
                "--data",
                str(newer_file),
                "--models-dir",
                str(models_dir),
                "--version",
                "v1",
                "--json",
                "-",
            ]
        )
        == 0
    )
    payload = json.loads(capsys.readouterr().out)
    assert payload["version"] == "v001" and payload["status"] == "rejected" and payload["n"] > 30
    assert reg.active_version() == "v002" and reg.metadata("v001")["status"] == "rejected"
    assert ((models_dir / "active").read_bytes() if pointer is not None else None) == pointer


def test_a_version_that_does_not_exist_is_one_line_listing_the_stored_ones(
    forced, trained, newer_file: Path, capsys
) -> None:
    models_dir, _ = trained
    capsys.readouterr()
    assert (
        main(["evaluate", "--data", str(newer_file), "--models-dir", str(models_dir), "--version", "v009"])
        == 2
    )
    err = capsys.readouterr().err
    assert (
        err.count("\n") == 1
        and "v009 is not in" in err
        and "v001 (rejected)" in err
        and "v002 (active)" in err
    )
    assert (
        main(
            [
                "backtest",
                "--data",
                str(newer_file),
                "--models-dir",
                str(models_dir),
                "--version",
                "v009",
                "--no-baselines",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "stored versions: v001 (rejected), v002 (active)" in err
    assert (
        main(["evaluate", "--data", str(newer_file), "--models-dir", str(models_dir), "--version", "latest"])
        == 2
    )
    assert "bad version name" in capsys.readouterr().err


def test_backtest_trades_a_rejected_version_without_activating_it(
    forced, trained, newer_file: Path, tmp_path: Path
) -> None:
    models_dir, _ = trained
    out = tmp_path / "bt.json"
    assert (
        main(
            [
                "backtest",
                "--data",
                str(newer_file),
                "--models-dir",
                str(models_dir),
                "--version",
                "v001",
                "--no-baselines",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    assert json.loads(out.read_text())["models"] == "model v001"
    reg = ModelRegistry(models_dir)
    assert reg.active_version() == "v002" and reg.metadata("v001")["status"] == "rejected"


def test_train_refuses_too_little_data(shared_bars: pl.DataFrame, tmp_path, capsys) -> None:
    path = tmp_path / "tiny.parquet"
    shared_bars.head(900).write_parquet(path)
    assert main(["train", "--data", str(path), "--models-dir", str(tmp_path / "m")]) == 2
    assert "too few" in capsys.readouterr().err
    assert ModelRegistry(tmp_path / "m").versions() == []


def test_plan_splits_shrinks_blocks_for_short_histories() -> None:
    full = plan_splits(2400, 4, 300, 300, 10)
    assert [len(s.test) for s in full] == [300] * 4
    short = plan_splits(500, 4, 300, 300, 10)
    assert len(short) == 4 and short[-1].test.stop == 500 and len(short[0].test) == (500 - 20) // 7
    with pytest.raises(ValueError, match="too few"):
        plan_splits(250, 4, 300, 300, 10)


def test_a_worse_model_is_kept_as_rejected(shared_bars: pl.DataFrame, tmp_path) -> None:
    reg = ModelRegistry(tmp_path)
    bars = shared_bars.slice(0, 2400)
    first = train_models(
        bars, registry=reg, n_folds=2, test_size=80, hmm_seeds=(42,), fold_hmm_seeds=(42,), force=True
    )
    assert first.activated
    second = train_models(
        bars,
        registry=reg,
        n_folds=2,
        test_size=80,
        hmm_seeds=(42,),
        fold_hmm_seeds=(42,),
        min_auc=0.99,
        force=True,
    )
    assert not second.activated and "below the floor" in second.activation_reason
    assert reg.active_version() == first.version
    assert reg.metadata(second.version)["status"] == "rejected"


def test_train_report_reads_at_80_columns(trained) -> None:
    import io

    from rich.console import Console

    from models.train_commands import _print_train
    from models.training import TrainReport

    _, report = trained
    buf = io.StringIO()
    _print_train(Console(file=buf, width=80), TrainReport(**report))
    text = buf.getvalue()
    assert "…" not in text and "EV R" in text and "base win rate" in text
    assert max(len(line) for line in text.splitlines()) <= 80
    # every activation check is named with pass/FAIL, and the verdict names the ones that failed
    checks = report["signal"]["edge_checks"]
    assert "activation checks" in text and len(checks) >= 3
    for check in checks:
        assert f"{'pass' if check['passed'] else 'FAIL'} {check['name']}:" in text
    failed = ", ".join(c["name"] for c in checks if not c["passed"])
    assert f"verdict: no demonstrated edge (failed: {failed})" in " ".join(text.split())
