"""Auto-trainer: the retrain decision table, a real worker-process run (accept and reject), failure, rollback."""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from models.autotrainer import AutoTrainer, AutoTrainerConfig, _init_worker, ensure_models
from models.registry import ModelRegistry, ModelSlot
from trading.events import Event, EventKind

# Tuesday 2025-07-15 05:10 WIB == 2025-07-14 22:10 UTC
TUE_0510_WIB = datetime(2025, 7, 14, 22, 10, tzinfo=UTC)
SAT_0510_WIB = datetime(2025, 7, 18, 22, 10, tzinfo=UTC)
TUE_1200_WIB = datetime(2025, 7, 15, 5, 0, tzinfo=UTC)


def trainer(tmp_path, last: datetime | None = None, **cfg) -> AutoTrainer:
    return AutoTrainer(
        ModelRegistry(tmp_path),
        ModelSlot(),
        lambda n: pl.DataFrame(),
        AutoTrainerConfig(**cfg),
        last_success=last,
    )


@pytest.mark.parametrize(
    ("now", "hours_ago", "state", "kind"),
    [
        (TUE_1200_WIB, None, {}, "first"),
        (TUE_1200_WIB, None, {"market_open": True}, ""),
        (TUE_1200_WIB, None, {"open_positions": 1}, ""),
        (TUE_0510_WIB, 10, {}, ""),  # in the window but < 20 h since the last retrain
        (TUE_0510_WIB, 21, {}, "daily"),
        (SAT_0510_WIB, 21, {}, "weekend"),
        (TUE_1200_WIB, 21, {}, ""),  # outside the window, not yet overdue
        (TUE_1200_WIB, 25, {}, "overdue"),
        (TUE_1200_WIB, 5, {"recent_auc": 0.55}, "low_auc"),
        (TUE_1200_WIB, 3, {"recent_auc": 0.55}, ""),  # low AUC but < 4 h since the last retrain
        (TUE_1200_WIB, 5, {"recent_auc": 0.70}, ""),
    ],
)
def test_should_retrain_decision_table(tmp_path, now, hours_ago, state, kind) -> None:
    last = None if hours_ago is None else now - timedelta(hours=hours_ago)
    decision = trainer(tmp_path, last).should_retrain(now, **state)
    assert decision.kind == kind and decision.retrain == bool(kind), decision.reason


def test_manual_trigger_overrides_the_schedule_and_market(tmp_path) -> None:
    t = trainer(tmp_path, TUE_1200_WIB - timedelta(hours=1))
    t.request_manual("chat:42")
    d = t.should_retrain(TUE_1200_WIB, market_open=True, open_positions=2)
    assert d.retrain and d.kind == "manual" and "chat:42" in d.reason
    with pytest.raises(ValueError, match="timezone-aware"):
        t.should_retrain(datetime(2025, 7, 15, 12, 0))


def test_conditions_can_be_switched_off(tmp_path) -> None:
    t = trainer(tmp_path, None, require_market_closed=False, require_flat=False)
    assert t.should_retrain(TUE_1200_WIB, market_open=True, open_positions=1).kind == "first"


def test_too_few_bars_fails_and_waits_before_retrying(tmp_path) -> None:
    t = trainer(tmp_path)
    outcome = t.start("first", now=TUE_1200_WIB).result(timeout=5)
    assert not outcome.accepted and "retrain aborted" in (outcome.error or "")
    assert t.last_failed and t.last_success is None and not t.running
    later = t.should_retrain(TUE_1200_WIB + timedelta(minutes=30))
    assert not later.retrain and "failed" in later.reason
    assert t.should_retrain(TUE_1200_WIB + timedelta(hours=2)).kind == "first"


def _edge_shown(monkeypatch) -> None:
    """Pretend the out-of-sample verdict found an edge (the real data here shows none)."""
    import models.training as training

    real = training.edge_verdict

    def shown(*args):
        return {**real(*args), "demonstrated": True}

    monkeypatch.setattr(training, "edge_verdict", shown)


