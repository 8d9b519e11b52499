"""A faithful in-memory stand-in for the `MetaTrader5` module (or an `mt5linux.MetaTrader5` client).

Same function names and call shapes, namedtuple records with the real type names and field order,
the real constant values (typed here independently of trading/broker/mt5_constants.py; a test checks
they agree), `None` + `last_error()` on failure, and scriptable faults. A hedging account keeps
positions and deals so open/close/modify round-trip; with `margin_mode` 0 (retail netting) or 1
(exchange) the account keeps one position per symbol and deals add to, reduce or reverse it. Times are broker-server epoch seconds.

Strict like the mt5linux bridge: price/volume fields must be builtin `float`, codes builtin `int`,
no `None` values, comment <= 31 chars; anything else -> None + (-2, 'Invalid "<field>" argument').
"""

from __future__ import annotations

from collections import namedtuple
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

# ---- records (field order as in the real package) ---------------------------------------------

AccountInfo = namedtuple(
    "AccountInfo",
    "login trade_mode leverage limit_orders margin_so_mode trade_allowed trade_expert margin_mode "
    "currency_digits fifo_close balance credit profit equity margin margin_free margin_level "
    "margin_so_call margin_so_so margin_initial margin_maintenance assets liabilities commission_blocked "
    "name server currency company",
)
TerminalInfo = namedtuple(
    "TerminalInfo",
    "community_account community_connection connected dlls_allowed trade_allowed tradeapi_disabled "
    "email_enabled ftp_enabled notifications_enabled mqid build maxbars codepage ping_last "
    "community_balance retransmission company name language path data_path commondata_path",
)
Tick = namedtuple("Tick", "time bid ask last volume time_msc flags volume_real")
SymbolInfo = namedtuple(
    "SymbolInfo",
    "custom chart_mode select visible session_deals session_buy_orders session_sell_orders volume "
    "volumehigh volumelow time digits spread spread_float ticks_bookdepth trade_calc_mode trade_mode "
    "start_time expiration_time trade_stops_level trade_freeze_level trade_exemode swap_mode "
    "swap_rollover3days margin_hedged_use_leg expiration_mode filling_mode order_mode order_gtc_mode "
    "option_mode option_right bid bidhigh bidlow ask askhigh asklow last lasthigh lastlow volume_real "
    "volumehigh_real volumelow_real option_strike point trade_tick_value trade_tick_value_profit "
    "trade_tick_value_loss trade_tick_size trade_contract_size trade_accrued_interest trade_face_value "
    "trade_liquidity_rate volume_min volume_max volume_step volume_limit swap_long swap_short "
    "margin_initial margin_maintenance session_volume session_turnover session_interest "
    "session_buy_orders_volume session_sell_orders_volume session_open session_close session_aw "
    "session_price_settlement session_price_limit_min session_price_limit_max margin_hedged price_change "
    "price_volatility price_theoretical price_greeks_delta price_greeks_theta price_greeks_gamma "
    "price_greeks_vega price_greeks_rho price_greeks_omega price_sensitivity basis category "
    "currency_base currency_profit currency_margin bank description exchange formula isin name page path",
)
TradePosition = namedtuple(
    "TradePosition",
    "ticket time time_msc time_update time_update_msc type magic identifier reason volume price_open "
    "sl tp price_current swap profit symbol comment external_id",
)
TradeOrder = namedtuple(
    "TradeOrder",
    "ticket time_setup time_setup_msc time_done time_done_msc time_expiration type type_time "
    "type_filling state magic position_id position_by_id reason volume_initial volume_current "
    "price_open sl tp price_current price_stoplimit symbol comment external_id",
)
TradeDeal = namedtuple(
    "TradeDeal",
    "ticket order time time_msc type entry magic position_id reason volume price commission swap "
    "profit fee symbol comment external_id",
)
TradeRequest = namedtuple(
    "TradeRequest",
    "action magic order symbol volume price stoplimit sl tp deviation type type_filling type_time "
    "expiration comment position position_by",
)
OrderSendResult = namedtuple(
    "OrderSendResult", "retcode deal order volume price bid ask comment request_id retcode_external request"
)
OrderCheckResult = namedtuple(
    "OrderCheckResult", "retcode balance equity profit margin margin_free margin_level comment request"
)

RATES_DTYPE = np.dtype(
    [
        ("time", "<i8"),
        ("open", "<f8"),
        ("high", "<f8"),
        ("low", "<f8"),
        ("close", "<f8"),
        ("tick_volume", "<u8"),
        ("spread", "<i4"),
        ("real_volume", "<u8"),
    ]
)

TICKS_DTYPE = np.dtype(
    [
        ("time", "<i8"),
        ("bid", "<f8"),
        ("ask", "<f8"),
        ("last", "<f8"),
        ("volume", "<u8"),
        ("time_msc", "<i8"),
        ("flags", "<u4"),
        ("volume_real", "<f8"),
    ]
)

RETCODE_COMMENTS = {
    10004: "Requote",
    10006: "Request rejected",
    10009: "Request executed",
    10010: "Request executed partially",
    10012: "Request canceled by timeout",
    10013: "Invalid request",
    10014: "Invalid volume",
    10016: "Invalid stops",
    10018: "Market closed",
    10019: "No money",
    10020: "Prices changed",
    10021: "Off quotes",
    10025: "No changes",
    10027: "AutoTrading disabled by client",
    10030: "Unsupported filling mode",
    10031: "No connection",
    10036: "Position already closed",
    10038: "Invalid close volume",
}

