"""MT5Broker over the real Linux bridge: the pinned mt5linux client talking rpyc to mt5linux's own server.

Each test starts `python -m mt5linux --host 127.0.0.1 -p PORT` (the rpyc classic server the pinned
release runs under Wine's Windows Python) in a subprocess whose `import MetaTrader5` yields the fake
terminal (tests/mt5linux_server/MetaTrader5.py). The broker gets a genuine `mt5linux.MetaTrader5`
client, so every call crosses a socket as the client's `repr()`-built source string and every record
comes back as an rpyc netref. A second client (`ctl`) scripts the fake through the same bridge.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

mt5linux = pytest.importorskip("mt5linux")
rpyc = pytest.importorskip("rpyc")

from trading.bars import to_mt5_rates  # noqa: E402
from trading.broker.base import BrokerError, BrokerErrorKind, ConnectionLost, OrderRejected  # noqa: E402
from trading.broker.mt5 import MT5Broker, create_mt5_module, mt5_module_factory  # noqa: E402
from trading.domain import DealEntry, DealReason, Side, SymbolSpec, Tick  # noqa: E402
from trading.timezones import ServerClock  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHIM = ROOT / "tests" / "mt5linux_server"
HOST = "127.0.0.1"
NOW = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)  # the fake's default tick: 12:00 server time under NY+7
MAGIC = 4242


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class BridgeServer:
    """mt5linux's rpyc classic server in a subprocess, serving the fake terminal; restartable on one port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, deadline_s: float = 20.0) -> None:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SHIM), str(ROOT)]))
        cmd = [sys.executable, "-m", "mt5linux", "--host", HOST, "-p", str(self.port), "-q"]
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                pytest.fail(f"mt5linux server exited with {self.proc.returncode}: {err}")
            try:
                socket.create_connection((HOST, self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        pytest.fail(f"mt5linux server did not listen on {HOST}:{self.port} within {deadline_s:g} s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc is not None and self.proc.stderr:
            self.proc.stderr.close()
        self.proc = None


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def server():
    srv = BridgeServer()
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def ctl(server: BridgeServer):
    """A second mt5linux client that scripts and inspects the fake terminal inside the server."""
    return mt5linux.MetaTrader5(host=HOST, port=server.port)


def fetch(ctl: Any, expr: str) -> Any:
    """A value from the server process, copied here (not a netref)."""
    return rpyc.classic.obtain(ctl.eval(expr))


def make_broker(bridge: BridgeServer, sleeps: Sleeps | None = None, **kw: Any) -> MT5Broker:
    client = create_mt5_module("mt5linux", HOST, bridge.port)
    assert type(client) is mt5linux.MetaTrader5
    return MT5Broker(client, magic=MAGIC, sleep=sleeps or Sleeps(), now=lambda: NOW, **kw)


@pytest.fixture
async def broker(server: BridgeServer) -> MT5Broker:
    b = make_broker(server, login=5_001_234, password="secret", server="FakeBroker-Demo")
    await b.connect()
    yield b
    await b.disconnect()


# ---- connection, account, market data -------------------------------------------------------------


async def test_connect_account_spec_tick_over_the_bridge(broker, ctl):
    assert broker.connected
    assert broker.terminal is not None and broker.terminal.connected and broker.terminal.build == 6231
    assert broker.clock_warning is None
    _, args, kwargs = fetch(ctl, "[c for c in mt5.calls if c[0] == 'initialize'][0]")
    assert args == (None,) and kwargs == {"login": 5_001_234, "server": "FakeBroker-Demo", "timeout": 60_000}
    assert "XAUUSD" in fetch(ctl, "mt5.selected")

    acc = await broker.account()
    assert (acc.login, acc.balance, acc.equity, acc.free_margin) == (5_001_234, 10_000.0, 10_000.0, 10_000.0)
    assert (acc.currency, acc.leverage, acc.server, acc.trade_allowed) == (
        "USD",
        100,
        "FakeBroker-Demo",
        True,
    )
    assert type(acc.balance) is float and type(acc.login) is int and type(acc.server) is str

    spec = await broker.symbol_spec()
    assert spec == SymbolSpec(
        name="XAUUSD",
        contract_size=100.0,
        point=0.01,
        digits=2,
        tick_size=0.01,
        tick_value=1.0,
        volume_min=0.01,
        volume_step=0.01,
        volume_max=100.0,
        stops_level=0,
        freeze_level=0,
        filling_modes=3,
        trade_mode=4,
    )

    ctl.execute("mt5.set_tick(2401.5, 2401.8, server_epoch=1782907200.25)")
    assert await broker.tick() == Tick(time=NOW + timedelta(milliseconds=250), bid=2401.5, ask=2401.8)


async def test_hand_made_bars_cross_the_bridge(broker, ctl):
    start = 1_782_906_300  # 2026-07-01 11:45 server time
    rows = [
        (start + 900 * i, 2400.0 + i, 2402.0 + i, 2399.0 + i, 2401.0 + i, 10 * (i + 1), 15 + i, 0)
        for i in range(3)
    ]
    ctl.execute(
        f"import numpy as np; from tests.fake_mt5 import RATES_DTYPE; "
        f"mt5.rates[('XAUUSD', 15)] = np.array({rows!r}, dtype=RATES_DTYPE)"
    )
    frame = await broker.bars(2)
    assert frame["time"].to_list() == [
        datetime(2026, 7, 1, 9, 0, tzinfo=UTC),
        datetime(2026, 7, 1, 9, 15, tzinfo=UTC),
    ]
    assert frame["close"].to_list() == [2402.0, 2403.0]
    assert frame["tick_volume"].to_list() == [20, 30] and frame["spread"].to_list() == [16, 17]
    assert fetch(ctl, "mt5.calls[-1][:2]") == ("copy_rates_from_pos", ("XAUUSD", 15, 0, 2))
    with pytest.raises(BrokerError) as info:  # None + last_error() through the bridge
        await broker.bars(5, timeframe_minutes=60)
    assert info.value.code == -1


async def test_real_bars_round_trip_through_the_bridge(broker, ctl, shared_bars):
    tail = shared_bars.tail(120)
    rows = to_mt5_rates(tail, ServerClock.parse("NY+7")).tolist()
    ctl.execute(
        f"import numpy as np; from tests.fake_mt5 import RATES_DTYPE; "
        f"mt5.rates[('XAUUSD', 15)] = np.array({rows!r}, dtype=RATES_DTYPE)"
    )
    frame = await broker.bars(100)
    assert frame.equals(tail.tail(100))


# ---- trading ----------------------------------------------------------------------------------------


async def test_open_modify_close_and_deals_over_the_bridge(broker, ctl):
    opened = await broker.open_market(Side.BUY, 0.1, 2390.0, 2420.0, comment="bridge test")
    assert (opened.side, opened.volume, opened.price, opened.time) == (Side.BUY, 0.1, 2400.2, NOW)
    sent = fetch(ctl, "mt5.sent[-1]")
    assert sent["type_filling"] == 1 and sent["magic"] == MAGIC and sent["comment"] == "bridge test"
    assert {k: type(v) for k, v in sent.items()} == {
        k: (str if k in ("symbol", "comment") else float if k in ("volume", "price", "sl", "tp") else int)
        for k in sent
    }

    (pos,) = await broker.positions()
    assert (pos.ticket, pos.side, pos.volume, pos.open_price, pos.sl, pos.tp) == (
        opened.ticket,
        Side.BUY,
        0.1,
        2400.2,
        2390.0,
        2420.0,
    )
    assert pos.open_time == NOW and pos.comment == "bridge test"

    await broker.modify_position(opened.ticket, 2395.0, 2425.0)
    assert fetch(ctl, f"(mt5.positions[{opened.ticket}]['sl'], mt5.positions[{opened.ticket}]['tp'])") == (
        2395.0,
        2425.0,
    )

    ctl.execute("mt5.set_tick(2410.0, 2410.2, server_epoch=1782907800)")  # +10 min
    part = await broker.close_position(opened.ticket, 0.04)
    assert (part.side, part.volume, part.price, part.ticket) == (Side.SELL, 0.04, 2410.0, opened.ticket)
    rest = await broker.close_position(opened.ticket)
    assert rest.volume == pytest.approx(0.06)
    assert await broker.positions() == []

    deals = await broker.deals_since(NOW - timedelta(minutes=1))
    assert [(d.entry, d.side, d.reason) for d in deals] == [
        (DealEntry.IN, Side.BUY, DealReason.CLIENT),
        (DealEntry.OUT, Side.SELL, DealReason.CLIENT),
        (DealEntry.OUT, Side.SELL, DealReason.CLIENT),
    ]
    assert {d.position_ticket for d in deals} == {opened.ticket}
    assert sum(d.profit for d in deals) == pytest.approx((2410.0 - 2400.2) * 100 * 0.1)
    assert deals[1].time == NOW + timedelta(minutes=10)
    assert (await broker.account()).balance == pytest.approx(10_000.0 + 98.0)


async def test_retcode_paths_over_the_bridge(broker, ctl):
    ctl.execute("mt5.market_closed = True")
    with pytest.raises(OrderRejected) as info:
        await broker.open_market(Side.SELL, 0.1, 2410.0, 2380.0)
    assert info.value.kind is BrokerErrorKind.MARKET_CLOSED and info.value.code == 10018
    assert await broker.positions() == []

    ctl.execute(
        "mt5.market_closed = False; from tests.fake_mt5 import Outcome; "
        "mt5.queue(Outcome(retcode=10004, move_to=(2401.0, 2401.2)))"
    )
    result = await broker.open_market(Side.BUY, 0.05, 2390.0, 0.0)
    assert result.price == 2401.2
    assert [s["price"] for s in fetch(ctl, "mt5.sent")[-2:]] == [2400.2, 2401.2]

    ctl.execute("mt5.none_from['order_send'] = (-2, 'Invalid \"comment\" argument')")
    with pytest.raises(OrderRejected) as info:
        await broker.open_market(Side.BUY, 0.05, 2390.0, 0.0)
    assert info.value.kind is BrokerErrorKind.INVALID_REQUEST and info.value.code == -2


# ---- the bridge dies and comes back ---------------------------------------------------------------


async def test_dropped_bridge_raises_connection_lost_then_reconnects(server):
    sleeps = Sleeps()
    b = make_broker(server, sleeps, mt5_factory=mt5_module_factory("mt5linux", HOST, server.port))
    await b.connect()
    first_client = b._mt5
    await b.open_market(Side.BUY, 0.1, 2390.0, 2420.0)

    server.stop()
    with pytest.raises(ConnectionLost, match="after 3 attempts"):
        await b.account()
    assert not b.connected
    assert sleeps.calls == [2.0, 4.0]

    server.start()  # a fresh terminal behind the same port
    acc = await b.account()
    assert acc.balance == 10_000.0 and b.connected and b.reconnects == 1
    assert b._mt5 is not first_client and type(b._mt5) is mt5linux.MetaTrader5
    assert await b.positions() == []
    await b.disconnect()


@pytest.mark.filterwarnings("error::DeprecationWarning")  # numpy 2 warns on np.array(netref)
async def test_rates_returned_as_a_netref_are_copied_locally(broker, ctl):
    """Bridges that return the rates array as an rpyc netref (no obtain) still give local bars."""

    class NetrefRates:
        def __init__(self, client: Any) -> None:
            self._client = client

        def __getattr__(self, name: str) -> Any:
            return getattr(self._client, name)

        def copy_rates_from_pos(self, symbol: str, timeframe: int, start: int, count: int) -> Any:
            return self._client.eval(f"mt5.copy_rates_from_pos({symbol!r}, {timeframe}, {start}, {count})")

    start = 1_782_906_300
    rows = [(start + 900 * i, 2400.0, 2405.0, 2399.0, 2401.0 + i, 5, 15, 0) for i in range(4)]
    ctl.execute(
        f"import numpy as np; from tests.fake_mt5 import RATES_DTYPE; "
        f"mt5.rates[('XAUUSD', 15)] = np.array({rows!r}, dtype=RATES_DTYPE)"
    )
    broker._mt5 = NetrefRates(broker._mt5)
    frame = await broker.bars(3)
    assert frame["close"].to_list() == [2402.0, 2403.0, 2404.0]


def test_no_server_on_the_port_is_connection_lost_with_the_start_command():
    port = free_port()
    with pytest.raises(ConnectionLost, match=rf"no mt5linux bridge answers at 127\.0\.0\.1:{port}") as info:
        create_mt5_module("mt5linux", HOST, port)
    assert f"python.exe -m mt5linux --host 127.0.0.1 -p {port}" in str(info.value)


async def test_hung_bridge_order_is_reconciled_through_a_new_client(server, ctl):
    """order_send executes at the terminal but its reply hangs: the adapter gives up on that rpyc connection,
    builds a new client and finds the position through it; nothing is sent twice."""
    b = make_broker(server, call_timeout=1.0, mt5_factory=mt5_module_factory("mt5linux", HOST, server.port))
    await b.connect()
    first_client = b._mt5
    ctl.execute(
        "import time\n_send = mt5.order_send\n"
        "def _hung(request):\n    result = _send(request)\n    time.sleep(3)\n    return result\n"
        "mt5.order_send = _hung"
    )
    try:
        res = await b.open_market(Side.BUY, 0.1, 2390.0, 2420.0)
        assert b._mt5 is not first_client and type(b._mt5) is mt5linux.MetaTrader5
        (pos,) = await b.positions()
        assert (res.ticket, res.sl, res.tp) == (pos.ticket, 2390.0, 2420.0)
        assert fetch(ctl, "len(mt5.sent)") == 1
    finally:
        ctl.execute("mt5.order_send = _send")
        await b.disconnect()


async def test_history_ranges_cross_the_bridge(broker, ctl):
    """copy_rates_range / copy_ticks_range through the real mt5linux 0.2 client (it needs datetime arguments)."""
    start = 1_782_906_300
    rows = [(start + 900 * i, 2400.0, 2402.0, 2399.0, 2401.0 + i, 5, 15, 0) for i in range(4)]
    ticks = [(start + i, 2400.0 + i, 2400.2 + i, 0.0, 0, (start + i) * 1000 + 7, 6, 0.0) for i in range(3)]
    ctl.execute(
        f"import numpy as np; from tests.fake_mt5 import RATES_DTYPE, TICKS_DTYPE; "
        f"mt5.rates[('XAUUSD', 15)] = np.array({rows!r}, dtype=RATES_DTYPE); "
        f"mt5.tick_history['XAUUSD'] = np.array({ticks!r}, dtype=TICKS_DTYPE)"
    )
    rates = await broker.rates_range(15, start + 900, start + 2700)
    assert rates["time"].tolist() == [start + 900, start + 1800, start + 2700]
    got = await broker.ticks_range(start, start + 2)
    assert got["time_msc"].tolist() == [start * 1000 + 7, (start + 1) * 1000 + 7]
    assert got["bid"].tolist() == [2400.0, 2401.0]
