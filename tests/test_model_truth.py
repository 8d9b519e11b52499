"""What the bot says about its model (issue 20, item 4): with a missing version, a corrupt model file or a
corrupt registry pointer the bot trades SMC-only, and `/model`, `/health` and `/version` say so (and
why), instead of repeating the registry's pointer."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.app import App
from bot.config import load_settings
from handlers.clock import set_market_replay
from handlers.model import model_report, model_text
from models.dataset import SIGNAL_FEATURES
from models.registry import ModelRegistry, ModelSlot


@pytest.fixture(autouse=True)
def no_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith(("TELEGRAM_", "BROKER", "RISK_", "PAPER_", "DATABASE_PATH", "MODELS_DIR")):
            monkeypatch.delenv(name)
    yield
    set_market_replay(None)  # an app labels the clock lines of its replay; later tests expect none


def point_at(models: Path, version: str) -> None:
    models.mkdir(parents=True, exist_ok=True)
    (models / "active").write_text(json.dumps({"version": version, "history": []}))


def corrupt_version(models: Path, version: str = "v001") -> None:
    """A version whose metadata is fine and whose booster file is garbage (a disk error, a bad copy)."""
    d = models / version
    d.mkdir(parents=True)
    (d / "metadata.json").write_text(
        json.dumps(
            {
                "version": version,
                "feature_names": list(SIGNAL_FEATURES),
                "status": "active",
                "metrics": {"auc": 0.61},
            }
        )
    )
    (d / "signal.ubj").write_bytes(b"\x00not a booster")
    (d / "signal.json").write_text("{}")
    (d / "regime.json").write_text("{")
    point_at(models, version)


async def console(app: App, line: str, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert app.console is not None
    await app.console.handle_line(line)
    return capsys.readouterr().out


@pytest.mark.parametrize(
    "breakage, named, why",
    [
        (lambda m: point_at(m, "v999"), "v999", "v999 not found"),
        (corrupt_version, "v001", "v001 cannot be loaded"),
    ],
)
async def test_model_and_health_report_the_model_loaded_not_the_pointer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], breakage: Any, named: str, why: str
) -> None:
    models = tmp_path / "models"
    breakage(models)
    settings = load_settings(
        None,
        database_path=tmp_path / "x.db",
        models_dir=models,
        paper_replay_speed=3000,
        market_update_minutes=0,
        hourly_analysis=False,
        daily_summary=False,
        auto_retrain=False,
    )
    app = App(settings, console_input=False)
    await app.start()
    app.scheduler.pause()
    try:
        assert app.slot.current is None  # trading SMC-only
        model = await console(app, "/model", capsys)
        assert "No model: SMC-only" in model and f"MODEL {named}" not in model
        assert named in model and why in model
        health = await console(app, "/health", capsys)
        assert f"Model: {named}" not in health and "✅ Model" not in health
        assert "⚠️ Model: none (SMC-only)" in health and why in health
        version = await console(app, "/version", capsys)
        assert "Model none (SMC-only)" in version
    finally:
        await app.shutdown("test")


def test_a_corrupt_pointer_is_reported_as_unreadable(tmp_path: Path) -> None:
    (tmp_path / "active").write_text("{not json")
    registry = ModelRegistry(tmp_path)
    slot = ModelSlot(None, note="model registry unreadable: Expecting property name")
    report = model_report(registry, slot)
    assert report.version is None and "unreadable" in report.problem
    assert "No model: SMC-only" in model_text(registry, slot) and "unreadable" in model_text(registry, slot)


def test_a_pointer_moved_after_start_up_is_not_shown_as_loaded(tmp_path: Path) -> None:
    class Bundle:
        version, metadata = "v001", {"metrics": {"auc": 0.6}}

    point_at(tmp_path, "v002")
    report = model_report(ModelRegistry(tmp_path), ModelSlot(Bundle()))  # type: ignore[arg-type]
    assert report.version == "v001" and "still runs v001" in report.problem
    text = model_text(ModelRegistry(tmp_path), ModelSlot(Bundle()))  # type: ignore[arg-type]
    assert "<code>v001</code> (loaded)" in text and "names v002 active" in text


def test_agreeing_slot_and_pointer_is_healthy(tmp_path: Path) -> None:
    class Bundle:
        version, metadata = "v003", {}

    point_at(tmp_path, "v003")
    report = model_report(ModelRegistry(tmp_path), ModelSlot(Bundle()))  # type: ignore[arg-type]
    assert (report.version, report.pointer, report.problem) == ("v003", "v003", "")