_FLOAT_FIELDS = ("volume", "price", "stoplimit", "sl", "tp")
_INT_FIELDS = (
    "action",
    "magic",
    "order",
    "deviation",
    "type",
    "type_filling",
    "type_time",
    "expiration",
    "position",
    "position_by",
)


@dataclass
class Outcome:
    """One scripted answer for the next order_send call.

    retcode: reply with it (after executing when `execute`); None with `error`: return None and set
    last_error; `drop`: the IPC link dies after the call; `move_to`: (bid, ask) after replying;
    `fill_volume`: partial fill of this many lots (with retcode 10010).
    """

    retcode: int | None = None
    execute: bool = False
    error: tuple[int, str] | None = None
    drop: bool = False
    move_to: tuple[float, float] | None = None
    fill_volume: float | None = None


def xauusd_symbol(**overrides: Any) -> dict[str, Any]:
    """XAUUSD as a typical ECN broker has it: 2 digits, 100 oz, 0.01 lots, FOK+IOC, Market execution."""
    values: dict[str, Any] = {f: 0 for f in SymbolInfo._fields}
    for f in SymbolInfo._fields[SymbolInfo._fields.index("bid") : SymbolInfo._fields.index("basis")]:
        values[f] = 0.0
    for f in SymbolInfo._fields[SymbolInfo._fields.index("basis") :]:
        values[f] = ""
    values.update(
        custom=False,
        select=True,
        visible=True,
        spread_float=True,
        margin_hedged_use_leg=False,
        digits=2,
        spread=20,
        trade_calc_mode=0,
        trade_mode=4,
        trade_stops_level=0,
        trade_freeze_level=0,
        trade_exemode=2,
        swap_rollover3days=3,
        expiration_mode=15,
        filling_mode=3,
        order_mode=127,
        point=0.01,
        trade_tick_value=1.0,
        trade_tick_value_profit=1.0,
        trade_tick_value_loss=1.0,
        trade_tick_size=0.01,
        trade_contract_size=100.0,
        volume_min=0.01,
        volume_max=100.0,
        volume_step=0.01,
        swap_long=-30.0,
        swap_short=10.0,
        currency_base="XAU",
        currency_profit="USD",
        currency_margin="USD",
        description="Gold vs US Dollar",
        name="XAUUSD",
        path="Metals\\XAUUSD",
    )
    values.update(overrides)
    return values