def test_worker_process_run_rejects_no_edge_then_accepts_then_rejects_then_rolls_back(
    shared_bars: pl.DataFrame, tmp_path, monkeypatch
) -> None:
    bars = shared_bars.slice(0, 2400)
    events: list[Event] = []
    stages: list[str] = []
    slot = ModelSlot()
    cfg = AutoTrainerConfig(n_folds=2, test_size=80, min_auc=None, min_bars=1000)
    t = AutoTrainer(
        ModelRegistry(tmp_path),
        slot,
        lambda n: bars.tail(n),
        cfg,
        on_progress=lambda stage, pct: stages.append(stage),
        on_event=events.append,
    )

    # a real worker process: these bars show no edge, so the same rule as `train` keeps it off
    first = t.check(TUE_1200_WIB)
    assert first is not None and t.running
    outcome = first.result(timeout=180)
    assert outcome.error is None, outcome.error
    assert not outcome.accepted and "no demonstrated edge" in outcome.reason and outcome.version == "v001"
    assert slot.current is None and t.registry.active_version() is None
    assert t.registry.metadata("v001")["status"] == "rejected"
    assert events[-1].kind is EventKind.INFO and "rejected" in events[-1].text
    assert "fold 1/2" in stages and "saving" in stages and stages[-1] == "done"
    assert t.last_success == TUE_1200_WIB and not t.running

    # the other paths run in a thread (same code path; the patched verdict is visible there)
    _edge_shown(monkeypatch)
    t.executor_factory = lambda q: ThreadPoolExecutor(1, initializer=_init_worker, initargs=(q,))
    t.request_manual("chat:1")
    accepted = t.check(TUE_1200_WIB + timedelta(hours=1)).result(timeout=180)
    assert accepted.accepted and accepted.version == "v002" and accepted.old_version is None
    assert slot.current is not None and slot.current.version == "v002"
    assert events[-1].kind is EventKind.MODEL_SWAPPED and events[-1].data["new_version"] == "v002"

    t.config = dataclasses.replace(cfg, min_auc=0.99)
    t.request_manual("chat:1")
    rejected = t.check(TUE_1200_WIB + timedelta(hours=2)).result(timeout=180)
    assert not rejected.accepted and "below the floor" in rejected.reason and rejected.version == "v003"
    assert slot.current.version == "v002" and t.registry.active_version() == "v002"
    assert t.registry.metadata("v003")["status"] == "rejected"

    t.registry.activate("v003", by="test")
    assert t.rollback(by="chat:1") == "v002"
    assert slot.current.version == "v002" and events[-1].data["old_version"] == "v003"


def test_ensure_models_trains_or_falls_back_to_smc_only(shared_bars: pl.DataFrame, tmp_path) -> None:
    reg = ModelRegistry(tmp_path)
    bundle, warning = ensure_models(reg, None, train_if_missing=False)
    assert bundle is None and "no trained model" in warning and "SMC-only" in warning
    bundle, warning = ensure_models(reg, shared_bars.head(1500), train_if_missing=True, min_bars=2000)
    assert bundle is None and "too few bars" in warning
    # start-up training follows the same rule: no demonstrated edge, nothing goes live by itself
    bundle, warning = ensure_models(reg, shared_bars.slice(0, 2400), train_if_missing=True, min_bars=2000)
    assert bundle is None and "no demonstrated edge" in warning and "SMC-only" in warning
    assert reg.versions() == ["v001"] and reg.active_version() is None
    reg.activate("v001", by="test")  # what `train --activate` does
    assert ensure_models(reg, None, train_if_missing=False)[0].version == "v001"
    (tmp_path / "v001" / "regime.json").write_text("{}")
    bundle, warning = ensure_models(reg, None, train_if_missing=False)
    assert bundle is None and "cannot be loaded" in warning
