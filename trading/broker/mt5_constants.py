"""MetaTrader5 constants the adapter uses, with the real package's values, and what each code means.

Values are those of the official `MetaTrader5` wheel (5.0.6231, see shared/spec/mt5-api.md §1.5-1.7).
The adapter uses this table instead of reading attributes off the injected module, so an mt5linux
proxy is never asked for them and a hand-typed mock cannot drift the values.
"""

from __future__ import annotations

from trading.broker.base import BrokerErrorKind

# Timeframes (H1 = 1 | 0x4000, D1 = 24 | 0x4000; public mocks that use 60/1440 are wrong)
TIMEFRAME_M1 = 1
TIMEFRAME_M5 = 5
TIMEFRAME_M15 = 15
TIMEFRAME_M30 = 30
TIMEFRAME_H1 = 16385
TIMEFRAME_H4 = 16388
TIMEFRAME_D1 = 16408

TIMEFRAME_BY_MINUTES: dict[int, int] = {
    1: TIMEFRAME_M1,
    5: TIMEFRAME_M5,
    15: TIMEFRAME_M15,
    30: TIMEFRAME_M30,
    60: TIMEFRAME_H1,
    240: TIMEFRAME_H4,
    1440: TIMEFRAME_D1,
}

# copy_ticks_* flags
COPY_TICKS_ALL = -1
COPY_TICKS_INFO = 1
COPY_TICKS_TRADE = 2

ORDER_TYPE_BUY = 0
ORDER_TYPE_SELL = 1

TRADE_ACTION_DEAL = 1
TRADE_ACTION_SLTP = 6

# request field `type_filling`
ORDER_FILLING_FOK = 0
ORDER_FILLING_IOC = 1
ORDER_FILLING_RETURN = 2

ORDER_TIME_GTC = 0

POSITION_TYPE_BUY = 0
POSITION_TYPE_SELL = 1

DEAL_TYPE_BUY = 0
DEAL_TYPE_SELL = 1
DEAL_TYPE_BALANCE = 2

DEAL_ENTRY_IN = 0
DEAL_ENTRY_OUT = 1
DEAL_ENTRY_INOUT = 2
DEAL_ENTRY_OUT_BY = 3

DEAL_REASON_CLIENT = 0
DEAL_REASON_MOBILE = 1
DEAL_REASON_WEB = 2
DEAL_REASON_EXPERT = 3
DEAL_REASON_SL = 4
DEAL_REASON_TP = 5
DEAL_REASON_SO = 6
DEAL_REASON_ROLLOVER = 7
DEAL_REASON_VMARGIN = 8
DEAL_REASON_SPLIT = 9

ACCOUNT_TRADE_MODE_DEMO = 0
ACCOUNT_TRADE_MODE_CONTEST = 1
ACCOUNT_TRADE_MODE_REAL = 2
ACCOUNT_MARGIN_MODE_RETAIL_NETTING = 0
ACCOUNT_MARGIN_MODE_EXCHANGE = 1
ACCOUNT_MARGIN_MODE_RETAIL_HEDGING = 2

SYMBOL_TRADE_MODE_DISABLED = 0
SYMBOL_TRADE_MODE_LONGONLY = 1
SYMBOL_TRADE_MODE_SHORTONLY = 2
SYMBOL_TRADE_MODE_CLOSEONLY = 3
SYMBOL_TRADE_MODE_FULL = 4

SYMBOL_TRADE_EXECUTION_REQUEST = 0
SYMBOL_TRADE_EXECUTION_INSTANT = 1
SYMBOL_TRADE_EXECUTION_MARKET = 2
SYMBOL_TRADE_EXECUTION_EXCHANGE = 3

# symbol_info().filling_mode is a bitmask of these; the Python package does NOT export them (MQL5 values)
SYMBOL_FILLING_FOK = 1
SYMBOL_FILLING_IOC = 2
SYMBOL_FILLING_BOC = 4