class FakeMetaTrader5:
    """Module-like fake. Create one per test; configure through the attributes and helpers below."""

    # ---- constants (real values) -------------------------------------------------------------
    TIMEFRAME_M1, TIMEFRAME_M5, TIMEFRAME_M15, TIMEFRAME_M30 = 1, 5, 15, 30
    TIMEFRAME_H1, TIMEFRAME_H4, TIMEFRAME_D1, TIMEFRAME_W1, TIMEFRAME_MN1 = 16385, 16388, 16408, 32769, 49153
    ORDER_TYPE_BUY, ORDER_TYPE_SELL, ORDER_TYPE_BUY_LIMIT, ORDER_TYPE_SELL_LIMIT = 0, 1, 2, 3
    ORDER_TYPE_BUY_STOP, ORDER_TYPE_SELL_STOP, ORDER_TYPE_CLOSE_BY = 4, 5, 8
    TRADE_ACTION_DEAL, TRADE_ACTION_PENDING, TRADE_ACTION_SLTP = 1, 5, 6
    TRADE_ACTION_MODIFY, TRADE_ACTION_REMOVE, TRADE_ACTION_CLOSE_BY = 7, 8, 10
    ORDER_FILLING_FOK, ORDER_FILLING_IOC, ORDER_FILLING_RETURN, ORDER_FILLING_BOC = 0, 1, 2, 3
    ORDER_TIME_GTC, ORDER_TIME_DAY, ORDER_TIME_SPECIFIED, ORDER_TIME_SPECIFIED_DAY = 0, 1, 2, 3
    POSITION_TYPE_BUY, POSITION_TYPE_SELL = 0, 1
    POSITION_REASON_CLIENT, POSITION_REASON_MOBILE, POSITION_REASON_WEB, POSITION_REASON_EXPERT = 0, 1, 2, 3
    DEAL_TYPE_BUY, DEAL_TYPE_SELL, DEAL_TYPE_BALANCE = 0, 1, 2
    DEAL_ENTRY_IN, DEAL_ENTRY_OUT, DEAL_ENTRY_INOUT, DEAL_ENTRY_OUT_BY = 0, 1, 2, 3
    DEAL_REASON_CLIENT, DEAL_REASON_MOBILE, DEAL_REASON_WEB, DEAL_REASON_EXPERT = 0, 1, 2, 3
    DEAL_REASON_SL, DEAL_REASON_TP, DEAL_REASON_SO, DEAL_REASON_ROLLOVER = 4, 5, 6, 7
    DEAL_REASON_VMARGIN, DEAL_REASON_SPLIT = 8, 9
    ACCOUNT_TRADE_MODE_DEMO, ACCOUNT_TRADE_MODE_CONTEST, ACCOUNT_TRADE_MODE_REAL = 0, 1, 2
    ACCOUNT_MARGIN_MODE_RETAIL_NETTING, ACCOUNT_MARGIN_MODE_EXCHANGE, ACCOUNT_MARGIN_MODE_RETAIL_HEDGING = (
        0,
        1,
        2,
    )
    SYMBOL_TRADE_MODE_DISABLED, SYMBOL_TRADE_MODE_LONGONLY, SYMBOL_TRADE_MODE_SHORTONLY = 0, 1, 2
    SYMBOL_TRADE_MODE_CLOSEONLY, SYMBOL_TRADE_MODE_FULL = 3, 4
    SYMBOL_TRADE_EXECUTION_REQUEST, SYMBOL_TRADE_EXECUTION_INSTANT = 0, 1
    SYMBOL_TRADE_EXECUTION_MARKET, SYMBOL_TRADE_EXECUTION_EXCHANGE = 2, 3
    TRADE_RETCODE_REQUOTE, TRADE_RETCODE_REJECT, TRADE_RETCODE_CANCEL, TRADE_RETCODE_PLACED = (
        10004,
        10006,
        10007,
        10008,
    )
    TRADE_RETCODE_DONE, TRADE_RETCODE_DONE_PARTIAL, TRADE_RETCODE_ERROR, TRADE_RETCODE_TIMEOUT = (
        10009,
        10010,
        10011,
        10012,
    )
    TRADE_RETCODE_INVALID, TRADE_RETCODE_INVALID_VOLUME, TRADE_RETCODE_INVALID_PRICE = 10013, 10014, 10015
    TRADE_RETCODE_INVALID_STOPS, TRADE_RETCODE_TRADE_DISABLED, TRADE_RETCODE_MARKET_CLOSED = (
        10016,
        10017,
        10018,
    )
    TRADE_RETCODE_NO_MONEY, TRADE_RETCODE_PRICE_CHANGED, TRADE_RETCODE_PRICE_OFF = 10019, 10020, 10021
    TRADE_RETCODE_INVALID_EXPIRATION, TRADE_RETCODE_ORDER_CHANGED, TRADE_RETCODE_TOO_MANY_REQUESTS = (
        10022,
        10023,
        10024,
    )
    TRADE_RETCODE_NO_CHANGES, TRADE_RETCODE_SERVER_DISABLES_AT, TRADE_RETCODE_CLIENT_DISABLES_AT = (
        10025,
        10026,
        10027,
    )
    TRADE_RETCODE_LOCKED, TRADE_RETCODE_FROZEN, TRADE_RETCODE_INVALID_FILL = 10028, 10029, 10030
    TRADE_RETCODE_CONNECTION, TRADE_RETCODE_ONLY_REAL, TRADE_RETCODE_LIMIT_ORDERS = 10031, 10032, 10033
    TRADE_RETCODE_LIMIT_VOLUME, TRADE_RETCODE_INVALID_ORDER, TRADE_RETCODE_POSITION_CLOSED = (
        10034,
        10035,
        10036,
    )
    TRADE_RETCODE_INVALID_CLOSE_VOLUME, TRADE_RETCODE_CLOSE_ORDER_EXIST = 10038, 10039
    TRADE_RETCODE_LIMIT_POSITIONS, TRADE_RETCODE_REJECT_CANCEL = 10040, 10041
    TRADE_RETCODE_LONG_ONLY, TRADE_RETCODE_SHORT_ONLY, TRADE_RETCODE_CLOSE_ONLY = 10042, 10043, 10044
    TRADE_RETCODE_FIFO_CLOSE = 10045
    COPY_TICKS_ALL, COPY_TICKS_INFO, COPY_TICKS_TRADE = -1, 1, 2
    TICK_FLAG_BID, TICK_FLAG_ASK, TICK_FLAG_LAST, TICK_FLAG_VOLUME, TICK_FLAG_BUY, TICK_FLAG_SELL = (
        2,
        4,
        8,
        16,
        32,
        64,
    )
    RES_S_OK, RES_E_FAIL, RES_E_INVALID_PARAMS, RES_E_NO_MEMORY, RES_E_NOT_FOUND = 1, -1, -2, -3, -4
    RES_E_INVALID_VERSION, RES_E_AUTH_FAILED, RES_E_UNSUPPORTED, RES_E_AUTO_TRADING_DISABLED = -5, -6, -7, -8
    RES_E_INTERNAL_FAIL, RES_E_INTERNAL_FAIL_SEND, RES_E_INTERNAL_FAIL_RECEIVE = -10000, -10001, -10002
    RES_E_INTERNAL_FAIL_INIT, RES_E_INTERNAL_FAIL_CONNECT, RES_E_INTERNAL_FAIL_TIMEOUT = (
        -10003,
        -10004,
        -10005,
    )

    def __init__(self, server_epoch: int = 1_782_907_200, bid: float = 2400.00, ask: float = 2400.20) -> None:
        # default clock: 2026-07-01 12:00 server time (09:00 UTC under NY+7 in summer)
        self.initialized = False
        self.error: tuple[int, str] = (1, "Success")
        self.calls: list[tuple[str, tuple, dict]] = []
        self.sent: list[dict] = []  # every order_send request that reached the fake
        # scripting
        self.init_errors: list[tuple[int, str]] = []  # consumed by initialize(): each makes one call fail
        self.outcomes: list[Outcome] = []  # consumed by order_send
        self.raise_on_call: BaseException | None = (
            None  # bridge-style: every call raises this (e.g. EOFError)
        )
        self.none_from: dict[str, tuple[int, str]] = {}  # function name -> error: that function returns None
        self.market_closed = False
        self.terminal_connected = True
        self.terminal_trade_allowed = True
        # account
        self.login_id = 5_001_234
        self.balance = 10_000.0
        self.leverage = 100
        self.margin_mode = 2  # ACCOUNT_MARGIN_MODE_RETAIL_HEDGING; 0 (netting) / 1 (exchange) net positions
        self.commission_per_lot = 0.0
        # market
        self.symbols: dict[str, dict[str, Any]] = {"XAUUSD": xauusd_symbol()}
        self.selected: set[str] = set()
        self.ticks: dict[str, tuple[float, float, int]] = {"XAUUSD": (bid, ask, server_epoch * 1000)}
        self.rates: dict[tuple[str, int], np.ndarray] = {}  # oldest first, RATES_DTYPE
        self.tick_history: dict[str, np.ndarray] = {}  # oldest first, TICKS_DTYPE
        # trading state
        self.positions: dict[int, dict[str, Any]] = {}
        self.deals: list[TradeDeal] = []
        self._next_ticket = 500_000
        self._request_id = 0

    # ---- scripting helpers ----------------------------------------------------------------------
    def queue(self, *outcomes: Outcome | int) -> None:
        for o in outcomes:
            self.outcomes.append(Outcome(retcode=o) if isinstance(o, int) else o)

    def drop_connection(self) -> None:
        """The IPC link dies: every call answers None + (-10004, 'No IPC connection') until initialize()."""
        self.initialized = False

    def set_tick(
        self,
        bid: float,
        ask: float,
        server_epoch: float | None = None,
        trigger: bool = True,
        symbol: str = "XAUUSD",
    ) -> None:
        """Move the market (server clock epoch seconds); by default SL/TP touched by the new quote fire."""
        msc = self.ticks[symbol][2] if server_epoch is None else round(server_epoch * 1000)
        self.ticks[symbol] = (float(bid), float(ask), msc)
        if trigger:
            self._trigger_stops()

    def add_position(
        self,
        side: int,
        volume: float,
        price: float,
        *,
        magic: int = 0,
        sl: float = 0.0,
        tp: float = 0.0,
        comment: str = "",
        symbol: str = "XAUUSD",
    ) -> int:
        """A position opened outside the bot (e.g. by hand, magic 0)."""
        ticket = self._ticket()
        self._open(symbol, side, volume, price, sl, tp, magic, comment, ticket, reason=0)
        return ticket

    # ---- plumbing -------------------------------------------------------------------------------
    def _record(self, name: str, args: tuple, kwargs: dict) -> None:
        self.calls.append((name, args, kwargs))
        if self.raise_on_call is not None:
            raise self.raise_on_call

    def called(self, name: str) -> int:
        return sum(1 for c in self.calls if c[0] == name)

    def _fail(self, code: int, message: str) -> None:
        self.error = (code, message)
        return None

    def _gate(self, name: str) -> bool:
        """True when the call may proceed; otherwise last_error is set."""
        if not self.initialized:
            self._fail(-10004, "No IPC connection")
            return False
        if name in self.none_from:
            self._fail(*self.none_from[name])
            return False
        self.error = (1, "Success")
        return True

    def _ticket(self) -> int:
        self._next_ticket += 1
        return self._next_ticket

    def _now_msc(self, symbol: str = "XAUUSD") -> int:
        return self.ticks.get(symbol, next(iter(self.ticks.values())))[2]

    def _equity_margin(self) -> tuple[float, float, float]:
        profit = sum(self._floating(p) for p in self.positions.values())
        margin = sum(self._margin(p["symbol"], p["volume"], p["price_open"]) for p in self.positions.values())
        return profit, self.balance + profit, margin

    def _margin(self, symbol: str, volume: float, price: float) -> float:
        return price * self.symbols[symbol]["trade_contract_size"] * volume / self.leverage

    def _close_price(self, p: dict[str, Any]) -> float:
        bid, ask, _ = self.ticks[p["symbol"]]
        return bid if p["type"] == 0 else ask

    def _floating(self, p: dict[str, Any]) -> float:
        sign = 1 if p["type"] == 0 else -1
        size = self.symbols[p["symbol"]]["trade_contract_size"]
        return round((self._close_price(p) - p["price_open"]) * sign * size * p["volume"], 2)

    # ---- terminal / session ---------------------------------------------------------------------
    def initialize(
        self,
        path: str | None = None,
        *,
        login: int | None = None,
        password: str | None = None,
        server: str | None = None,
        timeout: int | None = None,
        portable: bool = False,
    ) -> bool:
        self._record("initialize", (path,), {"login": login, "server": server, "timeout": timeout})
        if login is not None and type(login) is not int:
            self._fail(-2, 'Invalid "login" argument')
            return False
        if self.init_errors:
            self._fail(*self.init_errors.pop(0))
            return False
        self.initialized = True
        self.error = (1, "Success")
        return True

    def login(
        self, login: int, password: str | None = None, server: str | None = None, timeout: int | None = None
    ) -> bool:
        self._record("login", (login,), {"server": server})
        return self._gate("login")

    def shutdown(self) -> None:
        self._record("shutdown", (), {})
        self.initialized = False

    def version(self) -> tuple[int, int, str] | None:
        self._record("version", (), {})
        return (500, 6231, "20 Sep 2026") if self._gate("version") else None

    def last_error(self) -> tuple[int, str]:
        self.calls.append(("last_error", (), {}))
        return self.error

    def terminal_info(self) -> TerminalInfo | None:
        self._record("terminal_info", (), {})
        if not self._gate("terminal_info"):
            return None
        return TerminalInfo(
            False,
            False,
            self.terminal_connected,
            False,
            self.terminal_trade_allowed,
            False,
            False,
            False,
            False,
            False,
            6231,
            100_000,
            0,
            35_000,
            0.0,
            0.0,
            "Fake Broker Ltd",
            "MetaTrader 5",
            "English",
            "C:\\MT5",
            "C:\\MT5",
            "C:\\Common",
        )

    def account_info(self) -> AccountInfo | None:
        self._record("account_info", (), {})
        if not self._gate("account_info"):
            return None
        profit, equity, margin = self._equity_margin()
        free = equity - margin
        level = equity / margin * 100 if margin else 0.0
        return AccountInfo(
            self.login_id,
            0,
            self.leverage,
            200,
            0,
            True,
            True,
            self.margin_mode,
            2,
            False,
            round(self.balance, 2),
            0.0,
            profit,
            round(equity, 2),
            round(margin, 2),
            round(free, 2),
            level,
            50.0,
            30.0,
            0.0,
            0.0,
            0.0,
            0.0,
            0.0,
            "Fake Trader",
            "FakeBroker-Demo",
            "USD",
            "Fake Broker Ltd",
        )

    # ---- market data ----------------------------------------------------------------------------
    def symbol_info(self, symbol: str) -> SymbolInfo | None:
        self._record("symbol_info", (symbol,), {})
        if not self._gate("symbol_info"):
            return None
        if symbol not in self.symbols:
            return self._fail(-4, "Terminal: Not found")
        values = dict(self.symbols[symbol])
        if symbol in self.ticks:
            bid, ask, msc = self.ticks[symbol]
            point = values["point"]
            values.update(
                bid=bid,
                ask=ask,
                time=msc // 1000,
                spread=round((ask - bid) / point),
                select=symbol in self.selected,
            )
        return SymbolInfo(**values)

    def symbol_select(self, symbol: str, enable: bool = True) -> bool:
        self._record("symbol_select", (symbol, enable), {})
        if not self._gate("symbol_select"):
            return False
        if symbol not in self.symbols:
            self._fail(-4, "Terminal: Not found")
            return False
        (self.selected.add if enable else self.selected.discard)(symbol)
        return True

    def symbol_info_tick(self, symbol: str) -> Tick | None:
        self._record("symbol_info_tick", (symbol,), {})
        if not self._gate("symbol_info_tick"):
            return None
        if symbol not in self.ticks or symbol not in self.selected:
            return self._fail(-4, "Terminal: Not found")
        bid, ask, msc = self.ticks[symbol]
        return Tick(msc // 1000, bid, ask, 0.0, 0, msc, 6, 0.0)

    def copy_rates_from_pos(
        self, symbol: str, timeframe: int, start_pos: int, count: int
    ) -> np.ndarray | None:
        self._record("copy_rates_from_pos", (symbol, timeframe, start_pos, count), {})
        if not self._gate("copy_rates_from_pos"):
            return None
        rates = self.rates.get((symbol, timeframe))
        if rates is None or type(start_pos) is not int or type(count) is not int:
            return self._fail(-1, "Terminal: Call failed")
        end = len(rates) - start_pos
        return rates[max(0, end - count) : max(0, end)].copy()

    def copy_rates_range(
        self, symbol: str, timeframe: int, date_from: Any, date_to: Any
    ) -> np.ndarray | None:
        """Bars with open time in [date_from, date_to] (server clock); an empty array when there are none."""
        self._record("copy_rates_range", (symbol, timeframe, date_from, date_to), {})
        if not self._gate("copy_rates_range"):
            return None
        lo, hi = self._epoch(date_from), self._epoch(date_to)
        if lo is None or hi is None or type(timeframe) is not int:
            return self._fail(-2, "Invalid arguments")
        if symbol not in self.symbols:
            return self._fail(-4, "Terminal: Not found")
        rates = self.rates.get((symbol, timeframe), np.zeros(0, dtype=RATES_DTYPE))
        return rates[(rates["time"] >= lo) & (rates["time"] <= hi)].copy()

    def copy_ticks_range(self, symbol: str, date_from: Any, date_to: Any, flags: int) -> np.ndarray | None:
        """Ticks with time in [date_from, date_to] seconds (server clock); an empty array when there are none."""
        self._record("copy_ticks_range", (symbol, date_from, date_to, flags), {})
        if not self._gate("copy_ticks_range"):
            return None
        lo, hi = self._epoch(date_from), self._epoch(date_to)
        if lo is None or hi is None or type(flags) is not int:
            return self._fail(-2, "Invalid arguments")
        if symbol not in self.symbols:
            return self._fail(-4, "Terminal: Not found")
        ticks = self.tick_history.get(symbol, np.zeros(0, dtype=TICKS_DTYPE))
        return ticks[(ticks["time_msc"] >= lo * 1000) & (ticks["time_msc"] <= hi * 1000)].copy()

    # ---- positions and history ------------------------------------------------------------------
    def _as_position(self, p: dict[str, Any]) -> TradePosition:
        return TradePosition(
            p["ticket"],
            p["time_msc"] // 1000,
            p["time_msc"],
            p["time_update_msc"] // 1000,
            p["time_update_msc"],
            p["type"],
            p["magic"],
            p["identifier"],
            p["reason"],
            p["volume"],
            p["price_open"],
            p["sl"],
            p["tp"],
            self._close_price(p),
            0.0,
            self._floating(p),
            p["symbol"],
            p["comment"],
            "",
        )

    def positions_get(
        self, *args: Any, symbol: str | None = None, group: str | None = None, ticket: int | None = None
    ) -> tuple[TradePosition, ...] | None:
        self._record("positions_get", args, {"symbol": symbol, "group": group, "ticket": ticket})
        if not self._gate("positions_get"):
            return None
        if args:
            return self._fail(-2, "Unnamed arguments not allowed")
        out = [self._as_position(p) for p in self.positions.values()]
        if symbol is not None:
            out = [p for p in out if p.symbol == symbol]
        elif ticket is not None:
            out = [p for p in out if p.ticket == ticket]
        return tuple(out)

    def positions_total(self) -> int:
        self._record("positions_total", (), {})
        return len(self.positions) if self._gate("positions_total") else 0

    def orders_get(
        self, *args: Any, symbol: str | None = None, group: str | None = None, ticket: int | None = None
    ) -> tuple[TradeOrder, ...] | None:
        self._record("orders_get", args, {"symbol": symbol, "ticket": ticket})
        if not self._gate("orders_get"):
            return None
        return ()

    def history_deals_get(
        self, *args: Any, group: str | None = None, ticket: int | None = None, position: int | None = None
    ) -> tuple[TradeDeal, ...] | None:
        self._record("history_deals_get", args, {"group": group, "ticket": ticket, "position": position})
        if not self._gate("history_deals_get"):
            return None
        if ticket is not None:
            return tuple(d for d in self.deals if d.order == ticket)
        if position is not None:
            return tuple(d for d in self.deals if d.position_id == position)
        if len(args) != 2:
            return self._fail(-2, "Invalid arguments")
        lo, hi = (self._epoch(a) for a in args)
        if lo is None or hi is None:
            return self._fail(-2, 'Invalid "date_from" argument')
        return tuple(d for d in self.deals if lo <= d.time <= hi)

    @staticmethod
    def _epoch(value: Any) -> int | None:
        if isinstance(value, datetime):
            aware = value if value.tzinfo else value.replace(tzinfo=UTC)
            return int(aware.timestamp())
        if type(value) in (int, float):
            return int(value)
        return None

    # ---- trading --------------------------------------------------------------------------------
    def order_calc_margin(self, action: int, symbol: str, volume: float, price: float) -> float | None:
        self._record("order_calc_margin", (action, symbol, volume, price), {})
        if not self._gate("order_calc_margin") or symbol not in self.symbols:
            return None
        return round(self._margin(symbol, volume, price), 2)

    def order_calc_profit(
        self, action: int, symbol: str, volume: float, price_open: float, price_close: float
    ) -> float | None:
        self._record("order_calc_profit", (action, symbol, volume, price_open, price_close), {})
        if not self._gate("order_calc_profit") or symbol not in self.symbols:
            return None
        sign = 1 if action == 0 else -1
        return round(
            (price_close - price_open) * sign * self.symbols[symbol]["trade_contract_size"] * volume, 2
        )

    def _check_args(self, request: Any) -> str | None:
        if not isinstance(request, dict):
            return "Invalid arguments"
        for key, value in request.items():
            if value is None:
                return f'Invalid "{key}" argument'
            if key in _FLOAT_FIELDS and type(value) is not float:
                return f'Invalid "{key}" argument'
            if key in _INT_FIELDS and type(value) is not int:
                return f'Invalid "{key}" argument'
            if key in ("symbol", "comment") and type(value) is not str:
                return f'Invalid "{key}" argument'
        if len(request.get("comment", "")) > 31:
            return 'Invalid "comment" argument'
        if "action" not in request:
            return 'Invalid "action" argument'
        return None

    def _request_record(self, r: dict[str, Any]) -> TradeRequest:
        return TradeRequest(
            **{f: r.get(f, "" if f in ("symbol", "comment") else 0) for f in TradeRequest._fields}
        )

    def _reply(
        self,
        retcode: int,
        r: dict[str, Any],
        deal: int = 0,
        order: int = 0,
        volume: float = 0.0,
        price: float = 0.0,
    ) -> OrderSendResult:
        self._request_id += 1
        bid, ask, _ = self.ticks.get(r.get("symbol", ""), (0.0, 0.0, 0))
        done = retcode in (10008, 10009, 10010)
        return OrderSendResult(
            retcode,
            deal,
            order,
            volume,
            price,
            bid if done else 0.0,
            ask if done else 0.0,
            RETCODE_COMMENTS.get(retcode, "Request rejected"),
            self._request_id,
            0,
            self._request_record(r),
        )

    def _stops_ok(self, symbol: str, side: int, sl: float, tp: float) -> bool:
        spec = self.symbols[symbol]
        bid, ask, _ = self.ticks[symbol]
        dist = spec["trade_stops_level"] * spec["point"]
        if side == 0:  # buy position: stops are checked against bid
            return (not sl or sl <= bid - dist - 1e-9) and (not tp or tp >= bid + dist + 1e-9)
        return (not sl or sl >= ask + dist + 1e-9) and (not tp or tp <= ask - dist - 1e-9)

    def _filling_ok(self, symbol: str, filling: int) -> bool:
        spec = self.symbols[symbol]
        if spec["trade_exemode"] in (0, 1):  # Request/Instant execution ignores type_filling
            return True
        mask = spec["filling_mode"]
        return (
            (filling == 0 and mask & 1)
            or (filling == 1 and mask & 2)
            or (filling == 2 and spec["trade_exemode"] == 3)
            or (filling == 2 and mask == 0)
        )

    def _validate(self, r: dict[str, Any]) -> int:
        """The trade server's checks in the real order; 0 when the request would pass."""
        if not self.terminal_trade_allowed:
            return 10027
        symbol = r.get("symbol", "")
        if symbol not in self.symbols:
            return 10013
        spec = self.symbols[symbol]
        if self.market_closed:
            return 10018
        action = r["action"]
        if action == 6:  # SLTP
            pos = self.positions.get(r.get("position", 0))
            if pos is None:
                return 10013
            sl, tp = r.get("sl", 0.0), r.get("tp", 0.0)
            if abs(sl - pos["sl"]) < 1e-9 and abs(tp - pos["tp"]) < 1e-9:
                return 10025
            return 0 if self._stops_ok(symbol, pos["type"], sl, tp) else 10016
        if action != 1:
            return 10013
        side, volume = r.get("type", -1), r.get("volume", 0.0)
        if side not in (0, 1):
            return 10013
        steps = volume / spec["volume_step"]
        if (
            volume < spec["volume_min"] - 1e-9
            or volume > spec["volume_max"] + 1e-9
            or abs(steps - round(steps)) > 1e-6
        ):
            return 10014
        if not self._filling_ok(symbol, r.get("type_filling", 0)):
            return 10030
        if r.get("position"):
            pos = self.positions.get(r["position"])
            if pos is None:
                return 10036
            if pos["type"] == side:
                return 10013
            if volume > pos["volume"] + 1e-9:
                return 10038
            return 0
        if not self._stops_ok(symbol, side, r.get("sl", 0.0), r.get("tp", 0.0)):
            return 10016
        bid, ask, _ = self.ticks[symbol]
        _, equity, margin = self._equity_margin()
        if self._margin(symbol, volume, ask if side == 0 else bid) > equity - margin:
            return 10019
        return 0

    def order_check(self, request: dict) -> OrderCheckResult | None:
        self._record("order_check", (request,), {})
        if (bad := self._check_args(request)) is not None:
            return self._fail(-2, bad)
        if not self._gate("order_check"):
            return None
        code = self._validate(request)
        profit, equity, margin = self._equity_margin()
        return OrderCheckResult(
            code,
            self.balance,
            equity,
            profit,
            margin,
            equity - margin,
            0.0,
            "Done" if code == 0 else RETCODE_COMMENTS.get(code, "Rejected"),
            self._request_record(request),
        )

    def order_send(self, request: dict) -> OrderSendResult | None:
        self._record("order_send", (request,), {})
        if (bad := self._check_args(request)) is not None:
            return self._fail(-2, bad)
        if not self._gate("order_send"):
            return None
        self.sent.append(dict(request))
        outcome = self.outcomes.pop(0) if self.outcomes else Outcome()
        try:
            executed = None
            if outcome.execute or (outcome.retcode is None and outcome.error is None):
                code = self._validate(request)
                if code:
                    return self._reply(code, request)
                executed = self._execute(request, outcome.fill_volume)
            if outcome.error is not None:
                return self._fail(*outcome.error)
            if outcome.retcode is None:
                return executed
            if executed is None:
                return self._reply(outcome.retcode, request)
            return executed._replace(
                retcode=outcome.retcode, comment=RETCODE_COMMENTS.get(outcome.retcode, "")
            )
        finally:
            if outcome.move_to is not None:
                self.set_tick(*outcome.move_to)
            if outcome.drop:
                self.drop_connection()
                if outcome.error is None:
                    self.error = (-10004, "No IPC connection")

    def _execute(self, r: dict[str, Any], fill_volume: float | None) -> OrderSendResult:
        symbol = r["symbol"]
        bid, ask, _ = self.ticks[symbol]
        if r["action"] == 6:
            pos = self.positions[r["position"]]
            pos["sl"], pos["tp"] = r.get("sl", 0.0), r.get("tp", 0.0)
            pos["time_update_msc"] = self._now_msc(symbol)
            return self._reply(10009, r)
        side = r["type"]
        price = ask if side == 0 else bid
        volume = fill_volume if fill_volume is not None else r["volume"]
        order = self._ticket()
        netted = None if self.hedging or r.get("position") else self._symbol_position(symbol)
        if r.get("position"):
            deal = self._close(r["position"], volume, price, order, reason=3, comment=r.get("comment", ""))
        elif netted is not None:
            deal = self._net(netted, r, side, volume, price, order)
        else:
            deal = self._open(
                symbol,
                side,
                volume,
                price,
                r.get("sl", 0.0),
                r.get("tp", 0.0),
                r.get("magic", 0),
                r.get("comment", ""),
                order,
                reason=3,
            )
        return self._reply(
            10010 if fill_volume is not None else 10009, r, deal=deal, order=order, volume=volume, price=price
        )

    @property
    def hedging(self) -> bool:
        return self.margin_mode == self.ACCOUNT_MARGIN_MODE_RETAIL_HEDGING

    def _symbol_position(self, symbol: str) -> dict[str, Any] | None:
        return next((p for p in self.positions.values() if p["symbol"] == symbol), None)

    def _net(
        self, pos: dict[str, Any], r: dict[str, Any], side: int, volume: float, price: float, order: int
    ) -> int:
        """A netting account's one position per symbol: a same-side deal adds to it (volume-weighted
        price), an opposite one reduces, closes or reverses it (DEAL_ENTRY_INOUT: the ticket becomes
        the reversing order's, the identifier stays)."""
        symbol, magic, comment = pos["symbol"], r.get("magic", 0), r.get("comment", "")
        sl, tp = r.get("sl", 0.0), r.get("tp", 0.0)
        if side == pos["type"]:
            total = round(pos["volume"] + volume, 8)
            pos["price_open"] = round((pos["price_open"] * pos["volume"] + price * volume) / total, 5)
            pos["volume"] = total
            pos["sl"], pos["tp"] = sl or pos["sl"], tp or pos["tp"]
            pos["time_update_msc"] = self._now_msc(symbol)
            return self._add_deal(
                order, side, 0, magic, pos["identifier"], 3, volume, price, 0.0, symbol, comment
            )
        if volume <= pos["volume"] + 1e-9:
            return self._close(pos["ticket"], volume, price, order, reason=3, comment=comment, magic=magic)
        sign = 1 if pos["type"] == 0 else -1
        size = self.symbols[symbol]["trade_contract_size"]
        profit = round((price - pos["price_open"]) * sign * size * pos["volume"], 2)
        rest = round(volume - pos["volume"], 8)
        del self.positions[pos["ticket"]]
        msc = self._now_msc(symbol)
        self.positions[order] = dict(
            pos,
            ticket=order,
            type=side,
            volume=rest,
            price_open=price,
            sl=sl,
            tp=tp,
            time_msc=msc,
            time_update_msc=msc,
            magic=magic,
            comment=comment,
        )
        return self._add_deal(
            order, side, 2, magic, pos["identifier"], 3, volume, price, profit, symbol, comment
        )

    def _add_deal(
        self,
        order: int,
        side: int,
        entry: int,
        magic: int,
        position_id: int,
        reason: int,
        volume: float,
        price: float,
        profit: float,
        symbol: str,
        comment: str,
    ) -> int:
        ticket = self._ticket()
        msc = self._now_msc(symbol)
        commission = -round(self.commission_per_lot * volume, 2)
        self.balance += profit + commission
        self.deals.append(
            TradeDeal(
                ticket,
                order,
                msc // 1000,
                msc,
                side,
                entry,
                magic,
                position_id,
                reason,
                volume,
                price,
                commission,
                0.0,
                profit,
                0.0,
                symbol,
                comment,
                "",
            )
        )
        return ticket

    def _open(
        self,
        symbol: str,
        side: int,
        volume: float,
        price: float,
        sl: float,
        tp: float,
        magic: int,
        comment: str,
        order: int,
        reason: int,
    ) -> int:
        msc = self._now_msc(symbol)
        self.positions[order] = dict(
            ticket=order,
            identifier=order,
            time_msc=msc,
            time_update_msc=msc,
            type=side,
            magic=magic,
            reason=reason,
            volume=volume,
            price_open=price,
            sl=sl,
            tp=tp,
            symbol=symbol,
            comment=comment,
        )
        return self._add_deal(order, side, 0, magic, order, reason, volume, price, 0.0, symbol, comment)

    def _close(
        self,
        ticket: int,
        volume: float,
        price: float,
        order: int,
        reason: int,
        comment: str = "",
        magic: int | None = None,
    ) -> int:
        pos = self.positions[ticket]
        sign = 1 if pos["type"] == 0 else -1
        size = self.symbols[pos["symbol"]]["trade_contract_size"]
        profit = round((price - pos["price_open"]) * sign * size * volume, 2)
        pos["volume"] = round(pos["volume"] - volume, 8)
        if pos["volume"] <= 1e-9:
            del self.positions[ticket]
        return self._add_deal(
            order,
            1 - pos["type"],
            1,
            pos["magic"] if magic is None else magic,
            pos["identifier"],
            reason,
            volume,
            price,
            profit,
            pos["symbol"],
            comment,
        )

    def _trigger_stops(self) -> None:
        for ticket, pos in list(self.positions.items()):
            bid, ask, _ = self.ticks[pos["symbol"]]
            px = bid if pos["type"] == 0 else ask
            sign = 1 if pos["type"] == 0 else -1
            if pos["sl"] and (px - pos["sl"]) * sign <= 0:
                self._close(
                    ticket,
                    pos["volume"],
                    pos["sl"],
                    self._ticket(),
                    reason=4,
                    comment=f"[sl {pos['sl']:.2f}]",
                )
            elif pos["tp"] and (px - pos["tp"]) * sign >= 0:
                self._close(
                    ticket,
                    pos["volume"],
                    pos["tp"],
                    self._ticket(),
                    reason=5,
                    comment=f"[tp {pos['tp']:.2f}]",
                )
