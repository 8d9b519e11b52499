"""The engine is live behaviour only: it and its parts import no paper broker and switch on no backtest
mode from the recorder; each is a small file. The backtest's shortcuts reach it through `EnginePort`;
its parts reach it through `EngineHost`, which it fills in."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.test_layers_trading import imported_modules

ROOT = Path(__file__).resolve().parents[1]
ENGINE_PARTS = [
    "engine",
    "position_watch",
    "close_booking",
    "risk_commands",
    "saved_state",
    "order_entry",
    "engine_host",
    "engine_snapshot",
    "position_inputs",
    "flash_crash",
]


@pytest.mark.parametrize("part", ENGINE_PARTS)
def test_engine_parts_import_no_paper_broker_and_stay_small(part: str) -> None:
    path = ROOT / "trading" / f"{part}.py"
    text = path.read_text()
    assert "trading.broker.paper" not in imported_modules(path)
    assert "PaperBroker" not in text and "keep_decisions" not in text
    assert len(text.splitlines()) < 500


def test_the_engine_satisfies_the_loop_port() -> None:
    """Every member `LoopEngine` (and so `EnginePort`) lists exists on `TradingEngine` (no type checker
    runs yet, so this pins the port's names)."""
    from trading.engine import TradingEngine
    from trading.simulation import LoopEngine

    members = {
        n
        for cls in LoopEngine.__mro__
        if cls.__module__.startswith("trading.")
        for n in (*vars(cls), *getattr(cls, "__annotations__", {}))
        if not n.startswith("_")
    }  # the port names no private member
    assert {"judge", "position_inputs", "flash_window", "on_tick", "on_bar"} <= members
    engine_attrs = {"params", "limits", "state", "account", "positions", "last_tick", "flash_window"}
    for name in members - engine_attrs:
        assert callable(getattr(TradingEngine, name, None)), name
    init = ast.unparse(ast.parse((ROOT / "trading" / "engine.py").read_text()))
    for name in engine_attrs:
        assert f"self.{name} = " in init or f"self.{name}: " in init, name


def test_the_engine_sets_everything_its_parts_declare_they_use() -> None:
    """`EngineHost`'s attributes are annotations only: a built engine has each of them (the type checker
    sees the abstract steps; this sees the state)."""
    from tests.engine_fixtures import analysis
    from trading.engine import TradingEngine
    from trading.engine_host import EngineHost

    declared = set(EngineHost.__annotations__)
    engine = TradingEngine(object(), lambda bars: analysis())  # type: ignore[arg-type]  # no broker call
    missing = {n for n in declared if not hasattr(engine, n)}
    assert not missing, missing
    assert TradingEngine.__abstractmethods__ == frozenset()
    parts = [
        c for c in TradingEngine.__mro__ if issubclass(c, EngineHost) and c not in (TradingEngine, EngineHost)
    ]
    assert TradingEngine.__mro__.index(EngineHost) > max(TradingEngine.__mro__.index(c) for c in parts)
