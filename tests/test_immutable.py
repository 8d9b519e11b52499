"""`immutable` records: frozen to the type checker, plain slots dataclasses at run time."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import pytest

from trading.domain import Tick
from trading.immutable import immutable

ROOT = Path(__file__).resolve().parents[1]


def test_an_immutable_record_is_a_slots_dataclass_copied_by_replace() -> None:
    tick = Tick(datetime(2025, 6, 2, tzinfo=UTC), 3300.0, 3300.2)
    moved = dataclasses.replace(tick, bid=3301.0)
    assert (tick.bid, moved.bid) == (3300.0, 3301.0)
    assert not hasattr(tick, "__dict__")  # slots
    with pytest.raises(TypeError):
        hash(tick)  # never a dict key: a plain dataclass with eq is not hashable


def test_keyword_only_records() -> None:
    @immutable(kw_only=True)
    class Base:
        why: str = ""

    @immutable
    class Child(Base):
        x: float

    assert Child(1.0, why="w") == Child(why="w", x=1.0)
    with pytest.raises(TypeError):
        Base("w")  # type: ignore[misc]


def test_the_type_checker_refuses_a_change_to_a_record(tmp_path: Path) -> None:
    mypy_api = pytest.importorskip("mypy.api")
    code = tmp_path / "change.py"
    code.write_text(
        "from datetime import UTC, datetime\n"
        "from trading.domain import Position, Side, Tick\n"
        "tick = Tick(datetime.now(UTC), 1.0, 1.1)\n"
        "tick.bid = 2.0\n"
        "def move(p: Position) -> None:\n"
        "    p.sl = 3.0\n"
    )
    out, _err, status = mypy_api.run(
        [str(code), "--strict", "--no-incremental", "--follow-imports=silent", "--cache-dir=/dev/null"]
    )
    assert status == 1, out
    assert 'Property "bid" defined in "Tick" is read-only' in out
    assert 'Property "sl" defined in "Position" is read-only' in out
