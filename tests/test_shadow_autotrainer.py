"""The auto-trainer's new model goes to shadow first: stored, not activated, started as a challenger."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import polars as pl
import pytest

import models.training
from models.autotrainer import AutoTrainer, AutoTrainerConfig, _init_worker
from models.registry import ModelRegistry, ModelSlot
from trading.events import Event, EventKind

RESULT = {
    "version": "v004",
    "activated": False,
    "activation_reason": "not activated (--no-activate)",
    "signal": {"auc": 0.6, "holdout": {"auc": 0.58}},
    "seconds": 3.0,
}


def fake_training(monkeypatch: pytest.MonkeyPatch, seen: dict[str, Any]) -> None:
    def train_models(
        bars: pl.DataFrame, models_dir: str, *, progress: Any, activate: bool, **options: Any
    ) -> Any:
        seen["activate"] = activate
        return SimpleNamespace(to_json_dict=lambda: dict(RESULT))

    monkeypatch.setattr(models.training, "train_models", train_models)


def test_a_retrained_model_is_stored_and_started_in_shadow_never_live(tmp_path, monkeypatch) -> None:
    seen: dict[str, Any] = {}
    fake_training(monkeypatch, seen)
    events: list[Event] = []
    slot = ModelSlot()
    handed: list[str] = []

    def to_shadow(version: str) -> str:
        handed.append(version)
        return "trading in shadow as challenger #2; /shadow shows how it does"

    bars = pl.DataFrame({"x": list(range(1200))})
    t = AutoTrainer(
        ModelRegistry(tmp_path),
        slot,
        lambda n: bars,
        AutoTrainerConfig(min_bars=1000),
        on_event=events.append,
        to_shadow=to_shadow,
        executor_factory=lambda q: ThreadPoolExecutor(1, initializer=_init_worker, initargs=(q,)),
    )
    outcome = t.start("manual", by="chat", now=datetime(2026, 3, 10, tzinfo=UTC)).result(timeout=30)
    assert seen["activate"] is False  # the worker stores it without activating
    assert handed == ["v004"] and slot.current is None and not outcome.accepted
    assert (
        outcome.reason
        == "stored as v004, not live: trading in shadow as challenger #2; /shadow shows how it does"
    )
    assert events[-1].kind is EventKind.INFO and "challenger #2" in events[-1].text


def test_a_full_shadow_still_keeps_the_model_and_says_how_to_start_it(tmp_path) -> None:
    def full(version: str) -> str:
        raise ValueError("3 challengers already run (the most allowed)")

    t = AutoTrainer(ModelRegistry(tmp_path), ModelSlot(), lambda n: pl.DataFrame(), to_shadow=full)
    outcome = t._apply(dict(RESULT), "daily", "scheduler", None)
    assert not outcome.accepted and "3 challengers already run" in outcome.reason
    assert "/shadow add v004 starts it" in outcome.reason


def test_without_shadow_the_trainer_behaves_as_before(tmp_path, monkeypatch) -> None:
    seen: dict[str, Any] = {}
    fake_training(monkeypatch, seen)
    from models.autotrainer import _train_job

    _train_job(pl.DataFrame(), str(tmp_path), {"num_boost_round": 5})
    assert seen["activate"] is True
