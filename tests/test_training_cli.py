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
    code = main(["train", "--data", str(small_file), "--models-dir", str(models_dir), "--json", str(out),
                 "--folds", "2", "--test-size", "300"])
    assert code == 0
    return models_dir, json.loads(out.read_text())


def test_train_json_has_the_documented_keys(trained) -> None:
    _, report = trained
    assert {"version", "regime", "signal", "seconds"} <= set(report)
    assert set(report["signal"]) >= SIGNAL_KEYS
    assert set(report["signal"]["baselines"]) == {"majority", "previous_bar"}
    folds = report["signal"]["folds"]
    assert len(folds) == 2 and all(f["test_rows"] == 300 for f in folds)
    assert folds[0]["test_to"] < folds[1]["test_from"]
    assert 0.0 <= report["signal"]["auc"] <= 1.0 and report["signal"]["n"] == 600
    assert set(report["regime"]["state_shares"]) == {"low", "medium", "high"}
    assert isinstance(report["signal"]["beats_baselines"], bool) and report["signal"]["verdict"]


def test_train_writes_an_active_version(trained) -> None:
    models_dir, report = trained
    reg = ModelRegistry(models_dir)
    assert report["version"] == "v001" and report["activated"] is True
    assert reg.active_version() == "v001"
    meta = reg.metadata("v001")
    assert meta["label"]["horizon"] == 1 and meta["data"]["bars"] == 2600 and len(meta["data"]["hash"]) == 16
    assert meta["data"]["train_to"] < meta["data"]["holdout_from"]


def test_evaluate_json_to_stdout(trained, newer_file: Path, capsys) -> None:
    models_dir, _ = trained
    capsys.readouterr()
    assert main(["evaluate", "--data", str(newer_file), "--models-dir", str(models_dir), "--json", "-"]) == 0
    out = capsys.readouterr().out
    payload = json.loads(out)  # stdout holds exactly one JSON object; the readable report went to stderr
    assert {"auc", "accuracy", "log_loss", "brier", "n"} <= set(payload)
    assert payload["n"] == 700 - 112 - 1  # 112 regime warm-up bars and the unlabeled last bar
    assert payload["version"] == "v001" and payload["rows_inside_training_range"] == 0


def test_evaluate_without_a_model_is_a_clear_error(newer_file: Path, tmp_path, capsys) -> None:
    assert main(["evaluate", "--data", str(newer_file), "--models-dir", str(tmp_path)]) == 2
    assert "no active model" in capsys.readouterr().err


def test_train_refuses_too_little_data(shared_bars: pl.DataFrame, tmp_path, capsys) -> None:
    path = tmp_path / "tiny.parquet"
    shared_bars.head(900).write_parquet(path)
    assert main(["train", "--data", str(path), "--models-dir", str(tmp_path / "m")]) == 2
    assert "too few" in capsys.readouterr().err
    assert ModelRegistry(tmp_path / "m").versions() == []


def test_plan_splits_shrinks_blocks_for_short_histories() -> None:
    full = plan_splits(12_000, 4, 1000, 1000, 50)
    assert [len(s.test) for s in full] == [1000] * 4
    short = plan_splits(2500, 4, 1000, 1000, 50)
    assert len(short) == 4 and short[-1].test.stop == 2500 and len(short[0].test) == (2500 - 100) // 7


def test_a_worse_model_is_kept_as_rejected(shared_bars: pl.DataFrame, tmp_path) -> None:
    reg = ModelRegistry(tmp_path)
    bars = shared_bars.slice(0, 2400)
    first = train_models(bars, registry=reg, n_folds=2, test_size=300, hmm_seeds=(42,), fold_hmm_seeds=(42,))
    assert first.activated
    second = train_models(bars, registry=reg, n_folds=2, test_size=300, hmm_seeds=(42,), fold_hmm_seeds=(42,),
                          min_auc=0.99)
    assert not second.activated and "below the floor" in second.activation_reason
    assert reg.active_version() == first.version
    assert reg.metadata(second.version)["status"] == "rejected"


def test_train_report_reads_at_80_columns(trained) -> None:
    import io

    from rich.console import Console

    from models.training import TrainReport, _print_train

    _, report = trained
    buf = io.StringIO()
    _print_train(Console(file=buf, width=80), TrainReport(**report))
    text = buf.getvalue()
    assert "…" not in text and "prev AUC" in text
    assert max(len(line) for line in text.splitlines()) <= 80
