"""Stopping for real: Ctrl-C typed at the console prompt of `main.py run` on a pseudo-terminal (one
press stops the bot as SIGTERM does, a second exits at once and gives the terminal back), and SIGTERM
while a fast replay is busy (no error, no traceback, the journal equal to the paper account)."""

from __future__ import annotations

import asyncio
import fcntl
import os
import select
import signal
import sqlite3
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from trading.broker.paper_journal import read_account
from trading.synthetic import generate_bars

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX terminals and signals"),
]

ROOT = Path(__file__).resolve().parents[1]
PROMPT = b"xaubot>"


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TELEGRAM_", "BROKER", "RISK_", "PAPER_", "DATABASE_", "MODELS_DIR"))
    }
    env.update(
        MODELS_DIR=str(tmp_path / "models"),
        AUTO_RETRAIN="false",
        MARKET_UPDATE_MINUTES="0",
        HOURLY_ANALYSIS="false",
        DAILY_SUMMARY="false",
        PYTHONUNBUFFERED="1",
        TERM="xterm",
        PROMPT_TOOLKIT_NO_CPR="1",
        **extra,
    )
    return env


class Terminal:
    """A child process on a pseudo-terminal (its controlling terminal, as in a shell): what a user
    types goes to the master side, everything the child prints comes back from it."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        import pty

        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: exec at once (no Python clean-up of the test process)
            try:
                os.chdir(cwd)
                os.execve(args[0], args, env)
            finally:
                os._exit(127)
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        self.output = b""
        self.status: int | None = None

    def read(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([self.fd], [], [], min(left, 0.1))
            if ready:
                try:
                    chunk = os.read(self.fd, 65536)
                except OSError:  # EIO: the child has gone and the terminal is closed
                    chunk = b""
                if not chunk:
                    self._reap(block=True)
                    return
                self.output += chunk
            if self._reap(block=False):
                return

    def read_until(self, marker: bytes, seconds: float, start: int = 0) -> int:
        deadline = time.monotonic() + seconds
        while marker not in self.output[start:]:
            if self.status is not None or time.monotonic() > deadline:
                pytest.fail(f"no {marker!r} after {seconds} s: {self.text()[-3000:]}")
            self.read(0.2)
        return self.output.index(marker, start)

    def wait(self, seconds: float) -> float:
        began = time.monotonic()
        while self.status is None and time.monotonic() - began < seconds:
            self.read(0.2)
        return time.monotonic() - began

    def _reap(self, block: bool) -> bool:
        if self.status is not None:
            return True
        pid, status = os.waitpid(self.pid, 0 if block else os.WNOHANG)
        if pid == 0:
            return False
        self.status = os.waitstatus_to_exitcode(status)
        return True

    def text(self) -> str:
        return self.output.decode("utf-8", "replace")

    def close(self) -> None:
        if self.status is None:
            os.kill(self.pid, signal.SIGKILL)
            self._reap(block=True)
        os.close(self.fd)


def _run_on_terminal(tmp_path: Path, *prefix: str) -> Terminal:
    (tmp_path / "none.env").write_text("")
    args = [
        sys.executable,
        *prefix,
        str(ROOT / "main.py"),
        "run",
        "--env-file",
        str(tmp_path / "none.env"),
        "--db",
        str(tmp_path / "data" / "j.db"),
        "--duration",
        "120",
    ]
    return Terminal(args, _env(tmp_path), tmp_path)


def test_ctrl_c_at_the_prompt_stops_the_bot_like_sigterm(tmp_path: Path) -> None:
    term = _run_on_terminal(tmp_path)
    try:
        term.read_until(b"BOT STARTED", 90)
        term.read_until(PROMPT, 30)
        term.read(1.0)
        pressed = len(term.output)
        os.write(term.fd, b"\x03")
        took = term.wait(20)
    finally:
        term.close()
    after = term.output[pressed:]
    assert term.status == 0, term.text()[-3000:]
    assert took < 15, f"Ctrl-C took {took:.1f} s to stop the bot"
    assert b"BOT STOPPED" in after and b"Reason: stopped by signal" in after
    # the prompt is redrawn when a report prints above it, not in a loop (it was 2,799 times in 6 s)
    assert after.count(PROMPT) < 30, f"{after.count(PROMPT)} prompt redraws after one Ctrl-C"
    assert b"Traceback" not in term.output
    with sqlite3.connect(tmp_path / "data" / "j.db") as con:  # the account was saved at the stop
        assert con.execute("select count(*) from bot_state where key = 'engine'").fetchone()[0] == 1


SLOW_SHUTDOWN = """
import asyncio, sys
sys.path.insert(0, sys.argv.pop(1))
from bot.app import App

async def slow_stop(self, timeout):
    await asyncio.sleep(60)  # e.g. a job stuck on a broker call

