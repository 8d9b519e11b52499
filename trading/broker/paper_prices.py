"""Which prices a paper account takes (`PaperBroker.set_tick`, `set_quiet_tick`)."""

from __future__ import annotations

import math
from datetime import datetime

from trading.domain import Tick


def takes(tick: Tick, last: Tick | None, market_time: datetime | None) -> bool:
    """Whether an account whose last price is `last`, at market time `market_time`, takes `tick`
    (checked by `check_tick` first): never one older than either (a restarted market never goes back
    before what the account has seen)."""
    check_tick(tick)
    if last is not None and tick.time < last.time:
        return False
    return market_time is None or tick.time >= market_time


def check_tick(tick: Tick) -> None:
    """Raise on a price no account takes: not a `Tick`, a naive time, a bid or ask not finite, a bid
    at or under 0, an ask under the bid."""
    if not isinstance(tick, Tick):
        raise TypeError(f"set_tick needs a Tick, got {type(tick).__name__}")
    if tick.time.tzinfo is None:
        raise ValueError(f"tick time must be aware UTC, got naive {tick.time}")
    if not (math.isfinite(tick.bid) and math.isfinite(tick.ask)) or tick.bid <= 0 or tick.ask < tick.bid:
        raise ValueError(f"bad tick: bid {tick.bid}, ask {tick.ask}")