# Trade server return codes (OrderSendResult.retcode)
TRADE_RETCODE_REQUOTE = 10004
TRADE_RETCODE_REJECT = 10006
TRADE_RETCODE_CANCEL = 10007
TRADE_RETCODE_PLACED = 10008
TRADE_RETCODE_DONE = 10009
TRADE_RETCODE_DONE_PARTIAL = 10010
TRADE_RETCODE_ERROR = 10011
TRADE_RETCODE_TIMEOUT = 10012
TRADE_RETCODE_INVALID = 10013
TRADE_RETCODE_INVALID_VOLUME = 10014
TRADE_RETCODE_INVALID_PRICE = 10015
TRADE_RETCODE_INVALID_STOPS = 10016
TRADE_RETCODE_TRADE_DISABLED = 10017
TRADE_RETCODE_MARKET_CLOSED = 10018
TRADE_RETCODE_NO_MONEY = 10019
TRADE_RETCODE_PRICE_CHANGED = 10020
TRADE_RETCODE_PRICE_OFF = 10021
TRADE_RETCODE_INVALID_EXPIRATION = 10022
TRADE_RETCODE_ORDER_CHANGED = 10023
TRADE_RETCODE_TOO_MANY_REQUESTS = 10024
TRADE_RETCODE_NO_CHANGES = 10025
TRADE_RETCODE_SERVER_DISABLES_AT = 10026
TRADE_RETCODE_CLIENT_DISABLES_AT = 10027
TRADE_RETCODE_LOCKED = 10028
TRADE_RETCODE_FROZEN = 10029
TRADE_RETCODE_INVALID_FILL = 10030
TRADE_RETCODE_CONNECTION = 10031
TRADE_RETCODE_ONLY_REAL = 10032
TRADE_RETCODE_LIMIT_ORDERS = 10033
TRADE_RETCODE_LIMIT_VOLUME = 10034
TRADE_RETCODE_INVALID_ORDER = 10035
TRADE_RETCODE_POSITION_CLOSED = 10036
TRADE_RETCODE_INVALID_CLOSE_VOLUME = 10038
TRADE_RETCODE_CLOSE_ORDER_EXIST = 10039
TRADE_RETCODE_LIMIT_POSITIONS = 10040
TRADE_RETCODE_REJECT_CANCEL = 10041
TRADE_RETCODE_LONG_ONLY = 10042
TRADE_RETCODE_SHORT_ONLY = 10043
TRADE_RETCODE_CLOSE_ONLY = 10044
TRADE_RETCODE_FIFO_CLOSE = 10045
TRADE_RETCODE_HEDGE_PROHIBITED = 10046  # MQL5 only; the Python package does not export it

# last_error() codes
RES_S_OK = 1
RES_E_FAIL = -1
RES_E_INVALID_PARAMS = -2
RES_E_NO_MEMORY = -3
RES_E_NOT_FOUND = -4
RES_E_INVALID_VERSION = -5
RES_E_AUTH_FAILED = -6
RES_E_UNSUPPORTED = -7
RES_E_AUTO_TRADING_DISABLED = -8
RES_E_INTERNAL_FAIL = -10000
RES_E_INTERNAL_FAIL_SEND = -10001
RES_E_INTERNAL_FAIL_RECEIVE = -10002
RES_E_INTERNAL_FAIL_INIT = -10003
RES_E_INTERNAL_FAIL_CONNECT = -10004
RES_E_INTERNAL_FAIL_TIMEOUT = -10005

SUCCESS_RETCODES = frozenset({TRADE_RETCODE_PLACED, TRADE_RETCODE_DONE, TRADE_RETCODE_DONE_PARTIAL})
# MetaQuotes' own Buy()/Sell() helpers retry these with a fresh tick
FRESH_PRICE_RETCODES = frozenset(
    {TRADE_RETCODE_REQUOTE, TRADE_RETCODE_PRICE_CHANGED, TRADE_RETCODE_PRICE_OFF, TRADE_RETCODE_INVALID_PRICE}
)
# the order may or may not exist at the server: reconcile before doing anything else
UNKNOWN_OUTCOME_RETCODES = frozenset({TRADE_RETCODE_TIMEOUT, TRADE_RETCODE_CONNECTION, TRADE_RETCODE_LOCKED})
# order_send returned None with one of these: the terminal refused the call itself, nothing was sent
# (bad arguments, API trading disabled, version mismatch, not logged in). Any other code: outcome unknown.
NOT_SENT_LAST_ERRORS = frozenset(
    {
        RES_E_INVALID_PARAMS,
        RES_E_INVALID_VERSION,
        RES_E_AUTH_FAILED,
        RES_E_UNSUPPORTED,
        RES_E_AUTO_TRADING_DISABLED,
    }
)

