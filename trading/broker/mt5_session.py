"""The MT5 session under MT5Broker: one worker thread per call under one lock with a timeout, the
None + last_error() convention, connect / reconnect with backoff, and the checks made at each connect
(terminal state, hedging account, server clock).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from trading.broker import mt5_constants as C
from trading.broker.base import BrokerError, BrokerErrorKind, ConnectionLost
from trading.broker.mt5_convert import TerminalState, terminal_state
from trading.timezones import ServerClock, estimate_server_offset_hours, utc_now

log = logging.getLogger("trading.broker.mt5")

T = TypeVar("T")
DEFAULT_CLOCK = ServerClock.parse("NY+7")
DEFAULT_MAGIC = 150_015


_MARGIN_MODES = {
    C.ACCOUNT_MARGIN_MODE_RETAIL_NETTING: "retail netting",
    C.ACCOUNT_MARGIN_MODE_EXCHANGE: "exchange",
}


def netting_refusal(margin_mode: int) -> str | None:
    """Why the bot will not trade this account, or None for a hedging account.

    The bot books every entry as a position of its own (own ticket, SL/TP, exits, journal row). On a
    netting account one position per symbol absorbs every deal: a second entry grows the first, an
    opposite one closes or reverses it (shared/spec/mt5-api.md §1.8, §4.2 item 8), so that model breaks.
    """
    if margin_mode == C.ACCOUNT_MARGIN_MODE_RETAIL_HEDGING:
        return None
    kind = _MARGIN_MODES.get(margin_mode, f"margin mode {margin_mode}")
    return (
        f"this MT5 account nets positions ({kind}); the bot needs a hedging account "
        "(ACCOUNT_MARGIN_MODE_RETAIL_HEDGING): open a hedging account at the broker"
    )


class _Abandoned(Exception):
    """A worker call gave up waiting for the call lock, or started after its caller had given up."""


@dataclass(frozen=True, slots=True)
class _LastError:
    """A read answered None/False: `last_error()`, read in the same locked call."""

    code: int
    message: str


class MT5Session:
    """Transport and session of the adapter; MT5Broker adds the Broker protocol on top.

    `mt5_factory`, when given, rebuilds the module object after a transport failure (an mt5linux
    client cannot recover from a dead rpyc connection; the Windows module can and needs none).
    """

    def __init__(
        self,
        mt5: Any,
        symbol: str = "XAUUSD",
        magic: int = DEFAULT_MAGIC,
        server_clock: ServerClock = DEFAULT_CLOCK,
        deviation: int = 20,
        *,
        login: int | None = None,
        password: str | None = None,
        server: str | None = None,
        path: str | None = None,
        call_timeout: float = 30.0,
        init_timeout: float = 120.0,
        terminal_timeout_ms: int = 60_000,
        connect_attempts: int = 3,
        backoff_seconds: float = 2.0,
        price_retries: int = 1,
        widen_invalid_stops: bool = True,
        require_hedging: bool = True,
        mt5_factory: Callable[[], Any] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        if isinstance(server_clock, str):
            server_clock = ServerClock.parse(server_clock)
        if type(magic) is not int or magic < 0:
            raise ValueError(f"magic must be a non-negative int, got {magic!r}")
        if connect_attempts < 1:
            raise ValueError("connect_attempts must be at least 1")
        self._mt5 = mt5
        self.symbol = str(symbol)
        self.magic = int(magic)
        self.clock = server_clock
        self.deviation = int(deviation)
        self._login = None if login is None else int(login)
        self._password = password
        self._server = server
        self._path = path
        self.call_timeout = float(call_timeout)
        self.init_timeout = float(init_timeout)
        self.terminal_timeout_ms = int(terminal_timeout_ms)
        self.connect_attempts = int(connect_attempts)
        self.backoff_seconds = float(backoff_seconds)
        self.price_retries = int(price_retries)
        self.widen_invalid_stops = widen_invalid_stops
        self.require_hedging = require_hedging  # False for a price/history source that never trades
        self._factory = mt5_factory
        self._sleep = sleep
        self._now = now
        self._lock = threading.Lock()  # one IPC channel: one call at a time
        self._connect_lock = asyncio.Lock()
        # one order at a time, send through reconcile: a racing open would otherwise take the other's
        # new position for its own when its outcome is unknown
        self._order_lock = asyncio.Lock()
        self._connected = False
        self._transport_broken = False
        self._filling_winner: int | None = None
        self._exemode = C.SYMBOL_TRADE_EXECUTION_MARKET
        self.terminal: TerminalState | None = None
        self.account_margin_mode: int | None = None
        self.clock_warning: str | None = None
        self.reconnects = 0
        self._ever_connected = False

    # ---- plumbing ---------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected

    async def _call(self, work: Callable[[Any], T], what: str, timeout: float | None = None) -> T:
        """Run `work(mt5)` in a worker thread under the call lock. Transport failures -> ConnectionLost."""
        mt5, lock = self._mt5, self._lock
        limit = self.call_timeout if timeout is None else timeout
        abandoned = threading.Event()

        def run() -> T:
            # a call that waited out its caller behind a hung one must not run late (a ghost order)
            if not lock.acquire(timeout=limit):
                raise _Abandoned
            try:
                if abandoned.is_set():
                    raise _Abandoned
                return work(mt5)
            finally:
                lock.release()

        try:
            return await asyncio.wait_for(asyncio.to_thread(run), limit)
        except (TimeoutError, _Abandoned) as exc:
            abandoned.set()
            self._connected = False
            if self._factory is not None:
                # a hung bridge call holds its rpyc connection (and our lock) for minutes: the next
                # connect builds a new client, and calls on it do not queue behind the dead one
                self._transport_broken = True
                self._lock = threading.Lock()
            raise BrokerError(BrokerErrorKind.TIMEOUT, f"{what} did not answer within {limit:g} s") from exc
        except (EOFError, ConnectionError, OSError) as exc:
            self._connected = False
            self._transport_broken = True
            raise ConnectionLost(f"{what}: {type(exc).__name__}: {exc}") from exc

    def _last_error_exc(self, what: str, err: tuple[int, str]) -> BrokerError:
        code, message = err
        kind, text = C.describe_last_error(code, message)
        if kind is BrokerErrorKind.DISCONNECTED:
            self._connected = False
            return ConnectionLost(f"{what}: {text}", code)
        return BrokerError(kind, f"{what}: {text}", code)

    async def _get(
        self, what: str, fetch: Callable[[Any], Any], convert: Callable[[Any], T], empty: T | None = None
    ) -> T:
        """fetch(mt5) -> raw; None/False -> last_error() read in the same locked call; raw -> convert(raw).

        With `empty` given, None together with last_error RES_S_OK means "nothing found".
        """

        def work(mt5: Any) -> T | _LastError:
            raw = fetch(mt5)
            if raw is None or raw is False:
                code, message = mt5.last_error()
                return _LastError(int(code), str(message))
            return convert(raw)

        value = await self._call(work, what)
        if isinstance(value, _LastError):
            if empty is not None and value.code == C.RES_S_OK:
                return empty
            raise self._last_error_exc(what, (value.code, value.message))
        return value

    async def _ready(self) -> None:
        if not self._connected:
            await self.ensure_connected()

    async def _read(
        self, what: str, fetch: Callable[[Any], Any], convert: Callable[[Any], T], empty: T | None = None
    ) -> T:
        """An idempotent read: connect if needed, and after a lost link reconnect and read once more."""
        await self._ready()
        try:
            return await self._get(what, fetch, convert, empty)
        except ConnectionLost:
            log.warning("MT5 link lost during %s; reconnecting", what)
            await self.ensure_connected()
            return await self._get(what, fetch, convert, empty)

    # ---- connection -------------------------------------------------------------------------------

    async def connect(self) -> None:
        await self.ensure_connected()

    async def ensure_connected(self) -> None:
        """Make sure the terminal link is up: ping when believed up, else (re)initialize with backoff.

        A terminal that runs but has lost the trade server is not re-initialized (that would not help):
        ConnectionLost is raised and the caller tries again later.
        """
        async with self._connect_lock:
            if self._connected:
                try:
                    state = await self._get("terminal_info", lambda m: m.terminal_info(), terminal_state)
                except BrokerError:
                    state = None
                    self._connected = False
                if state is not None:
                    self.terminal = state
                    if state.connected:
                        return
                    raise ConnectionLost("the terminal is running but has no connection to the trade server")
            await self._connect_with_backoff()

    async def _connect_with_backoff(self) -> None:
        last: BrokerError | None = None
        for attempt in range(1, self.connect_attempts + 1):
            try:
                await self._initialize_once()
            except BrokerError as exc:
                if exc.kind is BrokerErrorKind.CONFIG:
                    raise
                last = exc
                log.warning("MT5 connect attempt %d/%d failed: %s", attempt, self.connect_attempts, exc)
                if attempt < self.connect_attempts:
                    await self._sleep(self.backoff_seconds * 2 ** (attempt - 1))
                continue
            if self._ever_connected:
                self.reconnects += 1
            self._ever_connected = True
            self._connected = True
            return
        raise ConnectionLost(
            f"could not connect to MetaTrader 5 after {self.connect_attempts} attempts: {last}",
            None if last is None else last.code,
        )

    async def _initialize_once(self) -> None:
        if self._transport_broken and self._factory is not None:
            try:
                self._mt5 = await asyncio.wait_for(asyncio.to_thread(self._factory), self.call_timeout)
            except (OSError, EOFError) as exc:  # TimeoutError is an OSError
                raise ConnectionLost(
                    f"could not build a new bridge client: {type(exc).__name__}: {exc}"
                ) from exc
        self._transport_broken = False
        kwargs: dict[str, Any] = {"timeout": self.terminal_timeout_ms}
        if self._login is not None:
            kwargs["login"] = self._login
        if self._password:
            kwargs["password"] = str(self._password)
        if self._server:
            kwargs["server"] = str(self._server)
        symbol, path = self.symbol, self._path

        def work(mt5: Any) -> tuple[str, Any]:
            if self._ever_connected:
                try:
                    mt5.shutdown()
                except Exception:  # a dead link cannot be shut down cleanly; initialize decides
                    log.debug("shutdown before re-initialize failed", exc_info=True)
            ok = mt5.initialize(str(path), **kwargs) if path else mt5.initialize(**kwargs)
            if not ok:
                return "initialize", tuple(mt5.last_error())
            if not mt5.symbol_select(symbol, True):
                return "symbol_select", tuple(mt5.last_error())
            info = mt5.terminal_info()
            if info is None:
                return "terminal_info", tuple(mt5.last_error())
            account = mt5.account_info()
            if account is None:  # hedging or netting decides whether the bot may trade at all
                return "account_info", tuple(mt5.last_error())
            tick = mt5.symbol_info_tick(symbol)
            return "ok", (
                terminal_state(info),
                int(account.margin_mode),
                None if tick is None else int(tick.time),
            )

        step, payload = await self._call(work, "initialize", timeout=self.init_timeout)
        if step != "ok":
            code, message = int(payload[0]), str(payload[1])
            if step == "symbol_select":
                raise BrokerError(
                    BrokerErrorKind.CONFIG,
                    f"symbol {symbol!r} is not offered by this broker (names vary: XAUUSDm, GOLD, XAUUSD.a …)",
                    code,
                )
            raise self._last_error_exc(step, (code, message))
        state, margin_mode, tick_epoch = payload
        self.terminal = state
        self.account_margin_mode = margin_mode
        if not state.connected:
            raise ConnectionLost("the terminal started but has no connection to the trade server")
        if not state.trade_allowed:
            log.warning("MT5: 'Algo Trading' is off in the terminal; orders will be refused (10027)")
        if state.tradeapi_disabled:
            log.warning("MT5: trading through the Python API is disabled in the terminal options")
        refusal = netting_refusal(margin_mode) if self.require_hedging else None
        if refusal:
            raise BrokerError(BrokerErrorKind.CONFIG, refusal)
        if tick_epoch is not None:
            self._check_clock(tick_epoch)

    def _check_clock(self, tick_epoch: int) -> None:
        """Compare the offset read off the tick with the configured server clock; warn when they differ."""
        now = self._now()
        seen = estimate_server_offset_hours(tick_epoch, now)
        configured = (
            self.clock.from_utc(now) - now.astimezone(UTC).replace(tzinfo=None)
        ).total_seconds() / 3600
        if abs(seen - configured) >= 0.5:
            self.clock_warning = (
                f"the broker's tick time looks like UTC{seen:+g} but the configured server clock "
                f"({self.clock.describe()}) is UTC{configured:+g} now; bar times will be off unless the market "
                "is simply closed (stale tick)"
            )
            log.warning("MT5: %s", self.clock_warning)
        else:
            self.clock_warning = None

    async def disconnect(self) -> None:
        if self._ever_connected:
            try:
                await self._call(lambda m: m.shutdown(), "shutdown")
            except BrokerError:
                log.debug("shutdown failed", exc_info=True)
        self._connected = False
