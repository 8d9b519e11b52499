"""The paper account on disk, written incrementally: a snapshot and a journal of the changes since.

`account.json` (the snapshot, `paper_state.state_to_json` plus the last journal record it holds) is
replaced atomically now and then; `account.json.journal` gets one small JSON line per change (the new
balance and counters, the positions put or removed, the new deals). A change is written to the file
before the broker's call returns, so a kill -9 keeps every change a caller was told of; the fsync that
also keeps it through a power cut runs at once in a background thread (`Syncer`), off the event loop.
Loading replays the journal over the snapshot and compacts; a torn or corrupt last record (a kill in
the middle of a write) is skipped with a warning, a corrupt record before others is refused.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from pathlib import Path
from typing import Any, BinaryIO

from trading.broker.base import BrokerError, BrokerErrorKind
from trading.broker.paper_host import AccountState
from trading.broker.paper_state import (
    aware_time,
    check_account,
    record_from_json,
    record_to_json,
    state_from_json,
    state_to_json,
)
from trading.domain import Deal, Position

log = logging.getLogger(__name__)

COMPACT_EVERY = 1000  # journal records before the snapshot is rewritten (also at every load)


class Syncer:
    """fsyncs files in one background thread; requests for the same file while one waits are merged."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: set[int] = set()
        self._busy = 0
        self._wake = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None

    def request(self, fd: int) -> None:
        with self._lock:
            self._pending.add(fd)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="paper-fsync", daemon=True)
                self._thread.start()
            self._wake.notify_all()

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._pending:
                    self._wake.wait()
                fds, self._pending = self._pending, set()
                self._busy = len(fds)
            for fd in fds:
                with contextlib.suppress(OSError):  # closed meanwhile: its owner synced it on closing
                    os.fsync(fd)
            with self._lock:
                self._busy = 0
                self._wake.notify_all()


SYNCER = Syncer()