K = BrokerErrorKind
RETCODES: dict[int, tuple[BrokerErrorKind, str]] = {
    10004: (K.REQUOTE, "requote: the price moved beyond the allowed deviation"),
    10006: (K.REJECTED, "the broker's dealer rejected the request"),
    10007: (K.REJECTED, "the request was cancelled by the trader"),
    10008: (K.REJECTED, "pending order placed (not expected for a market order)"),
    10009: (K.REJECTED, "request completed"),
    10010: (K.REJECTED, "request only partly completed"),
    10011: (K.REJECTED, "the trade server failed to process the request"),
    10012: (K.TIMEOUT, "the request was cancelled by timeout; the order may or may not exist"),
    10013: (K.INVALID_REQUEST, "the trade server says the request is invalid"),
    10014: (K.INVALID_VOLUME, "the volume is not allowed for this symbol (min, step or max)"),
    10015: (K.REQUOTE, "the price in the request is invalid (stale quote)"),
    10016: (K.INVALID_STOPS, "stop loss or take profit is too close to the price or on the wrong side"),
    10017: (K.TRADE_DISABLED, "trading is disabled for this symbol or account"),
    10018: (K.MARKET_CLOSED, "the market is closed"),
    10019: (K.NO_MONEY, "not enough free margin for this order"),
    10020: (K.REQUOTE, "prices changed while the request was processed"),
    10021: (K.REQUOTE, "the broker has no quotes for the symbol right now"),
    10022: (K.INVALID_REQUEST, "the order expiration is invalid"),
    10023: (K.REJECTED, "the order changed state while the request was processed"),
    10024: (K.REJECTED, "too many requests; the broker is throttling this account"),
    10025: (K.INVALID_REQUEST, "nothing to change: stop loss and take profit already have these values"),
    10026: (K.TRADE_DISABLED, "automated trading is disabled by the trade server"),
    10027: (
        K.TRADE_DISABLED,
        "automated trading is switched off in the terminal (the 'Algo Trading' button)",
    ),
    10028: (K.REJECTED, "the request is locked for processing"),
    10029: (K.REJECTED, "the position is inside the freeze level and cannot be changed now"),
    10030: (K.INVALID_REQUEST, "the filling mode is not supported for this symbol"),
    10031: (K.DISCONNECTED, "the terminal has no connection to the trade server"),
    10032: (K.TRADE_DISABLED, "this operation is allowed on live accounts only"),
    10033: (K.REJECTED, "the limit on pending orders is reached"),
    10034: (K.INVALID_VOLUME, "the volume limit for this symbol is reached"),
    10035: (K.INVALID_REQUEST, "the order type is invalid or prohibited"),
    10036: (K.NOT_FOUND, "the position is already closed"),
    10038: (K.INVALID_VOLUME, "the close volume is larger than the position's volume"),
    10039: (K.REJECTED, "a close order for this position already exists"),
    10040: (K.REJECTED, "the broker's limit on open positions is reached"),
    10041: (K.REJECTED, "the pending order activation was rejected"),
    10042: (K.TRADE_DISABLED, "only long positions are allowed on this symbol"),
    10043: (K.TRADE_DISABLED, "only short positions are allowed on this symbol"),
    10044: (K.TRADE_DISABLED, "only closing positions is allowed on this symbol"),
    10045: (K.REJECTED, "positions must be closed in FIFO order on this account"),
    10046: (K.REJECTED, "opposite positions (hedging) are prohibited on this account"),
}
del K


def describe_retcode(retcode: int) -> tuple[BrokerErrorKind, str]:
    """(error kind, a sentence a person understands) for a trade server return code."""
    if retcode in RETCODES:
        return RETCODES[retcode]
    return BrokerErrorKind.REJECTED, f"the trade server answered with unknown return code {retcode}"


def describe_last_error(code: int, message: str = "") -> tuple[BrokerErrorKind, str]:
    """Classify a `last_error()` pair: transport (<= -10000), configuration, bad request, no data."""
    suffix = f" ({message})" if message else ""
    if code <= RES_E_INTERNAL_FAIL:
        return BrokerErrorKind.DISCONNECTED, f"the link to the MetaTrader 5 terminal failed{suffix}"
    if code == RES_E_AUTH_FAILED:
        return (
            BrokerErrorKind.CONFIG,
            f"the terminal could not log in: check login, password and server{suffix}",
        )
    if code == RES_E_AUTO_TRADING_DISABLED:
        return BrokerErrorKind.CONFIG, (
            f"trading through the Python API is disabled in the terminal (Tools > Options > Expert Advisors){suffix}"
        )
    if code in (RES_E_INVALID_VERSION, RES_E_UNSUPPORTED):
        return BrokerErrorKind.CONFIG, f"the terminal and the Python package do not match{suffix}"
    if code == RES_E_INVALID_PARAMS:
        return BrokerErrorKind.INVALID_REQUEST, f"the terminal refused the call's arguments{suffix}"
    if code == RES_E_NOT_FOUND:
        return BrokerErrorKind.NOT_FOUND, f"the terminal found nothing{suffix}"
    return BrokerErrorKind.REJECTED, f"the terminal could not answer the call{suffix}"


def timeframe_from_minutes(minutes: int) -> int:
    try:
        return TIMEFRAME_BY_MINUTES[minutes]
    except KeyError:
        allowed = ", ".join(str(m) for m in TIMEFRAME_BY_MINUTES)
        raise ValueError(f"timeframe of {minutes} minutes is not supported (use one of {allowed})") from None
