"""Building the object MT5Broker drives: the MetaTrader5 package (Windows) or an mt5linux client (Linux)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from trading.broker.base import BrokerError, BrokerErrorKind, ConnectionLost


def create_mt5_module(kind: str, host: str = "127.0.0.1", port: int = 18812) -> Any:
    """The object MT5Broker drives: the MetaTrader5 package ("mt5", Windows) or an mt5linux client.

    The mt5linux bridge is remote code execution on its port: keep it on 127.0.0.1 or a private network.
    """
    if kind == "mt5":
        try:
            import MetaTrader5
        except ImportError as exc:
            raise BrokerError(
                BrokerErrorKind.CONFIG,
                "the MetaTrader5 package is not installed: pip install '.[mt5]' on Windows "
                "(it has no Linux build; on Linux use the mt5linux bridge)",
            ) from exc
        return MetaTrader5
    if kind == "mt5linux":
        try:
            from mt5linux import MetaTrader5 as Client
        except ImportError as exc:
            raise BrokerError(
                BrokerErrorKind.CONFIG, "the mt5linux package is not installed: pip install '.[mt5linux]'"
            ) from exc
        try:
            return Client(host=host, port=int(port))
        except (OSError, EOFError) as exc:
            raise ConnectionLost(
                f"no mt5linux bridge answers at {host}:{port} ({type(exc).__name__}: {exc}); start it with the "
                f"Windows Python under Wine (`wine python.exe -m mt5linux --host 127.0.0.1 -p {port}`) next to "
                "a running terminal, and check host and port"
            ) from exc
    raise ValueError(f"unknown MT5 connection kind {kind!r} (use 'mt5' or 'mt5linux')")


def mt5_module_factory(kind: str, host: str = "127.0.0.1", port: int = 18812) -> Callable[[], Any]:
    """A factory for MT5Broker(mt5_factory=...): rebuilds the bridge client after its link died."""
    return lambda: create_mt5_module(kind, host, port)
