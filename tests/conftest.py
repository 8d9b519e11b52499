"""Shared fixtures. The real data file lives in ../shared/data (CI has it beside the clone)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import pytest

if TYPE_CHECKING:
    from tests.fake_telegram import FakeTelegramServer

ROOT = Path(__file__).resolve().parents[1]
SHARED_BARS = ROOT.parent / "shared" / "data" / "xauusd_m15.parquet"


@pytest.fixture(scope="session")
def shared_bars_path() -> Path:
    if not SHARED_BARS.exists():
        pytest.skip(f"shared data not found at {SHARED_BARS}")
    return SHARED_BARS


@pytest.fixture(scope="session")
def shared_bars(shared_bars_path: Path) -> pl.DataFrame:
    """The 12,000 real XAUUSD M15 bars, validated, time in UTC."""
    from trading.bars import load_bars

    return load_bars(shared_bars_path)


@pytest.fixture
async def fake_telegram() -> AsyncIterator[FakeTelegramServer]:
    """A running fake Telegram Bot API on 127.0.0.1 (see tests/fake_telegram.py); `.bot()` gives an aiogram Bot."""
    from tests.fake_telegram import FakeTelegramServer

    async with FakeTelegramServer() as server:
        yield server


@pytest.fixture(autouse=True)
def _live_market_clock() -> None:
    """Every test starts with a live clock label: an app started by an earlier test sets its replay speed."""
    from handlers.clock import set_market_replay

    set_market_replay(None)


@pytest.fixture(autouse=True)
def _no_names_remembered() -> None:
    """People's names and the console's actors are process-wide: an earlier test's console must not make
    a later test's Telegram user "you"."""
    from handlers.names import forget_all

    forget_all()