class PaperJournal:
    """The snapshot and journal of one paper account (`path` is the snapshot, e.g. `account.json`)."""

    def __init__(
        self, path: Path, symbol: str, magic: int, login: int, *, compact_every: int = COMPACT_EVERY
    ) -> None:
        self.path = Path(path)
        self.log_path = self.path.with_name(self.path.name + ".journal")
        self.symbol, self.magic, self.login = symbol, magic, login
        self.compact_every = compact_every
        self.records = 0  # journal records since the snapshot
        self.skipped = ""  # why the last record was skipped at load, if it was
        self._seq = 0
        self._file: BinaryIO | None = None
        self._positions: dict[int, Position] = {}  # the account as the files hold it
        self._deals = 0
        self._rebased = True  # the next change writes a snapshot

    # ---- loading ---------------------------------------------------------------------------

    def load(self) -> AccountState | None:
        """The saved account (snapshot plus journal), compacted to a new snapshot; None when there is none.
        BrokerError(CONFIG) when the files cannot be read back."""
        read = self.read()
        if read is None:
            return None
        self.compact(read[0])
        return read[0]

    def read(self) -> tuple[AccountState, dict[str, Any]] | None:
        """The saved account and its snapshot's JSON, written nowhere; None when there is none."""
        if not self.path.exists():
            if self.log_path.exists() and self.log_path.stat().st_size:
                raise BrokerError(
                    BrokerErrorKind.CONFIG, f"paper journal {self.log_path} has no snapshot {self.path}"
                )
            return None
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise BrokerError(
                BrokerErrorKind.CONFIG, f"paper state file {self.path} is unreadable: {exc}"
            ) from exc
        account = state_from_json(data, self.symbol)
        self._seq = int(data.get("journal_seq", 0))
        self._replay(account)
        return account, data

    def _replay(self, account: AccountState) -> None:
        lines = self.log_path.read_bytes().splitlines() if self.log_path.exists() else []
        lines = [line for line in lines if line.strip()]
        for number, line in enumerate(lines, start=1):
            try:
                record = json.loads(line)
                if int(record["seq"]) > self._seq:
                    apply_record(account, record)
                    self._seq = int(record["seq"])
            except (KeyError, TypeError, ValueError) as exc:  # JSONDecodeError and UnicodeError too
                where = f"{self.log_path} record {number} of {len(lines)}"
                if number < len(lines):
                    raise BrokerError(
                        BrokerErrorKind.CONFIG, f"paper journal {where} is corrupt: {exc}"
                    ) from exc
                self.skipped = f"skipped a torn or corrupt last record ({where}): {exc}"
                log.warning("paper account: %s", self.skipped)
        try:
            check_account(account)
        except ValueError as exc:
            raise BrokerError(BrokerErrorKind.CONFIG, f"paper journal {self.log_path}: {exc}") from exc

    # ---- writing ---------------------------------------------------------------------------

    def rebase(self) -> None:
        """The account was replaced: the next change writes it whole."""
        self._rebased = True

    def record(self, account: AccountState) -> None:
        """Write what changed since the last call (one journal line), or the whole account now and then."""
        if self._rebased or self.records >= self.compact_every:
            self.compact(account)
            return
        put = [p for t, p in account.positions.items() if self._positions.get(t) is not p]
        gone = [t for t in self._positions if t not in account.positions]
        self._seq += 1
        record: dict[str, Any] = {
            "seq": self._seq,
            "balance": account.balance,
            "next_ticket": account.next_ticket,
            "next_deal": account.next_deal,
            "market_time": account.market_time.isoformat() if account.market_time else None,
        }
        if put:
            record["put"] = [record_to_json(p) for p in put]
        if gone:
            record["del"] = gone
        if len(account.deals) > self._deals:
            record["deals"] = [record_to_json(d) for d in account.deals[self._deals :]]
        self._append((json.dumps(record, separators=(",", ":")) + "\n").encode())
        self._positions = dict(account.positions)
        self._deals = len(account.deals)
        self.records += 1

    def compact(self, account: AccountState) -> None:
        """Replace the snapshot with the whole account (atomically, fsynced), then empty the journal."""
        data = state_to_json(account, self.symbol, self.magic, self.login)
        data["journal_seq"] = self._seq
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        _sync_dir(self.path.parent)
        # a kill between the rename and here leaves records the snapshot holds: their seq skips them
        if self.log_path.exists():
            os.ftruncate(self._open(), 0)
        self._positions = dict(account.positions)
        self._deals = len(account.deals)
        self.records = 0
        self._rebased = False

    def close(self) -> None:
        """Every change written so far is on the disk, and the journal file is closed (a later change
        opens it again)."""
        if self._file is not None:
            file, self._file = self._file, None
            os.fsync(file.fileno())
            file.close()

    def _open(self) -> int:
        if self._file is None:  # a file object (not a bare descriptor): closed when the broker is dropped
            self._file = open(self.log_path, "ab", buffering=0)  # noqa: SIM115
        return self._file.fileno()

    def _append(self, data: bytes) -> None:
        fd = self._open()
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        SYNCER.request(fd)


def read_account(path: Path, symbol: str = "XAUUSD") -> dict[str, Any]:
    """The account as a restart would read it (`PaperBroker.to_state()`'s form: the snapshot and the
    journal since), writing nothing, so it is safe beside a running broker. BrokerError(CONFIG) when
    the files cannot be read back; FileNotFoundError when there is no account."""
    read = PaperJournal(Path(path), symbol, 0, 0).read()
    if read is None:
        raise FileNotFoundError(f"no paper account at {path}")
    account, data = read
    return state_to_json(account, symbol, int(data.get("magic", 0)), int(data["account"].get("login", 1)))


def apply_record(account: AccountState, record: dict[str, Any]) -> None:
    """One journal record over `account`; ValueError/KeyError/TypeError and nothing changed when bad."""
    put = [record_from_json(Position, p) for p in record.get("put", [])]
    gone = [int(t) for t in record.get("del", [])]
    deals: list[Deal] = [record_from_json(Deal, d) for d in record.get("deals", [])]
    balance = float(record["balance"])
    next_ticket, next_deal = int(record["next_ticket"]), int(record["next_deal"])
    moment = aware_time(record["market_time"]) if record.get("market_time") else None
    for ticket in gone:
        account.positions.pop(ticket, None)
    account.positions.update({p.ticket: p for p in put})
    account.deals.extend(deals)
    account.balance = balance
    account.next_ticket, account.next_deal = next_ticket, next_deal
    if moment is not None and (account.market_time is None or moment > account.market_time):
        account.market_time = moment


def _sync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