App._stop_jobs = slow_stop
sys.argv = sys.argv[1:]
import main
sys.exit(main.main())
"""


def test_a_second_ctrl_c_during_a_slow_shutdown_exits_at_once_and_restores_the_terminal(
    tmp_path: Path,
) -> None:
    script = tmp_path / "slow_shutdown.py"
    script.write_text(SLOW_SHUTDOWN)
    term = _run_on_terminal(tmp_path, str(script), str(ROOT))
    try:
        term.read_until(b"BOT STARTED", 90)
        term.read_until(PROMPT, 30)
        at_prompt = termios.tcgetattr(term.fd)
        os.write(term.fd, b"\x03")
        term.read(2.0)
        assert term.status is None, "one Ctrl-C with a slow shutdown must not exit yet"
        os.write(term.fd, b"\x03")
        took = term.wait(10)
        restored = termios.tcgetattr(term.fd)
    finally:
        term.close()
    assert term.status == 130, term.text()[-3000:]
    assert took < 3, f"the second Ctrl-C took {took:.1f} s"
    assert b"Traceback" not in term.output
    lflag = 3
    assert not at_prompt[lflag] & termios.ICANON  # the prompt had the terminal in raw mode
    assert restored[lflag] & termios.ICANON and restored[lflag] & termios.ECHO, "the terminal was left raw"


SLOW_TICKS = """
import asyncio, sys
sys.path.insert(0, sys.argv.pop(1))
from trading.simulation import MarketLoop

process = MarketLoop.process

async def slow_process(self, tick, index):
    await process(self, tick, index)
    await asyncio.sleep(0.002)  # a slower machine: one call of the job takes its 50,000 due ticks in 100 s

MarketLoop.process = slow_process
sys.argv = sys.argv[1:]
import main
sys.exit(main.main())
"""


def test_sigterm_during_a_fast_replay_stops_cleanly_and_keeps_the_journal_whole(tmp_path: Path) -> None:
    """A replay at 50,000x keeps the trading job busy with thousands of due ticks: the stop must end it
    after its current tick (no 15 s wait, no cancelled job, no pool traceback) and lose nothing."""
    script = tmp_path / "slow_ticks.py"
    script.write_text(SLOW_TICKS)
    replay = tmp_path / "bars.parquet"
    generate_bars(6000, seed=21).write_parquet(replay)
    db = tmp_path / "data" / "x.db"
    db.parent.mkdir()
    (tmp_path / "none.env").write_text("")
    env = _env(
        tmp_path,
        DISABLED_GATES="h1_bias,hours_9_21,confirmation,pullback,session,spread_limit,market_quality",
        COOLDOWN_SECONDS="0",
        ANALYSIS_HISTORY_BARS="300",
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            str(script),
            str(ROOT),
            str(ROOT / "main.py"),
            "run",
            "--replay",
            str(replay),
            "--speed",
            "50000",
            "--db",
            str(db),
            "--no-console",
            "--env-file",
            str(tmp_path / "none.env"),
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and _count(db, "trades") < 3:
            assert proc.poll() is None, proc.communicate()[0][-3000:]
            time.sleep(0.3)
        assert _count(db, "trades") >= 3, "the replay opened no trades in time"
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out[-3000:]
    for bad in (" ERROR ", "Traceback", "CancelledError", "still running"):
        assert bad not in out, f"{bad!r} in the output of a clean stop: {out[-4000:]}"
    assert (
        "BOT STOPPED" in out or "message(s) not sent" in out
    )  # the stop message, or the notifier says why not
    assert took < 14, f"the stop took {took:.1f} s"  # the job's end, the notifier's 10 s at most, the close

    with sqlite3.connect(db) as con:
        trades = con.execute("select ticket, status, profit, decision_id from trades").fetchall()
        decisions = {r[0] for r in con.execute("select id from decisions where action = 'enter'")}
    account = read_account(db.parent / "paper_account.json")  # snapshot and journal
    assert {t for t, status, _, _ in trades if status == "open"} == {
        int(p["ticket"]) for p in account["positions"]
    }
    closed_at_broker = {int(d["position_ticket"]) for d in account["deals"] if d["entry"] == "OUT"}
    assert {t for t, status, _, _ in trades if status == "closed"} == closed_at_broker
    assert {d for _, _, _, d in trades} <= decisions, "a trade without its decision row"


def _count(db: Path, table: str) -> int:
    if not db.exists():
        return 0
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute(f"select count(*) from {table}").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return 0


async def test_an_approval_proposed_just_before_the_stop_is_stored(tmp_path: Path) -> None:
    """The approvals writer drains its queue at shutdown instead of being cancelled: a change proposed
    a moment before the stop is pending again after the restart."""
    from bot.app import App
    from bot.config import load_settings
    from trading.risk.approvals import RiskChange

    settings = load_settings(
        None,
        database_path=tmp_path / "x.db",
        models_dir=tmp_path / "models",
        paper_replay_speed=3000,
        market_update_minutes=0,
        hourly_analysis=False,
        daily_summary=False,
        auto_retrain=False,
    )
    app = App(settings, console_input=False)
    await app.start()
    save = app.journal.save_approval

    async def slow_save(approval: object) -> None:
        await asyncio.sleep(2)  # a busy disk: the write is still going when the stop ends the tasks
        await save(approval)

    app.journal.save_approval = slow_save  # type: ignore[method-assign]

    async def no_drain(timeout: float = 0) -> None:  # the rest of the stop is quick: only the write is slow
        return None

    app.notifier.stop = no_drain  # type: ignore[method-assign]
    result = await app.engine.request_risk_change(
        RiskChange("limits", "risk 2%", {"risk_per_trade_pct": 2.0}), "t"
    )
    assert result.approval is not None
    await asyncio.sleep(0.05)  # the writer has the event
    await app.shutdown("test")

    again = App(settings, console_input=False)
    await again.start()
    try:
        pending = again.engine.approvals.pending(again.engine.approval_clock())
        assert [a.id for a in pending] == [result.approval.id]
    finally:
        await again.shutdown("test")
