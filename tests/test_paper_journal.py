"""The paper account's journal (trading/broker/paper_journal.py): every change a caller was told of
survives a kill -9, a torn last record is skipped with a warning, a corrupt earlier one is refused, and
compaction keeps the files small without changing what is read back."""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from trading.broker.base import BrokerError, BrokerErrorKind
from trading.broker.paper import PaperBroker
from trading.domain import Side, Tick

ROOT = Path(__file__).resolve().parents[1]
CHILD = ROOT / "tests" / "paper_crash_child.py"
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def tick(bid: float, minutes: float) -> Tick:
    return Tick(T0 + timedelta(minutes=minutes), bid, round(bid + 0.2, 2))


def child(path: Path, seed: int, lockstep: bool) -> subprocess.Popen[str]:
    args = [sys.executable, str(CHILD), str(path), str(seed)] + (["lockstep"] if lockstep else [])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)


def reloaded(path: Path) -> dict:
    return PaperBroker(state_path=path, commission_per_lot=1.0).to_state()


def consistent(state: dict) -> None:
    """The balance is the start plus every deal's net; every position is its IN less its OUT deals."""
    deals = state["deals"]
    assert state["account"]["balance"] == pytest.approx(
        10_000.0 + sum(d["profit"] + d["commission"] for d in deals), abs=0.011 * (len(deals) + 1)
    )
    for pos in state["positions"]:
        ins = sum(d["volume"] for d in deals if d["position_ticket"] == pos["ticket"] and d["entry"] == "IN")
        outs = sum(
            d["volume"] for d in deals if d["position_ticket"] == pos["ticket"] and d["entry"] == "OUT"
        )
        assert pos["volume"] == pytest.approx(ins - outs)


def test_a_kill_at_a_told_state_reloads_exactly_that_state(tmp_path: Path) -> None:
    path = tmp_path / "account.json"
    proc = child(path, seed=7, lockstep=True)
    assert proc.stdin is not None and proc.stdout is not None
    told = []
    for _ in range(150):  # past several compactions (every 40 records in the child)
        told.append(json.loads(proc.stdout.readline()))
        proc.stdin.write("\n")
        proc.stdin.flush()
    told.append(json.loads(proc.stdout.readline()))  # the child now waits with this state told
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    state = reloaded(path)
    assert state == told[-1]
    assert len(state["deals"]) > 40 and state["positions"] is not None
    consistent(state)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_kill_mid_trading_keeps_everything_told(tmp_path: Path, seed: int) -> None:
    """Killed while it trades flat out: whatever it had told stays, at most the change it was making
    when it died comes on top, and the account adds up."""
    path = tmp_path / "account.json"
    proc = child(path, seed=seed, lockstep=False)
    assert proc.stdout is not None
    wanted = random.Random(seed).randint(60, 400)
    told = [json.loads(proc.stdout.readline()) for _ in range(wanted)]
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    for line in proc.stdout:  # told before it died, still in the pipe
        if line.strip():
            told.append(json.loads(line))
    last = told[-1]
    state = reloaded(path)
    assert state["deals"][: len(last["deals"])] == last["deals"]
    assert last["next_ticket"] <= state["next_ticket"] <= last["next_ticket"] + 1
    assert len(state["deals"]) - len(last["deals"]) <= 8  # one change: an order, or one price's fills
    if state["next_deal"] == last["next_deal"] and state["next_ticket"] == last["next_ticket"]:
        # no deal since: the same account, or a stop moved by the change it died in
        assert {p["ticket"] for p in state["positions"]} == {p["ticket"] for p in last["positions"]}
    consistent(state)


async def trade(broker: PaperBroker, n: int, start: float = 0.0) -> None:
    for i in range(n):
        broker.set_tick(tick(2000.0 + (i % 7) * 0.5, start + i))
        if i % 3 == 0:
            await broker.open_market(Side.BUY, 0.02, 1990.0, 2010.0)
        elif i % 3 == 1:
            await broker.close_position(broker.positions_now()[0].ticket, 0.01)
        else:
            pos = broker.positions_now()[-1]
            await broker.modify_position(pos.ticket, 1991.0 + (i % 5) * 0.1, 2010.0)


async def test_a_torn_last_record_is_skipped_with_a_warning(tmp_path: Path, caplog) -> None:
    path = tmp_path / "account.json"
    broker = PaperBroker(state_path=path)
    await broker.connect()
    await trade(broker, 12)
    expected = broker.to_state()
    journal = path.with_name("account.json.journal")
    assert journal.stat().st_size > 0
    with journal.open("ab") as fh:
        fh.write(b'{"seq": 9999, "balance": 1.0, "next_tic')  # killed in the middle of a write
    with caplog.at_level(logging.WARNING):
        again = PaperBroker(state_path=path)
    assert again.to_state() == expected
    assert "torn or corrupt last record" in caplog.text
    assert journal.stat().st_size == 0  # compacted at load: the torn bytes are gone
    await again.connect()
    await trade(again, 6, start=100)
    assert PaperBroker(state_path=path).to_state() == again.to_state()


async def test_a_corrupt_record_before_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "account.json"
    broker = PaperBroker(state_path=path)
    await broker.connect()
    await trade(broker, 9)
    journal = path.with_name("account.json.journal")
    lines = journal.read_bytes().splitlines()
    assert len(lines) >= 3
    lines[1] = b'{"seq": oops'
    journal.write_bytes(b"\n".join(lines) + b"\n")
    with pytest.raises(BrokerError, match="record 2 of") as err:
        PaperBroker(state_path=path)
    assert err.value.kind is BrokerErrorKind.CONFIG
    assert journal.read_bytes().splitlines()[1] == b'{"seq": oops'  # left for a person to mend


async def test_compaction_keeps_the_journal_short_and_the_account_the_same(tmp_path: Path) -> None:
    path = tmp_path / "account.json"
    broker = PaperBroker(state_path=path)
    assert broker.journal is not None
    broker.journal.compact_every = 5
    await broker.connect()
    await trade(broker, 40)
    journal = path.with_name("account.json.journal")
    assert len(journal.read_bytes().splitlines()) <= 5
    assert json.loads(path.read_text())["journal_seq"] > 0
    assert PaperBroker(state_path=path).to_state() == broker.to_state()


async def test_a_record_the_snapshot_already_holds_is_not_applied_twice(tmp_path: Path) -> None:
    """Killed between the snapshot's rename and the journal's truncation: the old records stay, and
    their sequence numbers show the snapshot already holds them."""
    path = tmp_path / "account.json"
    broker = PaperBroker(state_path=path)
    await broker.connect()
    await trade(broker, 10)
    journal = path.with_name("account.json.journal")
    old = journal.read_bytes()
    assert broker.journal is not None
    broker.journal.compact(broker.account_state())
    journal.write_bytes(old)
    assert PaperBroker(state_path=path).to_state() == broker.to_state()


async def test_a_restored_account_is_written_whole(tmp_path: Path) -> None:
    path = tmp_path / "account.json"
    other = PaperBroker()
    await other.connect()
    await trade(other, 7)
    broker = PaperBroker(state_path=path)
    await broker.connect()
    await trade(broker, 4)
    broker.from_state(other.to_state())
    broker.set_tick(tick(1990.0, 50))  # the stops of the restored positions
    assert PaperBroker(state_path=path).to_state() == broker.to_state()
