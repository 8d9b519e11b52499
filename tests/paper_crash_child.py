"""A paper account trading at random until it is killed (tests/test_paper_journal.py).

`python tests/paper_crash_child.py STATE_PATH SEED [lockstep]`: after every change of the account it
prints the account (`to_state()`, one JSON line): what the caller was told. In lockstep it then waits
for a line on stdin before the next change, so the parent can kill it at a known state.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trading.broker.base import BrokerError
from trading.broker.paper import PaperBroker
from trading.domain import Side, Tick

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


async def main(path: str, seed: int, lockstep: bool) -> None:
    broker = PaperBroker(state_path=path, commission_per_lot=1.0, balance=10_000.0)
    broker.journal.compact_every = 40  # compactions happen mid-run too
    await broker.connect()
    rng = random.Random(seed)
    bid, when = 2000.0, T0
    while True:
        when += timedelta(seconds=rng.randint(1, 30))
        bid = round(max(1500.0, bid + rng.uniform(-1.5, 1.5)), 2)
        changed = bool(broker.set_tick(Tick(when, bid, round(bid + 0.2, 2))))
        positions = broker.positions_now()
        roll = rng.random()
        try:
            if roll < 0.3 and len(positions) < 6:
                side = rng.choice([Side.BUY, Side.SELL])
                sl, tp = rng.uniform(0.5, 4.0), rng.uniform(0.5, 4.0)
                price = bid + 0.2 if side is Side.BUY else bid
                await broker.open_market(
                    side, rng.choice([0.01, 0.05, 0.1]), price - side.sign * sl, price + side.sign * tp
                )
                changed = True
            elif roll < 0.45 and positions:
                pos = rng.choice(positions)
                await broker.close_position(
                    pos.ticket, None if pos.volume <= 0.01 else rng.choice([None, 0.01])
                )
                changed = True
            elif roll < 0.55 and positions:
                pos = rng.choice(positions)
                close = bid if pos.side is Side.BUY else bid + 0.2
                await broker.modify_position(pos.ticket, round(close - pos.side.sign * 3.0, 2), pos.tp)
                changed = True
        except BrokerError:
            pass
        if changed:
            print(json.dumps(broker.to_state()), flush=True)
            if lockstep:
                sys.stdin.readline()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), len(sys.argv) > 3))
