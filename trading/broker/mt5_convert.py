"""MT5 records -> domain dataclasses. Every function runs inside the locked worker call, so no remote
(rpyc) proxy outlives the call that fetched it; server-clock epochs become aware UTC on the way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from trading.broker import mt5_constants as C
from trading.broker.base import BrokerError, BrokerErrorKind
from trading.domain import AccountInfo, Deal, DealEntry, DealReason, Position, Side, SymbolSpec
from trading.timezones import ServerClock

# numpy dtype of MetaTrader5.copy_ticks_* (time in server-clock epoch seconds, time_msc in milliseconds)
MT5_TICKS_DTYPE = np.dtype(
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

DEAL_REASONS = {
    C.DEAL_REASON_CLIENT: DealReason.CLIENT,
    C.DEAL_REASON_MOBILE: DealReason.CLIENT,
    C.DEAL_REASON_WEB: DealReason.CLIENT,
    C.DEAL_REASON_EXPERT: DealReason.CLIENT,
    C.DEAL_REASON_SL: DealReason.SL,
    C.DEAL_REASON_TP: DealReason.TP,
    C.DEAL_REASON_SO: DealReason.STOP_OUT,
}


@dataclass(frozen=True, slots=True)
class TerminalState:
    connected: bool
    trade_allowed: bool
    tradeapi_disabled: bool
    build: int


def terminal_state(info: Any) -> TerminalState:
    return TerminalState(
        bool(info.connected), bool(info.trade_allowed), bool(info.tradeapi_disabled), int(info.build)
    )


def to_account(a: Any) -> AccountInfo:
    return AccountInfo(
        login=int(a.login),
        balance=float(a.balance),
        equity=float(a.equity),
        margin=float(a.margin),
        free_margin=float(a.margin_free),
        currency=str(a.currency),
        leverage=int(a.leverage),
        server=str(a.server),
        trade_allowed=bool(a.trade_allowed) and bool(a.trade_expert),
    )


def to_spec(s: Any) -> tuple[SymbolSpec, int]:
    spec = SymbolSpec(
        name=str(s.name),
        contract_size=float(s.trade_contract_size),
        point=float(s.point),
        digits=int(s.digits),
        tick_size=float(s.trade_tick_size),
        tick_value=float(s.trade_tick_value),
        volume_min=float(s.volume_min),
        volume_step=float(s.volume_step),
        volume_max=float(s.volume_max),
        stops_level=int(s.trade_stops_level),
        freeze_level=int(s.trade_freeze_level),
        filling_modes=int(s.filling_mode),
        trade_mode=int(s.trade_mode),
    )
    return spec, int(s.trade_exemode)


def to_position(p: Any, clock: ServerClock) -> Position:
    return Position(
        ticket=int(p.ticket),
        symbol=str(p.symbol),
        side=Side.BUY if int(p.type) == C.POSITION_TYPE_BUY else Side.SELL,
        volume=float(p.volume),
        open_price=float(p.price_open),
        open_time=clock.epoch_to_utc(int(p.time_msc) / 1000),
        sl=float(p.sl),
        tp=float(p.tp),
        profit=float(p.profit),
        magic=int(p.magic),
        comment=str(p.comment),
        current_price=float(p.price_current),
        swap=float(p.swap),
    )


def to_deal(d: Any, clock: ServerClock) -> Deal | None:
    """A buy/sell deal as a domain Deal; balance, credit, commission rows give None."""
    kind = int(d.type)
    if kind not in (C.DEAL_TYPE_BUY, C.DEAL_TYPE_SELL):
        return None
    entry = int(d.entry)
    return Deal(
        ticket=int(d.ticket),
        position_ticket=int(d.position_id),
        symbol=str(d.symbol),
        side=Side.BUY if kind == C.DEAL_TYPE_BUY else Side.SELL,
        entry=DealEntry.IN if entry == C.DEAL_ENTRY_IN else DealEntry.OUT,  # INOUT/OUT_BY close something
        volume=float(d.volume),
        price=float(d.price),
        time=clock.epoch_to_utc(int(d.time_msc) / 1000),
        profit=float(d.profit),
        commission=float(d.commission),
        swap=float(d.swap),
        fee=float(d.fee),
        magic=int(d.magic),
        reason=DEAL_REASONS.get(int(d.reason), DealReason.OTHER),
        comment=str(d.comment),
    )


def local_array(rates: Any) -> np.ndarray:
    """A local copy of a rates array. An rpyc netref (a bridge that returned it by reference) is pulled by
    value in one pickle round trip: numpy's element-wise path over a netref is slow and warns under NumPy 2.
    """
    try:
        from rpyc.core.netref import BaseNetref
        from rpyc.utils.classic import obtain
    except ImportError:  # no bridge installed: the array is local already
        return np.array(rates, copy=True)
    if isinstance(rates, BaseNetref):
        rates = obtain(rates)
    return np.array(rates, copy=True)


def date_arg(epoch: int) -> datetime:
    """A server-clock epoch as the date argument of copy_*_range: an aware datetime at that instant. The
    mt5linux 0.2 client calls `.astimezone()` on it (an int breaks it) and the terminal reads its epoch."""
    return datetime.fromtimestamp(int(epoch), UTC)


def structured_array(raw: Any, dtype: np.dtype, what: str) -> np.ndarray:
    if dtype.names is None:
        raise TypeError(f"{what}: {dtype} is not a structured dtype")
    local = local_array(raw)
    if local.size == 0 and local.dtype.names is None:  # some builds answer "nothing" with a bare empty array
        return np.zeros(0, dtype=dtype)
    if local.dtype.names is None or not set(dtype.names) <= set(local.dtype.names):
        raise BrokerError(BrokerErrorKind.REJECTED, f"{what} returned dtype {local.dtype}")
    out = np.empty(len(local), dtype=dtype)
    for name in dtype.names:
        out[name] = local[name]
    return out
